// backward.cpp — FlashAttention backward on the CPU (P recomputed from the LSE, O(s) memory).
//
//   P  = exp(scale * Q K^T - lse)        masked entries 0
//   dV = P^T dO          dP = dO V^T      D = rowsum(dO * O)      dS = P * (dP - D)
//   dQ = scale * dS K    dK = scale * dS^T Q
//
// The scores are formed exactly as forward.cpp forms them: Q times scale (rounded to float), then
// the dot products with K in the same order. So where the forward's LSE equals its row max (a
// one-hot row: large inputs), exp(s - LSE) is exactly 1 here, and the recomputed P sums to 1 to
// within the rounding of the LSE itself at any input magnitude.
//
// Three passes, each a set of independent tasks that write disjoint outputs, so no locks, no
// atomics on data, and no reduction whose order depends on scheduling: the gradients are
// bit-identical for any thread count.
//   1. D for every query row.
//   2. dK, dV: one task per (batch, KV head, key block). It owns those dK/dV rows and loops over the
//      group's query heads and the query rows that can see its keys, in a fixed order.
//   3. dQ: one task per (batch, query head, query block). It loops over the key blocks its rows can
//      see, recomputing S, P and dP.
// Pass 3 recomputes S and dP that pass 2 already formed (7 tile matmuls instead of 5): that is
// the price of determinism without a per-thread dQ copy of O(threads * s_q * h * d) memory.
// Pass 2 works on S (rows = queries), pass 3 on S^T (rows = keys): in each, the operands that change
// from tile to tile are used untransposed, and the fixed ones are transposed once per task.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <new>
#include <vector>

#include "native/cpu/common.h"
#include "native/cpu/cpu_backend.h"
#include "native/cpu/simd.h"
#include "native/cpu/tensor_io.h"
#include "native/cpu/tile_math.h"

namespace flashattn::cpu {

namespace {

struct BwdScratch {
  std::vector<float> kt, vt;   // (d, kBlockK)   K / V of the task's key block, transposed (pass 2)
  std::vector<float> q, dout;  // (kBlockQ, d)   Q / dO rows as float (pass 2)
  std::vector<float> qt, dot;  // (d, kBlockQ)   Q^T / dO^T of the task's query block (pass 3)
  std::vector<float> k, v;     // (kBlockK, d)   K rows as float; V rows as float for 16-bit (pass 3)
  std::vector<float> p, ds;    // (kBlockQ, kBlockK) pass 2: S then P, dP then dS;
                               // (kBlockK, kBlockQ) pass 3: the same, transposed
  std::vector<float> lse, dd;  // (kBlockQ)      LSE (pass 3: +inf for rows that see nothing), D
  std::vector<float> acc, acc2;  // pass 2: dK, dV (kBlockK, d); pass 3: dQ (kBlockQ, d)
  std::vector<float> rows;     // (kTransposeRows, d) for load_rows_transposed; pass 1: one row

  explicit BwdScratch(int d)
      : kt(size_t(d) * kBlockK), vt(size_t(d) * kBlockK), q(size_t(kBlockQ) * d), dout(size_t(kBlockQ) * d),
        qt(size_t(d) * kBlockQ), dot(size_t(d) * kBlockQ), k(size_t(kBlockK) * d), v(size_t(kBlockK) * d),
        p(size_t(kBlockQ) * kBlockK), ds(size_t(kBlockQ) * kBlockK), lse(kBlockQ), dd(kBlockQ),
        acc(size_t(std::max(kBlockQ, kBlockK)) * d), acc2(size_t(kBlockK) * d), rows(size_t(kTransposeRows) * d) {}
};

struct BwdArgs {
  const AttnParams& p;
  const RowRanges& rr;
  const float* D;  // (b, h, s_q)
  TensorView q, k, v, dout;
  int keys_lo, keys_hi;         // the keys some query row sees: [keys_lo, keys_hi)
  std::atomic<bool>* nan_out;   // set when a gradient came out NaN
};

// Pass 1: D[b, h, i] = sum_c dO[b, i, h, c] * O[b, i, h, c], in float with the matmul that forms
// dP = dO V^T below (same products, same order). Where a row is one-hot (large inputs) O is that
// key's V row exactly, so dP - D is exactly 0 there, as it is in exact arithmetic, instead of the
// rounding noise of a float dot product, which scale * K would turn into a dq of order |q|^2 ulp.
// The dot product runs as a (1 x d) . (d x W) product whose first column is O's row and the rest
// zeros: the vector path of the matmul, which is the one dP takes (the scalar tail path may fuse
// multiply-adds differently under -ffp-contract).
template <int W>
FLASHATTN_CPU_INLINE void row_dots(const AttnParams& p, int b, int h, float* D, float* x, float* y) {
  const TensorView dout = view(p.dout, p.dtype, p.do_stride);
  const TensorView out = view(p.out, p.dtype, p.o_stride);
  float* col = y + p.d;  // (d, W): O's row in column 0
  std::fill(col, col + size_t(p.d) * W, 0.f);
  float dot[W];
  for (int i = 0; i < p.s_q; ++i) {
    dout.load_row(b, i, h, p.d, x);
    out.load_row(b, i, h, p.d, y);
    for (int c = 0; c < p.d; ++c) col[size_t(c) * W] = y[c];
    gemm<W, false>(1, W, p.d, x, p.d, col, W, dot, W);
    D[i] = dot[0];
  }
}

// Pass 2: dK, dV of keys [j0, j0 + kBlockK) of KV head hk. Rows of the tiles are queries:
//   S = (scale Q) K^T, P = exp(S - lse), dP = dO V^T, dS = P (dP - D); dV += P^T dO,
//   dK += dS^T (scale Q).
// K^T and V^T are formed once per task.
template <int W>
FLASHATTN_CPU_INLINE void dkdv_tile(const BwdArgs& a, int b, int hk, int j0, BwdScratch& w) {
  const AttnParams& p = a.p;
  const int d = p.d;
  const int nk = std::min(kBlockK, p.s_k - j0);
  float* dk = w.acc.data();   // (nk, d)
  float* dv = w.acc2.data();  // (nk, d)
  std::fill(dk, dk + size_t(nk) * d, 0.f);
  std::fill(dv, dv + size_t(nk) * d, 0.f);

  int qlo, qhi;
  a.rr.rows_of_keys(j0, j0 + nk, &qlo, &qhi);
  if (qlo < qhi) {
    load_rows_transposed(a.k, b, j0, nk, hk, d, w.kt.data(), kBlockK, w.rows.data());
    load_rows_transposed(a.v, b, j0, nk, hk, d, w.vt.data(), kBlockK, w.rows.data());
    const int g = p.group_size();
    for (int h = hk * g; h < (hk + 1) * g; ++h) {
      const int64_t row0 = (static_cast<int64_t>(b) * p.h + h) * p.s_q;  // (b, h, 0) in lse and D
      for (int i0 = qlo; i0 < qhi; i0 += kBlockQ) {
        const int nq = std::min(kBlockQ, qhi - i0);
        // Q and dO are B operands below (re-read for every 6 output rows): copied, see forward.cpp.
        load_rows(a.q, b, i0, nq, h, d, w.q.data(), d, p.scale);
        load_rows(a.dout, b, i0, nq, h, d, w.dout.data(), d);
        const float* qp = w.q.data();
        const float* dop = w.dout.data();
        const ptrdiff_t ldq = d, lddo = d;
        float* P = w.p.data();
        float* dS = w.ds.data();
        gemm<W, false>(nq, nk, d, qp, ldq, w.kt.data(), kBlockK, P, kBlockK);     // S = (scale Q) K^T
        gemm<W, false>(nq, nk, d, dop, lddo, w.vt.data(), kBlockK, dS, kBlockK);  // dP = dO V^T
        for (int r = 0; r < nq; ++r) {
          float* pr = P + size_t(r) * kBlockK;
          float* dsr = dS + size_t(r) * kBlockK;
          if (a.rr.empty(i0 + r)) {  // the row sees no key: P = 0 (its lse is -inf: no inf - inf)
            std::fill(pr, pr + nk, 0.f);
            std::fill(dsr, dsr + nk, 0.f);
            continue;
          }
          exp_row_minus_lse<W>(pr, nk, p.lse[row0 + i0 + r]);  // a NaN lse makes the row NaN
        }
        mask_tile(P, kBlockK, nq, nk, i0, j0, a.rr, 0.f);
        for (int r = 0; r < nq; ++r) {
          const float* pr = P + size_t(r) * kBlockK;
          float* dsr = dS + size_t(r) * kBlockK;
          const float D = a.D[row0 + i0 + r];
          for (int j = 0; j < nk; ++j) dsr[j] = pr[j] * (dsr[j] - D);
        }
        gemm_tn<W, true>(nk, d, nq, P, kBlockK, dop, lddo, dv, d);   // dV += P^T dO
        gemm_tn<W, true>(nk, d, nq, dS, kBlockK, qp, ldq, dk, d);    // dK += dS^T Q
      }
    }
  }
  const MutTensorView DK = mut_view(p.dk, p.dtype, p.dk_stride);
  const MutTensorView DV = mut_view(p.dv, p.dtype, p.dv_stride);
  bool nan = false;
  for (int j = 0; j < nk; ++j) {
    if (j0 + j < a.keys_lo || j0 + j >= a.keys_hi) {  // no row sees this key (NaN elsewhere must not reach it)
      DK.store_zero_row(b, j0 + j, hk, d);
      DV.store_zero_row(b, j0 + j, hk, d);
      continue;
    }
    nan = nan || row_has_nan(dk + size_t(j) * d, d) || row_has_nan(dv + size_t(j) * d, d);
    DK.store_row(b, j0 + j, hk, d, dk + size_t(j) * d);  // Q carried the scale
    DV.store_row(b, j0 + j, hk, d, dv + size_t(j) * d);
  }
  if (nan) a.nan_out->store(true, std::memory_order_relaxed);
}

// Pass 3: dQ of rows [i0, i0 + kBlockQ) of query head h. The tiles are transposed (rows = keys,
// columns = queries), so no K or V tile needs a transpose (V is read in place for float32) and the
// per-query LSE and D apply lane-wise:
//   S^T = K (scale Q)^T, P^T = exp(S^T - lse), dP^T = V dO^T, dS^T = P^T (dP^T - D); dQ += (dS^T)^T K.
template <int W>
FLASHATTN_CPU_INLINE void dq_tile(const BwdArgs& a, int b, int h, int i0, BwdScratch& w) {
  const AttnParams& p = a.p;
  const int d = p.d;
  const int nq = std::min(kBlockQ, p.s_q - i0);
  const int nqp = (nq + 7) / 8 * 8;  // columns processed: padded to whole vectors
  const int hk = h / p.group_size();
  const MutTensorView DQ = mut_view(p.dq, p.dtype, p.dq_stride);

  int klo, khi;
  a.rr.keys_of_rows(i0, i0 + nq, &klo, &khi);
  if (klo >= khi) {
    for (int r = 0; r < nq; ++r) DQ.store_zero_row(b, i0 + r, h, d);
    return;
  }
  std::fill(w.qt.begin(), w.qt.end(), 0.f);
  std::fill(w.dot.begin(), w.dot.end(), 0.f);
  load_rows_transposed(a.q, b, i0, nq, h, d, w.qt.data(), kBlockQ, w.rows.data(), p.scale);
  load_rows_transposed(a.dout, b, i0, nq, h, d, w.dot.data(), kBlockQ, w.rows.data());
  const int64_t row0 = (static_cast<int64_t>(b) * p.h + h) * p.s_q + i0;
  for (int r = 0; r < kBlockQ; ++r) {
    const bool live = r < nq && !a.rr.empty(i0 + r);  // a NaN lse stays: it makes the row NaN
    w.lse[r] = live ? p.lse[row0 + r] : kInf;  // +inf: P = exp(s - inf) = 0, no inf - inf
    w.dd[r] = r < nq ? a.D[row0 + r] : 0.f;
  }
  float* dq = w.acc.data();  // (nq, d)
  std::fill(dq, dq + size_t(nq) * d, 0.f);

  for (int j0 = klo; j0 < khi; j0 += kBlockK) {
    const int nk = std::min(kBlockK, khi - j0);
    // K is the B operand of dQ += dS K: copied (see forward.cpp); V is only an A operand.
    load_rows(a.k, b, j0, nk, hk, d, w.k.data(), d);
    const float* kp = w.k.data();
    const ptrdiff_t ldk = d;
    ptrdiff_t ldv;
    const float* vp = rows_as_float(a.v, b, j0, nk, hk, d, w.v.data(), &ldv);
    float* Pt = w.p.data();
    float* dSt = w.ds.data();
    gemm<W, false>(nk, nqp, d, kp, ldk, w.qt.data(), kBlockQ, Pt, kBlockQ);    // S^T = K (scale Q)^T
    col_exp_minus_lse<W>(Pt, nk, kBlockQ, nqp, w.lse.data());                  // P^T
    mask_tile_transposed(Pt, kBlockQ, nq, nk, i0, j0, a.rr, 0.f);
    gemm<W, false>(nk, nqp, d, vp, ldv, w.dot.data(), kBlockQ, dSt, kBlockQ);  // dP^T = V dO^T
    col_softmax_grad<W>(Pt, dSt, nk, kBlockQ, nqp, w.dd.data());              // dS^T
    gemm_tn<W, true>(nq, d, nk, dSt, kBlockQ, kp, ldk, dq, d);                // dQ += dS K
  }
  bool nan = false;
  for (int r = 0; r < nq; ++r) {
    if (a.rr.empty(i0 + r)) {  // sees no key: dq = 0 (NaN elsewhere in the block must not reach it)
      DQ.store_zero_row(b, i0 + r, h, d);
      continue;
    }
    nan = nan || row_has_nan(dq + size_t(r) * d, d);
    DQ.store_row(b, i0 + r, h, d, dq + size_t(r) * d, p.scale);
  }
  if (nan) a.nan_out->store(true, std::memory_order_relaxed);
}

struct TileFns {
  void (*dots)(const AttnParams&, int, int, float*, float*, float*);
  void (*dkdv)(const BwdArgs&, int, int, int, BwdScratch&);
  void (*dq)(const BwdArgs&, int, int, int, BwdScratch&);
};

void dots_generic(const AttnParams& p, int b, int h, float* D, float* x, float* y) { row_dots<4>(p, b, h, D, x, y); }

void dkdv_generic(const BwdArgs& a, int b, int hk, int j0, BwdScratch& w) { dkdv_tile<4>(a, b, hk, j0, w); }
void dq_generic(const BwdArgs& a, int b, int h, int i0, BwdScratch& w) { dq_tile<4>(a, b, h, i0, w); }
#if FLASHATTN_CPU_HAVE_AVX2
FLASHATTN_CPU_TARGET_AVX2 void dots_avx2(const AttnParams& p, int b, int h, float* D, float* x, float* y) {
  row_dots<8>(p, b, h, D, x, y);
}
FLASHATTN_CPU_TARGET_AVX2 void dkdv_avx2(const BwdArgs& a, int b, int hk, int j0, BwdScratch& w) {
  dkdv_tile<8>(a, b, hk, j0, w);
}
FLASHATTN_CPU_TARGET_AVX2 void dq_avx2(const BwdArgs& a, int b, int h, int i0, BwdScratch& w) {
  dq_tile<8>(a, b, h, i0, w);
}
#endif

TileFns pick_tile_fns() {
#if FLASHATTN_CPU_HAVE_AVX2
  if (active_simd() == Simd::kAvx2Fma8) return {dots_avx2, dkdv_avx2, dq_avx2};
#endif
  return {dots_generic, dkdv_generic, dq_generic};
}

}  // namespace

void backward(const AttnParams& p, int threads) {
  check_params(p, Op::kBackward);
  if (p.b == 0) return;

  const int q_blocks = (p.s_q + kBlockQ - 1) / kBlockQ;
  const int k_blocks = (p.s_k + kBlockK - 1) / kBlockK;
  const int64_t n_rows = static_cast<int64_t>(p.b) * p.h;              // pass 1 tasks
  const int64_t n_dkdv = static_cast<int64_t>(p.b) * p.h_k * k_blocks;  // pass 2 tasks
  const int64_t n_dq = static_cast<int64_t>(p.b) * p.h * q_blocks;      // pass 3 tasks
  const int workers = worker_count(threads, std::max({n_rows, n_dkdv, n_dq, int64_t(1)}));

  try {
    const RowRanges ranges(p);
    std::vector<float> D(static_cast<size_t>(p.b) * p.h * p.s_q);
    std::vector<BwdScratch> scratch;
    scratch.reserve(static_cast<size_t>(workers));
    for (int w = 0; w < workers; ++w) scratch.emplace_back(p.d);

    const TileFns tiles = pick_tile_fns();
    if (p.s_q > 0 && p.s_k > 0) {
      parallel_for(n_rows, static_cast<int>(std::min<int64_t>(workers, n_rows)), [&](int64_t t, int worker) {
        BwdScratch& w = scratch[worker];
        tiles.dots(p, static_cast<int>(t / p.h), static_cast<int>(t % p.h), D.data() + t * p.s_q, w.rows.data(),
                   w.acc.data());
      });
    }
    int keys_lo, keys_hi;
    ranges.keys_of_rows(0, p.s_q, &keys_lo, &keys_hi);
    std::atomic<bool> nan_out{false};
    const BwdArgs args{p,
                       ranges,
                       D.data(),
                       view(p.q, p.dtype, p.q_stride),
                       view(p.k, p.dtype, p.k_stride),
                       view(p.v, p.dtype, p.v_stride),
                       view(p.dout, p.dtype, p.do_stride),
                       keys_lo,
                       keys_hi,
                       &nan_out};
    parallel_for(n_dkdv, static_cast<int>(std::min<int64_t>(workers, n_dkdv)), [&](int64_t t, int worker) {
      // First key blocks first: under a causal mask the most query rows see them.
      const int kb = static_cast<int>(t % k_blocks);
      const int64_t bh = t / k_blocks;
      tiles.dkdv(args, static_cast<int>(bh / p.h_k), static_cast<int>(bh % p.h_k), kb * kBlockK,
                scratch[worker]);
    });
    parallel_for(n_dq, static_cast<int>(std::min<int64_t>(workers, n_dq)), [&](int64_t t, int worker) {
      const int qb = q_blocks - 1 - static_cast<int>(t % q_blocks);
      const int64_t bh = t / q_blocks;
      tiles.dq(args, static_cast<int>(bh / p.h), static_cast<int>(bh % p.h), qb * kBlockQ, scratch[worker]);
    });
    if (nan_out.load()) check_overflow(p, Op::kBackward);
  } catch (const std::bad_alloc&) {
    throw_oom("backward", "per-thread tiles and the D = rowsum(dO * O) vector",
              4.0 * (static_cast<double>(p.b) * p.h * p.s_q + workers * 12.0 * kBlockQ * p.d));
  }
}

}  // namespace flashattn::cpu
