// fwd_host.cu — host side of the sm90 forward: which requests it covers, the tensor maps the
// copy engine reads, and the dispatch from the runtime head dim and dtype to an instantiation.
#include <cstdint>
#include <cstring>
#include <string>

#include <cuda.h>
#include <cuda_runtime.h>
#include <cudaTypedefs.h>

#include "common/check.h"
#include "sm90/api.h"
#include "sm90/fp8_vt.h"
#include "sm90/fwd_launch.cuh"

namespace flashattn::sm90 {
namespace {

// The driver's cuTensorMapEncodeTiled, found through the runtime so the addon links only cudart.
PFN_cuTensorMapEncodeTiled_v12000 encode_fn() {
  static const PFN_cuTensorMapEncodeTiled_v12000 fn = [] {
    void* f = nullptr;
    cudaDriverEntryPointQueryResult q = cudaDriverEntryPointSymbolNotFound;
    const cudaError_t err = cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &f, 12000, cudaEnableDefault, &q);
    if (err != cudaSuccess || q != cudaDriverEntryPointSuccess) f = nullptr;
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(f);
  }();
  return fn;
}

bool aligned16(const void* ptr) { return reinterpret_cast<uintptr_t>(ptr) % 16 == 0; }

// A stride the copy engine accepts: a positive multiple of 16 bytes below 2^40. A dim of extent 1
// never steps, so any stride does; it is replaced by a valid one.
bool stride_ok(int64_t stride_elems, int extent, int elem_bytes = 2) {
  if (extent <= 1) return true;
  const int64_t bytes = stride_elems * elem_bytes;
  return bytes > 0 && bytes % 16 == 0 && bytes < (int64_t{1} << 40);
}

// Tensor map of one (b, s, heads, d) operand, as the 4-D tensor (d, s, heads, b) with element
// strides (1, row, head, batch); box (one 128-byte panel: 64 16-bit or 128 e4m3 columns, rows,
// 1, 1), 128-byte swizzle, zero fill out of bounds. The e4m3 Vᵀ map is the same call with
// (d, s) = (keys, d rows) and box_rows = the compiled head dim.
CUtensorMap make_map(const void* base, DType dt, int b, int s, int heads, int d, const Strides& st, int box_rows,
                     const char* what) {
  CUtensorMap map;
  std::memset(&map, 0, sizeof map);
  const PFN_cuTensorMapEncodeTiled_v12000 encode = encode_fn();
  if (!encode) cuda::fail("sm90 forward: the CUDA driver offers no cuTensorMapEncodeTiled (driver too old?)");
  const int bytes = dtype_size(dt);
  const int64_t fallback = static_cast<int64_t>(d) * 16 / bytes;  // d * 16 bytes: any multiple of 16 bytes
  cuuint64_t dims[4] = {static_cast<cuuint64_t>(d), static_cast<cuuint64_t>(s > 0 ? s : 1), static_cast<cuuint64_t>(heads),
                        static_cast<cuuint64_t>(b)};
  cuuint64_t strides[3] = {static_cast<cuuint64_t>((s > 1 ? st.row : fallback) * bytes),
                           static_cast<cuuint64_t>((heads > 1 ? st.head : fallback) * bytes),
                           static_cast<cuuint64_t>((b > 1 ? st.batch : fallback) * bytes)};
  cuuint32_t box[4] = {static_cast<cuuint32_t>(128 / bytes), static_cast<cuuint32_t>(box_rows), 1, 1};
  cuuint32_t elem_strides[4] = {1, 1, 1, 1};
  const CUtensorMapDataType type = dt == DType::kFloat8E4M3  ? CU_TENSOR_MAP_DATA_TYPE_UINT8
                                   : dt == DType::kBFloat16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16
                                                             : CU_TENSOR_MAP_DATA_TYPE_FLOAT16;
  const CUresult r = encode(&map, type, 4, const_cast<void*>(base), dims, strides, box, elem_strides, CU_TENSOR_MAP_INTERLEAVE_NONE,
                            CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS) {
    cuda::fail(std::string("sm90 forward: cuTensorMapEncodeTiled(") + what + ") failed with CUresult " + std::to_string(r));
  }
  return map;
}

}  // namespace

bool sm90_forward_covers(const AttnParams& p, std::string* why) {
  auto no = [why](const std::string& msg) {
    if (why) *why = msg;
    return false;
  };
  const bool fp8 = p.dtype == DType::kFloat8E4M3;
  if (p.dtype != DType::kFloat16 && p.dtype != DType::kBFloat16 && !fp8) {
    return no(std::string("sm90 forward runs float16, bfloat16 and float8_e4m3, not ") + dtype_name(p.dtype));
  }
  if (fp8 && p.out_dtype != DType::kBFloat16 && p.out_dtype != DType::kFloat16) {
    return no(std::string("sm90 fp8 forward writes bfloat16 or float16 output, not ") + dtype_name(p.out_dtype));
  }
  if (fwd_kernel_head_dim(p.d) == 0) return no("sm90 forward needs a head dim that is a multiple of 8, at most 256");
  if (p.b < 0 || p.s_q < 0 || p.s_k < 0 || p.h <= 0 || p.h_k <= 0 || p.h % p.h_k != 0) {
    return no("sm90 forward needs h > 0, h_k > 0 and h % h_k == 0");
  }
  if (static_cast<int64_t>((p.s_q + 127) / 128) * p.h * p.b > (int64_t{1} << 31) - 1) {
    return no("sm90 forward: more than 2^31 - 1 query tiles (ceil(s_q / 128) * h * b)");
  }
  if (!(p.scale > 0.f)) return no("sm90 forward needs a positive softmax scale");
  if (!aligned16(p.q) || !aligned16(p.k) || !aligned16(p.v)) {
    return no("sm90 forward: the copy engine needs q, k and v 16-byte aligned");
  }
  const struct {
    const Strides& st;
    int s, heads;
    const char* name;
  } ops[3] = {{p.q_stride, p.s_q, p.h, "q"}, {p.k_stride, p.s_k, p.h_k, "k"}, {p.v_stride, p.s_k, p.h_k, "v"}};
  const int eb = dtype_size(p.dtype);
  for (const auto& op : ops) {
    if (!stride_ok(op.st.row, op.s, eb) || !stride_ok(op.st.head, op.heads, eb) || !stride_ok(op.st.batch, p.b, eb)) {
      return no(std::string("sm90 forward: the copy engine needs ") + op.name +
                "'s row, head and batch strides to be positive multiples of 16 bytes");
    }
  }
  // The epilogue stores two elements (4 bytes) at a time.
  if (reinterpret_cast<uintptr_t>(p.out) % 4 != 0 || p.o_stride.row % 2 != 0 || p.o_stride.head % 2 != 0 ||
      p.o_stride.batch % 2 != 0) {
    return no("sm90 forward needs out 4-byte aligned with even strides");
  }
  return true;
}

FwdParams make_fwd_params(const AttnParams& p, int block_n, const void* vt, int head_dim) {
  FwdParams f;
  f.tma_q = make_map(p.q, p.dtype, p.b, p.s_q, p.h, p.d, p.q_stride, 128, "q");
  f.tma_k = make_map(p.k, p.dtype, p.b, p.s_k, p.h_k, p.d, p.k_stride, block_n, "k");
  if (p.dtype == DType::kFloat8E4M3) {
    if (!vt) cuda::fail("sm90 fp8 forward: no Vᵀ workspace");
    const int keys = fp8_vt_keys(p.s_k);
    Strides vt_st;  // (b, h_k, d, keys) as (b, s = d rows, heads = h_k, keys)
    vt_st.row = keys;
    vt_st.head = static_cast<int64_t>(p.d) * keys;
    vt_st.batch = static_cast<int64_t>(p.h_k) * p.d * keys;
    f.tma_v = make_map(vt, p.dtype, p.b, p.d, p.h_k, keys, vt_st, head_dim, "v transposed");
  } else {
    f.tma_v = make_map(p.v, p.dtype, p.b, p.s_k, p.h_k, p.d, p.v_stride, block_n, "v");
  }
  f.q_descale = p.q_descale;
  f.k_descale = p.k_descale;
  f.v_descale = p.v_descale;
  f.o = p.out;
  f.lse = p.lse;
  f.o_batch = p.o_stride.batch;
  f.o_row = p.o_stride.row;
  f.o_head = p.o_stride.head;
  f.s_q = p.s_q;
  f.s_k = p.s_k;
  f.h = p.h;
  f.d = p.d;
  f.group = p.h / p.h_k;
  f.m_blocks = (p.s_q + 127) / 128;
  f.tiles = f.m_blocks * p.h * p.b;
  f.window_left = p.window_left;
  f.window_right = p.window_right;
  f.scale = p.scale;
  f.scale_log2 = p.scale * kLog2e;
  return f;
}

int fwd_grid(int tiles, bool persistent) {
  if (!persistent) return tiles;
  int device = 0, sms = 0;
  cuda::check(cudaGetDevice(&device), "cudaGetDevice");
  cuda::check(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device), "cudaDeviceGetAttribute(SM count)");
  return tiles < sms ? tiles : sms;
}

void sm90_forward(const AttnParams& p, cudaStream_t stream) {
  std::string why;
  if (!sm90_forward_covers(p, &why)) cuda::fail(why);
  if (p.b == 0 || p.s_q == 0) return;
  if (p.dtype == DType::kFloat8E4M3) return sm90_forward_fp8(p, stream);
  const bool bf16 = p.dtype == DType::kBFloat16;
  switch (fwd_kernel_head_dim(p.d)) {
    case 64: return bf16 ? launch_fwd<sm80::Bf16, 64>(p, stream) : launch_fwd<sm80::Fp16, 64>(p, stream);
    case 128: return bf16 ? launch_fwd<sm80::Bf16, 128>(p, stream) : launch_fwd<sm80::Fp16, 128>(p, stream);
    case 256: return bf16 ? launch_fwd<sm80::Bf16, 256>(p, stream) : launch_fwd<sm80::Fp16, 256>(p, stream);
  }
  cuda::fail("sm90 forward: no kernel for head dim " + std::to_string(p.d));
}

}  // namespace flashattn::sm90
