// varlen.cpp — packed variable-length batches on the CPU: one cpu::forward / cpu::backward call per
// sequence, on views of the packed tensors (no copies but the sequence's lse rows, which the
// packed [h, totalQ] layout keeps apart per head).
#include "native/cpu/varlen.h"

#include <cstddef>
#include <type_traits>
#include <vector>

#include "native/cpu/cpu_backend.h"

namespace flashattn::cpu {

namespace {

template <typename T>
T* row_at(T* base, const Strides& st, int64_t row, DType dtype) {
  if (base == nullptr) return nullptr;
  using Byte = std::conditional_t<std::is_const_v<T>, const char, char>;
  return reinterpret_cast<Byte*>(base) + row * st.row * dtype_size(dtype);
}

// Sequence b of the packed batch as a batch of one: its lengths, and every tensor moved to its
// first row. lse is left to the caller (the sequence's rows of it are not contiguous).
AttnParams sequence(const AttnParams& p, const int32_t* cu_q, const int32_t* cu_k, int b) {
  AttnParams s = p;
  const int64_t q0 = cu_q[b], k0 = cu_k[b];
  s.b = 1;
  s.s_q = cu_q[b + 1] - cu_q[b];
  s.s_k = cu_k[b + 1] - cu_k[b];
  s.q = row_at(p.q, p.q_stride, q0, p.dtype);
  s.out = row_at(p.out, p.o_stride, q0, p.dtype);
  s.dout = row_at(p.dout, p.do_stride, q0, p.dtype);
  s.dq = row_at(p.dq, p.dq_stride, q0, p.dtype);
  s.k = row_at(p.k, p.k_stride, k0, p.dtype);
  s.v = row_at(p.v, p.v_stride, k0, p.dtype);
  s.dk = row_at(p.dk, p.dk_stride, k0, p.dtype);
  s.dv = row_at(p.dv, p.dv_stride, k0, p.dtype);
  s.lse = nullptr;
  return s;
}

// Copies sequence rows [q0, q0 + s_q) of every head between the packed lse (h, totalQ) and a
// (h, s_q) one.
void lse_rows(const AttnParams& p, int64_t q0, int s_q, float* seq, bool to_packed) {
  for (int h = 0; h < p.h; ++h) {
    float* packed = p.lse + static_cast<int64_t>(h) * p.s_q + q0;
    float* own = seq + static_cast<int64_t>(h) * s_q;
    for (int i = 0; i < s_q; ++i) {
      if (to_packed) {
        packed[i] = own[i];
      } else {
        own[i] = packed[i];
      }
    }
  }
}

}  // namespace

void varlen_forward(const AttnParams& p, const int32_t* cu_seqlens_q, const int32_t* cu_seqlens_k, int threads) {
  std::vector<float> lse;
  for (int b = 0; b < p.b; ++b) {
    AttnParams s = sequence(p, cu_seqlens_q, cu_seqlens_k, b);
    if (s.s_q == 0) continue;  // no rows to write
    lse.resize(static_cast<size_t>(p.h) * s.s_q);
    s.lse = lse.data();
    forward(s, threads);  // s_k = 0: zeros and -inf
    lse_rows(p, cu_seqlens_q[b], s.s_q, lse.data(), true);
  }
}

void varlen_backward(const AttnParams& p, const int32_t* cu_seqlens_q, const int32_t* cu_seqlens_k, int threads) {
  std::vector<float> lse;
  for (int b = 0; b < p.b; ++b) {
    AttnParams s = sequence(p, cu_seqlens_q, cu_seqlens_k, b);
    if (s.s_q == 0 && s.s_k == 0) continue;
    lse.resize(static_cast<size_t>(p.h) * s.s_q);
    lse_rows(p, cu_seqlens_q[b], s.s_q, lse.data(), false);
    s.lse = s.s_q > 0 ? lse.data() : nullptr;
    backward(s, threads);  // s_q = 0: dk = dv = 0; s_k = 0: dq = 0
  }
}

}  // namespace flashattn::cpu
