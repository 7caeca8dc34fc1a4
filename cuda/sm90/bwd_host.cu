// bwd_host.cu — host side of the sm90 backward: which requests it covers, its parameters (tensor
// maps over q, k, v, out, dout), and the dispatch from head dim and dtype to an instantiation.
#include <cstdint>
#include <string>

#include <cuda.h>
#include <cuda_runtime.h>

#include "common/check.h"
#include "sm90/api.h"
#include "sm90/bwd_launch.cuh"
#include "sm90/tma_map.h"

namespace flashattn::sm90 {

bool sm90_backward_covers(const AttnParams& p, std::string* why) {
  auto no = [why](const std::string& msg) {
    if (why) *why = msg;
    return false;
  };
  if (p.varlen()) return no("sm90 backward takes padded batches (a varlen backward runs one sequence at a time)");
  if (p.deterministic) return no("the sm90 backward accumulates dQ with atomics (deterministic runs on sm80)");
  if (p.dtype != DType::kFloat16 && p.dtype != DType::kBFloat16) {
    return no(std::string("sm90 backward runs float16 and bfloat16, not ") + dtype_name(p.dtype));
  }
  if (bwd_kernel_head_dim(p.d) == 0) return no("sm90 backward needs a head dim that is a multiple of 8, at most 128");
  if (p.b < 0 || p.s_q < 0 || p.s_k < 0 || p.h <= 0 || p.h_k <= 0 || p.h % p.h_k != 0) {
    return no("sm90 backward needs h > 0, h_k > 0 and h % h_k == 0");
  }
  if (!(p.scale > 0.f)) return no("sm90 backward needs a positive softmax scale");
  if (!aligned16(p.q) || !aligned16(p.k) || !aligned16(p.v) || !aligned16(p.out) || !aligned16(p.dout)) {
    return no("sm90 backward: the copy engine needs q, k, v, out and dout 16-byte aligned");
  }
  const struct {
    const Strides& st;
    int s, heads;
    const char* name;
  } ops[5] = {{p.q_stride, p.s_q, p.h, "q"},
              {p.k_stride, p.s_k, p.h_k, "k"},
              {p.v_stride, p.s_k, p.h_k, "v"},
              {p.o_stride, p.s_q, p.h, "out"},
              {p.do_stride, p.s_q, p.h, "dout"}};
  for (const auto& op : ops) {
    if (!strides_ok(op.st, op.s, op.heads, p.b)) {
      return no(std::string("sm90 backward: the copy engine needs ") + op.name +
                "'s row, head and batch strides to be positive multiples of 8 elements (16 bytes)");
    }
  }
  // dq, dk, dv are stored two elements (4 bytes) at a time.
  const struct {
    const void* ptr;
    const Strides& st;
  } outs[3] = {{p.dq, p.dq_stride}, {p.dk, p.dk_stride}, {p.dv, p.dv_stride}};
  for (const auto& o : outs) {
    if (reinterpret_cast<uintptr_t>(o.ptr) % 4 != 0 || o.st.row % 2 != 0 || o.st.head % 2 != 0 || o.st.batch % 2 != 0) {
      return no("sm90 backward needs dq, dk and dv 4-byte aligned with even strides");
    }
  }
  return true;
}

BwdParams make_bwd_params(const AttnParams& p, float* workspace, int block_n) {
  BwdParams b;
  b.tma_q = make_map(p.q, p.dtype, p.b, p.s_q, p.h, p.d, p.q_stride, kBwdBlockM, "q");
  b.tma_do = make_map(p.dout, p.dtype, p.b, p.s_q, p.h, p.d, p.do_stride, kBwdBlockM, "dout");
  b.tma_o = make_map(p.out, p.dtype, p.b, p.s_q, p.h, p.d, p.o_stride, kBwdBlockM, "out");
  b.tma_k = make_map(p.k, p.dtype, p.b, p.s_k, p.h_k, p.d, p.k_stride, block_n, "k");
  b.tma_v = make_map(p.v, p.dtype, p.b, p.s_k, p.h_k, p.d, p.v_stride, block_n, "v");
  b.s_q_pad = bwd_rows_padded(p.s_q);
  const size_t rows = static_cast<size_t>(p.b) * p.h * b.s_q_pad;
  b.lse = p.lse;
  b.lse2 = workspace;
  b.delta = workspace + rows;
  b.dq_acc = workspace + 2 * rows;
  b.dq = p.dq;
  b.dk = p.dk;
  b.dv = p.dv;
  b.dq_batch = p.dq_stride.batch;
  b.dq_row = p.dq_stride.row;
  b.dq_head = p.dq_stride.head;
  b.dk_batch = p.dk_stride.batch;
  b.dk_row = p.dk_stride.row;
  b.dk_head = p.dk_stride.head;
  b.dv_batch = p.dv_stride.batch;
  b.dv_row = p.dv_stride.row;
  b.dv_head = p.dv_stride.head;
  b.s_q = p.s_q;
  b.s_k = p.s_k;
  b.h = p.h;
  b.h_k = p.h_k;
  b.d = p.d;
  b.group = p.h / p.h_k;
  b.window_left = normalized_window_side(p.window_left, p.s_q, p.s_k);
  b.window_right = normalized_window_side(p.window_right, p.s_q, p.s_k);
  b.scale = p.scale;
  b.scale_log2 = p.scale * kLog2e;
  return b;
}

size_t sm90_backward_workspace_bytes(const AttnParams& p) {
  const int khd = bwd_kernel_head_dim(p.d);
  return khd == 0 ? 0 : bwd_workspace_floats(p, khd) * sizeof(float);
}

void sm90_backward(const AttnParams& p, cudaStream_t stream) {
  std::string why;
  if (!sm90_backward_covers(p, &why)) cuda::fail(why);
  if (p.b < 1 || p.s_q < 1 || p.s_k < 1) cuda::fail("backward", "sizes must be >= 1 (the API answers empty requests itself)");
  const bool bf16 = p.dtype == DType::kBFloat16;
  switch (bwd_kernel_head_dim(p.d)) {
    case 64: return bf16 ? launch_bwd<sm80::Bf16, 64>(p, stream) : launch_bwd<sm80::Fp16, 64>(p, stream);
    case 128: return bf16 ? launch_bwd<sm80::Bf16, 128>(p, stream) : launch_bwd<sm80::Fp16, 128>(p, stream);
  }
  cuda::fail("sm90 backward: no kernel for head dim " + std::to_string(p.d));
}

}  // namespace flashattn::sm90
