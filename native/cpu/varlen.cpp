// varlen.cpp — packed variable-length batches on the CPU: one cpu::forward / cpu::backward call per
// sequence, on views of the packed tensors (no copies but the sequence's lse rows, which the
// packed [h, totalQ] layout keeps apart per head). Many sequences run side by side, one thread
// each; few run one after another on all threads. Either way each sequence's results are those of
// its own call, which do not depend on the thread count.
#include "native/cpu/varlen.h"

#include <algorithm>
#include <cstddef>
#include <numeric>
#include <type_traits>
#include <vector>

#include "native/cpu/common.h"
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

// Runs one(s, threads, lse) for every sequence s, with `lse` a scratch vector of the worker running
// it. With at least two sequences per worker they run side by side, one thread each, the most work
// first so the hand-out balances; otherwise one after another, each on every thread.
template <typename One>
void each_sequence(const AttnParams& p, const int32_t* cu_q, const int32_t* cu_k, int threads, One&& one) {
  const int workers = worker_count(threads, p.b);
  std::vector<std::vector<float>> lse(static_cast<size_t>(workers));
  if (workers == 1 || p.b < 2 * workers) {
    for (int b = 0; b < p.b; ++b) one(sequence(p, cu_q, cu_k, b), threads, lse[0], cu_q[b]);
    return;
  }
  std::vector<int> order(static_cast<size_t>(p.b));
  std::iota(order.begin(), order.end(), 0);
  auto work = [&](int b) { return static_cast<int64_t>(cu_q[b + 1] - cu_q[b]) * (1 + cu_k[b + 1] - cu_k[b]); };
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return work(a) > work(b); });
  parallel_for(p.b, workers, [&](int64_t t, int worker) {
    const int b = order[static_cast<size_t>(t)];
    one(sequence(p, cu_q, cu_k, b), 1, lse[static_cast<size_t>(worker)], cu_q[b]);
  });
}

}  // namespace

void varlen_forward(const AttnParams& p, const int32_t* cu_seqlens_q, const int32_t* cu_seqlens_k, int threads) {
  each_sequence(p, cu_seqlens_q, cu_seqlens_k, threads, [&](AttnParams s, int n, std::vector<float>& lse, int64_t q0) {
    if (s.s_q == 0) return;  // no rows to write
    lse.resize(static_cast<size_t>(p.h) * s.s_q);
    s.lse = lse.data();
    forward(s, n);  // s_k = 0: zeros and -inf
    lse_rows(p, q0, s.s_q, lse.data(), true);
  });
}

void varlen_backward(const AttnParams& p, const int32_t* cu_seqlens_q, const int32_t* cu_seqlens_k, int threads) {
  each_sequence(p, cu_seqlens_q, cu_seqlens_k, threads, [&](AttnParams s, int n, std::vector<float>& lse, int64_t q0) {
    if (s.s_q == 0 && s.s_k == 0) return;
    lse.resize(static_cast<size_t>(p.h) * s.s_q);
    lse_rows(p, q0, s.s_q, lse.data(), false);
    s.lse = s.s_q > 0 ? lse.data() : nullptr;
    backward(s, n);  // s_q = 0: dk = dv = 0; s_k = 0: dq = 0
  });
}

}  // namespace flashattn::cpu
