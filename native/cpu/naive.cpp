// naive.cpp — "standard attention" on the CPU: the benchmark baseline FlashAttention is measured
// against. For one (batch, head) at a time per thread it forms the whole s_q x s_k score matrix
// S = scale * Q K^T in memory, masks it, takes the row softmax P, then O = P V. Same semantics and
// outputs as forward(), and the same vectorized matmul, so the two differ only in memory traffic.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <new>
#include <vector>

#include "native/cpu/common.h"
#include "native/cpu/cpu_backend.h"
#include "native/cpu/simd.h"
#include "native/cpu/tensor_io.h"
#include "native/cpu/tile_math.h"

namespace flashattn::cpu {

namespace {

struct NaiveScratch {
  std::vector<float> q;    // (s_q, d)
  std::vector<float> kt;   // (d, s_k)
  std::vector<float> v;    // (s_k, d)
  std::vector<float> s;    // (s_q, s_k) the full score matrix, then P
  std::vector<float> o;    // (s_q, d)
  std::vector<float> lse;  // (s_q)
  std::vector<float> rows;  // (kTransposeRows, d) for load_rows_transposed

  NaiveScratch(const AttnParams& p)
      : q(static_cast<size_t>(p.s_q) * p.d), kt(static_cast<size_t>(p.d) * p.s_k),
        v(static_cast<size_t>(p.s_k) * p.d), s(static_cast<size_t>(p.s_q) * p.s_k),
        o(static_cast<size_t>(p.s_q) * p.d), lse(p.s_q), rows(size_t(kTransposeRows) * p.d) {}
};

template <int W>
FLASHATTN_CPU_INLINE void naive_head(const AttnParams& p, const RowRanges& rr, int b, int h, NaiveScratch& w,
                                     std::atomic<bool>* nonfinite) {
  const int d = p.d, sq = p.s_q, sk = p.s_k;
  const int hk = h / p.group_size();
  const TensorView Q = view(p.q, p.dtype, p.q_stride);
  const TensorView K = view(p.k, p.dtype, p.k_stride);
  const TensorView V = view(p.v, p.dtype, p.v_stride);
  const MutTensorView O = mut_view(p.out, p.dtype, p.o_stride);
  float* lse = p.lse + (static_cast<int64_t>(b) * p.h + h) * sq;  // (s_q)

  if (sk > 0) {
    load_rows(Q, b, 0, sq, h, d, w.q.data(), d, p.scale);  // the scores of forward.cpp
    load_rows_transposed(K, b, 0, sk, hk, d, w.kt.data(), sk, w.rows.data());
    load_rows(V, b, 0, sk, hk, d, w.v.data(), d);
    gemm<W, false>(sq, sk, d, w.q.data(), d, w.kt.data(), sk, w.s.data(), sk);  // S = Q K^T
    mask_tile(w.s.data(), sk, sq, sk, 0, 0, rr, -kInf);
    for (int i = 0; i < sq; ++i) {  // P = softmax(S), row by row
      float* si = &w.s[static_cast<size_t>(i) * sk];
      if (rr.empty(i)) {  // the row sees no key
        std::fill(si, si + sk, 0.f);
        w.lse[i] = -kInf;
        continue;
      }
      // As in forward.cpp: l >= 1 for finite scores; l = 0 (all scores -inf) or NaN gives NaN.
      const float m = row_max<W>(si, sk);
      const float l = exp_row_sum<W>(si, sk, m == -kInf ? 0.f : m);
      scale_row(si, sk, 1.f / l);
      w.lse[i] = l > 0.f ? static_cast<float>(static_cast<double>(m) + std::log(static_cast<double>(l)))
                         : std::numeric_limits<float>::quiet_NaN();
    }
    gemm<W, false>(sq, d, sk, w.s.data(), sk, w.v.data(), d, w.o.data(), d);  // O = P V
  } else {
    std::fill(w.o.begin(), w.o.end(), 0.f);
    std::fill(w.lse.begin(), w.lse.end(), -kInf);
  }
  bool bad = false;
  for (int i = 0; i < sq; ++i) {
    const float* o = &w.o[static_cast<size_t>(i) * d];
    if (!rr.empty(i)) bad = bad || !row_finite(o, d) || !std::isfinite(w.lse[i]);
    if (rr.empty(i)) O.store_zero_row(b, i, h, d);
    else O.store_row(b, i, h, d, o);
    lse[i] = w.lse[i];
  }
  if (bad) nonfinite->store(true, std::memory_order_relaxed);
}

using HeadFn = void (*)(const AttnParams&, const RowRanges&, int, int, NaiveScratch&, std::atomic<bool>*);

void naive_head_generic(const AttnParams& p, const RowRanges& rr, int b, int h, NaiveScratch& w,
                        std::atomic<bool>* nonfinite) {
  naive_head<4>(p, rr, b, h, w, nonfinite);
}
#if FLASHATTN_CPU_HAVE_AVX2
FLASHATTN_CPU_TARGET_AVX2 void naive_head_avx2(const AttnParams& p, const RowRanges& rr, int b, int h,
                                               NaiveScratch& w, std::atomic<bool>* nonfinite) {
  naive_head<8>(p, rr, b, h, w, nonfinite);
}
#endif

HeadFn pick_head_fn() {
#if FLASHATTN_CPU_HAVE_AVX2
  if (active_simd() == Simd::kAvx2Fma8) return naive_head_avx2;
#endif
  return naive_head_generic;
}

}  // namespace

void naive_forward(const AttnParams& p, int threads) {
  check_params(p, Op::kNaiveForward);
  if (p.b == 0 || p.s_q == 0 || p.h == 0) return;

  const int64_t n_tasks = static_cast<int64_t>(p.b) * p.h;
  // Each worker holds a whole score matrix; keep them to about 4 GiB together (at least one worker,
  // however large one matrix is: that is the cost this baseline exists to show).
  const double per_worker = 4.0 * (static_cast<double>(p.s_q) * p.s_k + 2.0 * (p.s_q + p.s_k) * p.d);
  const int64_t fit = static_cast<int64_t>(4.0 * 1024 * 1024 * 1024 / per_worker);
  const int workers = worker_count(threads, std::max<int64_t>(1, std::min(n_tasks, fit)));
  std::vector<NaiveScratch> scratch;
  try {
    scratch.reserve(static_cast<size_t>(workers));
    for (int w = 0; w < workers; ++w) scratch.emplace_back(p);
  } catch (const std::bad_alloc&) {
    throw_oom("naive_forward", "the s_q x s_k score matrix of each thread", workers * per_worker);
  }
  try {
    const RowRanges ranges(p);
    const HeadFn head = pick_head_fn();
    std::atomic<bool> nonfinite{false};
    parallel_for(n_tasks, workers, [&](int64_t t, int worker) {
      head(p, ranges, static_cast<int>(t / p.h), static_cast<int>(t % p.h), scratch[worker], &nonfinite);
    });
    if (nonfinite.load()) check_overflow(p, Op::kNaiveForward);
  } catch (const std::bad_alloc&) {
    throw_oom("naive_forward", "row ranges", 8.0 * p.s_q);
  }
}

}  // namespace flashattn::cpu
