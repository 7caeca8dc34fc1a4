// forward.cpp — tiled FlashAttention forward on the CPU (online softmax, O(s) memory).
//
// One task = one (batch, head, block of kBlockQ query rows). The task keeps its Q block (transposed,
// pre-scaled), running output, column max and column sum in float, and streams the keys its rows
// can see in tiles of kBlockK:
//   S^T = K Q^T   (kBlockK, kBlockQ)     K read in place for float32
//   mask, online softmax down each column (one column = one query)
//   O  += P V     (P^T used transposed)
// Working on S^T rather than S lets K be used where it lies (no per-tile copy or transpose) and
// makes the softmax reductions lane-wise. Key tiles outside every row's window are never
// visited, so causal and sliding-window attention cost what they should.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <new>
#include <vector>

#include "native/cpu/common.h"
#include "native/cpu/cpu_backend.h"
#include "native/cpu/fp8.h"
#include "native/cpu/simd.h"
#include "native/cpu/tensor_io.h"
#include "native/cpu/tile_math.h"

namespace flashattn::cpu {

namespace {

static_assert(kBlockQ % 8 == 0, "column operations run 8 queries at a time");

struct FwdScratch {
  std::vector<float> qt;     // (d, kBlockQ)        Q block transposed, times scale
  std::vector<float> k, v;   // (kBlockK, d)        K tile as float (16-bit dtypes), V tile as float
  std::vector<float> st;     // (kBlockK, kBlockQ)  S^T, then P^T
  std::vector<float> o;      // (kBlockQ, d)        un-normalized output
  std::vector<float> m;      // (kBlockQ)           running max of the scaled scores
  std::vector<float> m_new;  // (kBlockQ)
  std::vector<float> m_use;  // (kBlockQ)           m_new, or 0 where it is -inf
  std::vector<float> l;      // (kBlockQ)           running sum of exp(s - m)
  std::vector<float> rows;   // (kTransposeRows, d) for load_rows_transposed

  explicit FwdScratch(int d)
      : qt(size_t(d) * kBlockQ), k(size_t(kBlockK) * d), v(size_t(kBlockK) * d),
        st(size_t(kBlockK) * kBlockQ), o(size_t(kBlockQ) * d), m(kBlockQ), m_new(kBlockQ),
        m_use(kBlockQ), l(kBlockQ), rows(size_t(kTransposeRows) * d) {}
};

struct FwdArgs {
  const AttnParams& p;
  const RowRanges& rr;
  TensorView q, k, v;
  MutTensorView out;
  std::atomic<bool>* nonfinite;  // set when a row that sees keys came out NaN or infinite
};

template <int W>
FLASHATTN_CPU_INLINE void forward_tile(const FwdArgs& a, int b, int h, int i0, FwdScratch& w) {
  const AttnParams& p = a.p;
  const int d = p.d;
  const int nq = std::min(kBlockQ, p.s_q - i0);
  const int nqp = (nq + 7) / 8 * 8;  // columns processed: padded to whole vectors (padding is zeros)
  const int hk = h / p.group_size();
  float* lse = p.lse + (static_cast<int64_t>(b) * p.h + h) * p.s_q + i0;  // (nq)

  int klo, khi;
  a.rr.keys_of_rows(i0, i0 + nq, &klo, &khi);
  if (klo >= khi) {  // no row of this block sees a key
    for (int r = 0; r < nq; ++r) {
      a.out.store_zero_row(b, i0 + r, h, d);
      lse[r] = -kInf;
    }
    return;
  }

  // Q is scaled here and nothing else is folded in: backward.cpp forms the same products in the
  // same order, so its recomputed scores are these, bit for bit (see tile_math.h).
  std::fill(w.qt.begin(), w.qt.end(), 0.f);
  load_rows_transposed(a.q, b, i0, nq, h, d, w.qt.data(), kBlockQ, w.rows.data(), p.scale);
  std::fill(w.o.begin(), w.o.end(), 0.f);
  std::fill(w.m.begin(), w.m.end(), -kInf);
  std::fill(w.l.begin(), w.l.end(), 0.f);

  for (int j0 = klo; j0 < khi; j0 += kBlockK) {
    const int nk = std::min(kBlockK, khi - j0);
    // K is the A operand (read row by row, in place for float32). V is the B operand, re-read for
    // every 6 output rows: always copied, since rows of a tensor with a row stride that is a
    // multiple of 4 KiB (h * d = 1024 floats, say) all land in the same L1 set and evict each other.
    ptrdiff_t ldk;
    const float* kp = rows_as_float(a.k, b, j0, nk, hk, d, w.k.data(), &ldk);
    load_rows(a.v, b, j0, nk, hk, d, w.v.data(), d);

    gemm<W, false>(nk, nqp, d, kp, ldk, w.qt.data(), kBlockQ, w.st.data(), kBlockQ);  // S^T = K Q^T
    mask_tile_transposed(w.st.data(), kBlockQ, nq, nk, i0, j0, a.rr, -kInf);

    // Online softmax, one column per query: m_new = max(m, max_j s), P = exp(s - m_new),
    // l = l * exp(m - m_new) + sum_j P, O = O * exp(m - m_new). A NaN score (NaN or Inf in q or k)
    // makes P, l and O NaN from here on: it is never mistaken for a masked key.
    std::copy(w.m.begin(), w.m.end(), w.m_new.begin());
    col_max<W>(w.st.data(), nk, kBlockQ, nqp, w.m_new.data());
    for (int r = 0; r < nqp; ++r) w.m_use[r] = w.m_new[r] == -kInf ? 0.f : w.m_new[r];  // no (-inf) - (-inf)
    for (int r = 0; r < nqp; ++r) {
      const float alpha = w.m[r] == -kInf ? 0.f : exp2_approx((w.m[r] - w.m_new[r]) * kLog2e);
      w.l[r] *= alpha;
      if (alpha != 1.f && r < nq) scale_row(&w.o[size_t(r) * d], d, alpha);
      w.m[r] = w.m_new[r];
    }
    col_exp_sum<W>(w.st.data(), nk, kBlockQ, nqp, w.m_use.data(), w.l.data());  // st = P^T
    gemm_tn<W, true>(nq, d, nk, w.st.data(), kBlockQ, w.v.data(), d, w.o.data(), d);  // O += P V
  }

  for (int r = 0; r < nq; ++r) {
    if (a.rr.empty(i0 + r)) {  // this row sees no key (others in its block do)
      a.out.store_zero_row(b, i0 + r, h, d);
      lse[r] = -kInf;
      continue;
    }
    // A row that sees keys has l >= 1 for finite scores (its max contributes exp(0) = 1). l = 0
    // (every score -inf: infinite inputs) or NaN gives NaN, as softmax does in PyTorch.
    float* o = &w.o[size_t(r) * d];
    const float inv = 1.f / w.l[r];
    scale_row(o, d, inv);
    lse[r] = w.l[r] > 0.f ? static_cast<float>(static_cast<double>(w.m[r]) + std::log(static_cast<double>(w.l[r])))
                          : std::numeric_limits<float>::quiet_NaN();
    if (!row_finite(o, d) || !std::isfinite(lse[r])) a.nonfinite->store(true, std::memory_order_relaxed);
    a.out.store_row(b, i0 + r, h, d, o);
  }
}

using TileFn = void (*)(const FwdArgs&, int, int, int, FwdScratch&);

void forward_tile_generic(const FwdArgs& a, int b, int h, int i0, FwdScratch& w) { forward_tile<4>(a, b, h, i0, w); }
#if FLASHATTN_CPU_HAVE_AVX2
FLASHATTN_CPU_TARGET_AVX2 void forward_tile_avx2(const FwdArgs& a, int b, int h, int i0, FwdScratch& w) {
  forward_tile<8>(a, b, h, i0, w);
}
#endif

TileFn pick_tile_fn() {
#if FLASHATTN_CPU_HAVE_AVX2
  if (active_simd() == Simd::kAvx2Fma8) return forward_tile_avx2;
#endif
  return forward_tile_generic;
}

}  // namespace

void forward(const AttnParams& p, int threads) {
  if (p.dtype == DType::kFloat8E4M3) return fp8_forward(p, threads);  // decodes, then comes back here
  check_params(p, Op::kForward);
  if (p.b == 0 || p.s_q == 0 || p.h == 0) return;

  const int q_blocks = (p.s_q + kBlockQ - 1) / kBlockQ;
  const int64_t n_tasks = static_cast<int64_t>(p.b) * p.h * q_blocks;
  const int workers = worker_count(threads, n_tasks);

  try {
    const RowRanges ranges(p);
    std::vector<FwdScratch> scratch;
    scratch.reserve(static_cast<size_t>(workers));
    for (int w = 0; w < workers; ++w) scratch.emplace_back(p.d);

    std::atomic<bool> nonfinite{false};
    const FwdArgs args{p,
                       ranges,
                       view(p.q, p.dtype, p.q_stride),
                       view(p.k, p.dtype, p.k_stride),
                       view(p.v, p.dtype, p.v_stride),
                       mut_view(p.out, p.dtype, p.o_stride),
                       &nonfinite};
    const TileFn tile = pick_tile_fn();
    parallel_for(n_tasks, workers, [&](int64_t t, int worker) {
      // Later query blocks first: under a causal mask they see the most keys, so the atomic
      // hand-out balances better when they start early.
      const int qb = q_blocks - 1 - static_cast<int>(t % q_blocks);
      const int64_t bh = t / q_blocks;
      tile(args, static_cast<int>(bh / p.h), static_cast<int>(bh % p.h), qb * kBlockQ, scratch[worker]);
    });
    if (nonfinite.load()) check_overflow(p, Op::kForward);
  } catch (const std::bad_alloc&) {
    throw_oom("forward", "per-thread tiles", 4.0 * workers * (4.0 * kBlockQ * p.d + 2.0 * kBlockK * p.d));
  }
}

}  // namespace flashattn::cpu
