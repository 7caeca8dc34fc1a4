// fwd_host.cu — host side of the sm90 forward: which requests it covers, the tensor maps the
// copy engine reads, and the dispatch from the runtime head dim and dtype to an instantiation.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>

#include <cuda.h>
#include <cuda_runtime.h>
#include <cudaTypedefs.h>

#include "../api.h"  // cuda::device_facts
#include "common/check.h"
#include "sm90/api.h"
#include "sm90/fp8_vt.h"
#include "sm90/fwd_launch.cuh"
#include "sm90/tma_map.h"

namespace flashattn::sm90 {
namespace {

// Varlen: the sequences with queries, most work first, and their cumulative tile counts (in f).
// Work of one tile: the keys its sequence has (a tile of a sequence without keys only writes its
// empty rows). Offsets are the request layer's checked host copies.
void schedule_varlen(const AttnParams& p, FwdParams& f) {
  const int32_t *cq = p.cu_seqlens_q_host, *ck = p.cu_seqlens_k_host;
  int n = 0;
  for (int i = 0; i < p.b; ++i) {
    if (cq[i + 1] > cq[i]) f.order[n++] = i;
  }
  auto s_k = [ck](int i) { return ck[i + 1] - ck[i]; };
  auto s_q = [cq](int i) { return cq[i + 1] - cq[i]; };
  std::stable_sort(f.order, f.order + n, [&](int a, int b) { return s_k(a) != s_k(b) ? s_k(a) > s_k(b) : s_q(a) > s_q(b); });
  int64_t tiles = 0;
  for (int j = 0; j < n; ++j) {
    tiles += static_cast<int64_t>((s_q(f.order[j]) + 127) / 128) * p.h;
    f.tile_end[j] = static_cast<int32_t>(tiles);
  }
  f.seqs = n;
  f.tiles = static_cast<int>(tiles);
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
  if (p.varlen()) {
    if (!p.cu_seqlens_k || !p.cu_seqlens_q_host || !p.cu_seqlens_k_host) {
      return no("sm90 forward: a varlen request needs both offsets on the device and on the host");
    }
    if (p.b > kVarlenMaxSeqs) {
      return no("sm90 forward schedules at most " + std::to_string(kVarlenMaxSeqs) + " varlen sequences in one launch, not " +
                std::to_string(p.b));
    }
    // Each sequence adds at most one partial block to the totals' count.
    if ((static_cast<int64_t>(p.s_q) / 128 + p.b) * p.h > (int64_t{1} << 31) - 1) {
      return no("sm90 forward: more than 2^31 - 1 query tiles");
    }
  } else if (static_cast<int64_t>((p.s_q + 127) / 128) * p.h * p.b > (int64_t{1} << 31) - 1) {
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
  const int maps_b = p.varlen() ? 1 : p.b;  // varlen maps have no batch dim
  const int eb = dtype_size(p.dtype);
  for (const auto& op : ops) {
    if (!strides_ok(op.st, op.s, op.heads, maps_b, eb)) {
      return no(std::string("sm90 forward: the copy engine needs ") + op.name +
                "'s row, head and batch strides to be positive multiples of 16 bytes");
    }
  }
  // The epilogue stores two elements (4 bytes) at a time.
  if (reinterpret_cast<uintptr_t>(p.out) % 4 != 0 || p.o_stride.row % 2 != 0 || p.o_stride.head % 2 != 0 ||
      (!p.varlen() && p.o_stride.batch % 2 != 0)) {
    return no("sm90 forward needs out 4-byte aligned with even strides");
  }
  return true;
}

FwdParams make_fwd_params(const AttnParams& p, int block_n, const void* vt, int head_dim) {
  FwdParams f{};
  const int maps_b = p.varlen() ? 1 : p.b;  // varlen: one packed (d, total, heads) tensor per operand
  f.tma_q = make_map(p.q, p.dtype, maps_b, p.s_q, p.h, p.d, p.q_stride, 128, "q");
  f.tma_k = make_map(p.k, p.dtype, maps_b, p.s_k, p.h_k, p.d, p.k_stride, block_n, "k");
  if (p.dtype == DType::kFloat8E4M3) {
    if (!vt) cuda::fail("sm90 fp8 forward: no Vᵀ workspace");
    const int keys = fp8_vt_keys(p.s_k);
    Strides vt_st;  // (b, h_k, d, keys) as (b, s = d rows, heads = h_k, keys)
    vt_st.row = keys;
    vt_st.head = static_cast<int64_t>(p.d) * keys;
    vt_st.batch = static_cast<int64_t>(p.h_k) * p.d * keys;
    f.tma_v = make_map(vt, p.dtype, p.b, p.d, p.h_k, keys, vt_st, head_dim, "v transposed");
  } else {
    f.tma_v = make_map(p.v, p.dtype, maps_b, p.s_k, p.h_k, p.d, p.v_stride, block_n, "v");
  }
  f.q_descale = p.q_descale;
  f.k_descale = p.k_descale;
  f.v_descale = p.v_descale;
  f.o = p.out;
  f.lse = p.lse;
  f.o_batch = p.varlen() ? 0 : p.o_stride.batch;
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
  f.cu_q = p.cu_seqlens_q;
  f.cu_k = p.cu_seqlens_k;
  if (p.varlen()) schedule_varlen(p, f);
  return f;
}

int fwd_grid(int device, int tiles, bool persistent) {
  if (!persistent) return tiles;
  const int sms = cuda::device_facts(device).sm_count;  // read once per device
  return tiles < sms ? tiles : sms;
}

void sm90_forward(const AttnParams& p, cudaStream_t stream) {
  std::string why;
  if (!sm90_forward_covers(p, &why)) cuda::fail(why);
  if (p.b == 0 || p.s_q == 0) return;  // varlen: no sequence has queries
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
