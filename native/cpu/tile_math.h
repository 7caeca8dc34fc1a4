// tile_math.h — the small dense primitives the CPU attention tiles are made of: a register-blocked
// C (+)= A.B (or A^T.B), a vectorized exp2, and the softmax steps along rows or down columns of a
// tile. Internal to native/cpu/.
//
// Every primitive is a template on W, the SIMD width in floats, written with GCC/Clang vector
// extensions (portable: SSE2 / NEON for W = 4, AVX for W = 8) and a plain-struct fallback for other
// compilers. The tile code of forward/backward is instantiated twice: W = 4 for any x86-64 or arm64
// CPU, and W = 8 inside functions compiled with target("avx2,fma") and picked at run time
// (simd.h). Everything here is FLASHATTN_CPU_INLINE (always_inline) so that it is compiled with the
// ISA of the tile function it ends up in.
//
// Reductions keep explicit independent lanes combined in a fixed order: results do not depend on
// threads or timing (they do differ, by rounding, between the W = 4 and W = 8 paths: FMA, lanes).
//
// W = 8 values passed by value inside a function without AVX enabled make GCC warn that the ABI
// would differ (-Wpsabi); they never cross a call boundary (always inlined), hence the pragma.
#pragma once

#if defined(__clang__)
#if __has_warning("-Wpsabi")
#pragma clang diagnostic ignored "-Wpsabi"
#endif
#elif defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>

#if defined(__GNUC__) || defined(__clang__)
#define FLASHATTN_CPU_INLINE inline __attribute__((always_inline))
#else
#define FLASHATTN_CPU_INLINE inline
#endif

// Defining it as 0 builds the plain-struct fallback with GCC/Clang too (check_cpu does, to test it).
#ifndef FLASHATTN_CPU_GNU_VECTORS
#if defined(__GNUC__) || defined(__clang__)
#define FLASHATTN_CPU_GNU_VECTORS 1
#else
#define FLASHATTN_CPU_GNU_VECTORS 0
#endif
#endif

namespace flashattn::cpu {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kLog2e = 1.4426950408889634f;

// ---- vector types ------------------------------------------------------------------------------

#if FLASHATTN_CPU_GNU_VECTORS
template <int W> struct Vec;
template <> struct Vec<4> {
  typedef float f __attribute__((vector_size(16)));
  typedef int32_t i __attribute__((vector_size(16)));
};
template <> struct Vec<8> {
  typedef float f __attribute__((vector_size(32)));
  typedef int32_t i __attribute__((vector_size(32)));
};
// Reinterpret the bits of a vector as another vector type of the same size.
#define FLASHATTN_CPU_VCAST(T, x) ((T)(x))
#else
// Fallback for compilers without vector extensions: W lanes in a struct, element-wise operators.
template <class T, int W>
struct SoftVec {
  T v[W];
  T& operator[](int k) { return v[k]; }
  const T& operator[](int k) const { return v[k]; }
};
#define FLASHATTN_CPU_SOFT_OP(op)                                                       \
  template <class T, int W>                                                             \
  inline SoftVec<T, W> operator op(const SoftVec<T, W>& a, const SoftVec<T, W>& b) {   \
    SoftVec<T, W> r;                                                                    \
    for (int k = 0; k < W; ++k) r.v[k] = a.v[k] op b.v[k];                              \
    return r;                                                                           \
  }
FLASHATTN_CPU_SOFT_OP(+)
FLASHATTN_CPU_SOFT_OP(-)
FLASHATTN_CPU_SOFT_OP(*)
FLASHATTN_CPU_SOFT_OP(&)
FLASHATTN_CPU_SOFT_OP(|)
#undef FLASHATTN_CPU_SOFT_OP
template <int W>  // shifted as unsigned: no signed-overflow UB (vector lanes wrap)
inline SoftVec<int32_t, W> operator<<(const SoftVec<int32_t, W>& a, const SoftVec<int32_t, W>& b) {
  SoftVec<int32_t, W> r;
  for (int k = 0; k < W; ++k) r.v[k] = static_cast<int32_t>(static_cast<uint32_t>(a.v[k]) << b.v[k]);
  return r;
}
template <class T, int W>
inline SoftVec<T, W>& operator+=(SoftVec<T, W>& a, const SoftVec<T, W>& b) {
  for (int k = 0; k < W; ++k) a.v[k] += b.v[k];
  return a;
}
template <class T, int W>
inline SoftVec<T, W> operator~(const SoftVec<T, W>& a) {
  SoftVec<T, W> r;
  for (int k = 0; k < W; ++k) r.v[k] = ~a.v[k];
  return r;
}
template <class T, int W>
inline SoftVec<int32_t, W> operator<(const SoftVec<T, W>& a, const SoftVec<T, W>& b) {
  SoftVec<int32_t, W> r;
  for (int k = 0; k < W; ++k) r.v[k] = a.v[k] < b.v[k] ? -1 : 0;
  return r;
}
template <class T, int W>
inline SoftVec<int32_t, W> operator>(const SoftVec<T, W>& a, const SoftVec<T, W>& b) { return b < a; }
template <class To, class From>
inline To soft_vcast(const From& x) {
  static_assert(sizeof(To) == sizeof(From), "vector sizes differ");
  To t;
  std::memcpy(&t, &x, sizeof t);
  return t;
}
template <int W> struct Vec {
  typedef SoftVec<float, W> f;
  typedef SoftVec<int32_t, W> i;
};
#define FLASHATTN_CPU_VCAST(T, x) (soft_vcast<T>(x))
#endif

template <int W>
FLASHATTN_CPU_INLINE typename Vec<W>::f vload(const float* p) {
  typename Vec<W>::f v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

template <int W>
FLASHATTN_CPU_INLINE void vstore(float* p, const typename Vec<W>::f& v) {
  std::memcpy(p, &v, sizeof v);
}

// All lanes = a, as the expression a - 0: scalar - vector is a broadcast, and x - (+0) == x folds
// exactly (no -ffast-math needed). It must stay an expression in the caller (hence the macro): GCC
// lowers a 32-byte vector built from a scalar inside a function compiled without AVX, even an
// always_inline one, into a chain of lane inserts, and this sits in the innermost matmul loop.
#if FLASHATTN_CPU_GNU_VECTORS
#define FLASHATTN_CPU_SPLAT(W, a) (static_cast<float>(a) - typename Vec<W>::f{})
#define FLASHATTN_CPU_SPLAT_I(W, a) (static_cast<int32_t>(a) - typename Vec<W>::i{})
#else
template <class V, class T>
inline V soft_splat(T a) {
  V v;
  for (auto& x : v.v) x = a;
  return v;
}
#define FLASHATTN_CPU_SPLAT(W, a) (soft_splat<typename Vec<W>::f>(static_cast<float>(a)))
#define FLASHATTN_CPU_SPLAT_I(W, a) (soft_splat<typename Vec<W>::i>(static_cast<int32_t>(a)))
#endif

template <int W>
FLASHATTN_CPU_INLINE typename Vec<W>::f vsplat(float a) { return FLASHATTN_CPU_SPLAT(W, a); }

template <int W>
FLASHATTN_CPU_INLINE typename Vec<W>::i vsplat_i(int32_t a) { return FLASHATTN_CPU_SPLAT_I(W, a); }

// mask ? a : b, lane by lane (mask lanes are all ones or all zeros).
template <int W>
FLASHATTN_CPU_INLINE typename Vec<W>::f vselect(const typename Vec<W>::i& mask, const typename Vec<W>::f& a,
                                                const typename Vec<W>::f& b) {
  using I = typename Vec<W>::i;
  using F = typename Vec<W>::f;
  return FLASHATTN_CPU_VCAST(F, (mask & FLASHATTN_CPU_VCAST(I, a)) | (~mask & FLASHATTN_CPU_VCAST(I, b)));
}

template <int W>
FLASHATTN_CPU_INLINE typename Vec<W>::f vmax(const typename Vec<W>::f& a, const typename Vec<W>::f& b) {
  return vselect<W>(a > b, a, b);
}

// ---- C (+)= op(A) . B --------------------------------------------------------------------------
// B (K, N) row-major with leading dim ldb; C (M, N) row-major, ldc. op(A) (M, K) is either A stored
// row-major (M, K) with leading dim lda (kTransA = false), or A stored row-major (K, M), i.e. used
// transposed (kTransA = true), which spares the attention tiles an explicit transpose of P or dS.
// An MR x (NV * W) block of C stays in registers for the whole K loop; each step broadcasts one A
// element per row and multiplies a row segment of B, so no sum is ever reassociated. Leading dims
// may be a tensor's row stride: operands are read in place where the dtype allows.

template <bool kTransA>
FLASHATTN_CPU_INLINE float a_at(const float* A, ptrdiff_t lda, int r, int k) {
  return kTransA ? A[static_cast<ptrdiff_t>(k) * lda + r] : A[r * lda + k];
}

template <int W, int MR, int NV, bool kTransA, bool kAccumulate>
FLASHATTN_CPU_INLINE void gemm_block(int K, const float* __restrict A, ptrdiff_t lda,
                                     const float* __restrict B, ptrdiff_t ldb, float* __restrict C,
                                     ptrdiff_t ldc) {
  using F = typename Vec<W>::f;
  F acc[MR][NV];
  for (int r = 0; r < MR; ++r)
    for (int n = 0; n < NV; ++n) acc[r][n] = kAccumulate ? vload<W>(C + r * ldc + n * W) : vsplat<W>(0.f);
  for (int k = 0; k < K; ++k) {
    const float* b = B + k * ldb;
    F bv[NV];
    for (int n = 0; n < NV; ++n) bv[n] = vload<W>(b + n * W);
    for (int r = 0; r < MR; ++r) {
      const F a = FLASHATTN_CPU_SPLAT(W, a_at<kTransA>(A, lda, r, k));
      for (int n = 0; n < NV; ++n) acc[r][n] += a * bv[n];
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int n = 0; n < NV; ++n) vstore<W>(C + r * ldc + n * W, acc[r][n]);
}

// One column of C (the tail past the last full vector).
template <int MR, bool kTransA, bool kAccumulate>
FLASHATTN_CPU_INLINE void gemm_column(int K, const float* __restrict A, ptrdiff_t lda,
                                      const float* __restrict B, ptrdiff_t ldb, float* __restrict C,
                                      ptrdiff_t ldc) {
  float acc[MR];
  for (int r = 0; r < MR; ++r) acc[r] = kAccumulate ? C[r * ldc] : 0.f;
  for (int k = 0; k < K; ++k) {
    const float b = B[k * ldb];
    for (int r = 0; r < MR; ++r) acc[r] += a_at<kTransA>(A, lda, r, k) * b;
  }
  for (int r = 0; r < MR; ++r) C[r * ldc] = acc[r];
}

template <int W, int MR, bool kTransA, bool kAccumulate>
FLASHATTN_CPU_INLINE void gemm_rows(int N, int K, const float* A, ptrdiff_t lda, const float* B,
                                    ptrdiff_t ldb, float* C, ptrdiff_t ldc) {
  int n = 0;
  for (; n + 2 * W <= N; n += 2 * W)
    gemm_block<W, MR, 2, kTransA, kAccumulate>(K, A, lda, B + n, ldb, C + n, ldc);
  for (; n + W <= N; n += W) gemm_block<W, MR, 1, kTransA, kAccumulate>(K, A, lda, B + n, ldb, C + n, ldc);
  for (; n < N; ++n) gemm_column<MR, kTransA, kAccumulate>(K, A, lda, B + n, ldb, C + n, ldc);
}

// C (M, N) (+)= op(A) (M, K) . B (K, N); "+=" when kAccumulate.
template <int W, bool kTransA, bool kAccumulate>
FLASHATTN_CPU_INLINE void gemm_op(int M, int N, int K, const float* A, ptrdiff_t lda, const float* B,
                                  ptrdiff_t ldb, float* C, ptrdiff_t ldc) {
  // Rows of op(A) start at A + m * lda, or at column m (A + m) when A is used transposed.
  auto a_rows = [&](int m) { return kTransA ? A + m : A + m * lda; };
  int m = 0;
  for (; m + 6 <= M; m += 6)  // 6 x 16 with W = 8: 12 accumulators, 8 loads per 12 FMAs
    gemm_rows<W, 6, kTransA, kAccumulate>(N, K, a_rows(m), lda, B, ldb, C + m * ldc, ldc);
  for (; m + 4 <= M; m += 4)
    gemm_rows<W, 4, kTransA, kAccumulate>(N, K, a_rows(m), lda, B, ldb, C + m * ldc, ldc);
  for (; m < M; ++m)
    gemm_rows<W, 1, kTransA, kAccumulate>(N, K, a_rows(m), lda, B, ldb, C + m * ldc, ldc);
}

// C (M, N) (+)= A (M, K) . B (K, N)
template <int W, bool kAccumulate>
FLASHATTN_CPU_INLINE void gemm(int M, int N, int K, const float* A, ptrdiff_t lda, const float* B,
                               ptrdiff_t ldb, float* C, ptrdiff_t ldc) {
  gemm_op<W, false, kAccumulate>(M, N, K, A, lda, B, ldb, C, ldc);
}

// C (M, N) (+)= A^T . B, with A stored (K, M)
template <int W, bool kAccumulate>
FLASHATTN_CPU_INLINE void gemm_tn(int M, int N, int K, const float* A, ptrdiff_t lda, const float* B,
                                  ptrdiff_t ldb, float* C, ptrdiff_t ldc) {
  gemm_op<W, true, kAccumulate>(M, N, K, A, lda, B, ldb, C, ldc);
}

// ---- exp2 --------------------------------------------------------------------------------------
// 2^x for the softmax (x <= 0 after subtracting the row max), branch-free so it vectorizes; libm's
// expf does not without -ffast-math. x = n + f with n = round(x), f in [-0.5, 0.5]; 2^f by its
// degree-7 Taylor series in f*ln2 (truncation < 2e-8 relative, so within ~2 ulp of 2^x); 2^n built
// in the exponent bits. Anything below -126.5, -inf (a masked score) included, gives exactly 0
// (n = -127 makes the scale's bits 0); x is clamped at 128 above, so +inf (and anything from 127.5
// up) gives +inf (n = 128 makes the scale's bits those of +inf). NaN in, NaN out.

constexpr float kExp2Magic = 12582912.f;  // 1.5 * 2^23: x + magic rounds x to an integer in the low bits
constexpr float kExp2C7 = 1.525273380405984e-05f, kExp2C6 = 1.5403530393381608e-04f,
                kExp2C5 = 1.3333558146428443e-03f, kExp2C4 = 9.618129107628477e-03f,
                kExp2C3 = 5.550410866482158e-02f, kExp2C2 = 2.402265069591007e-01f,
                kExp2C1 = 6.931471805599453e-01f;

FLASHATTN_CPU_INLINE float exp2_approx(float x) {
  x = x < -127.f ? -127.f : x;
  x = x > 128.f ? 128.f : x;
  const float t = x + kExp2Magic;
  const float f = x - (t - kExp2Magic);
  uint32_t tb;
  std::memcpy(&tb, &t, sizeof tb);
  const int32_t n = static_cast<int32_t>(tb) - 0x4b400000;  // round(x) as an integer
  float p = kExp2C7;
  p = p * f + kExp2C6;
  p = p * f + kExp2C5;
  p = p * f + kExp2C4;
  p = p * f + kExp2C3;
  p = p * f + kExp2C2;
  p = p * f + kExp2C1;
  p = p * f + 1.f;
  const uint32_t sb = static_cast<uint32_t>(n + 127) << 23;
  float scale;
  std::memcpy(&scale, &sb, sizeof scale);
  return p * scale;
}

template <int W>
FLASHATTN_CPU_INLINE typename Vec<W>::f vexp2(const typename Vec<W>::f& x0) {
  using F = typename Vec<W>::f;
  using I = typename Vec<W>::i;
  const F lo = vsplat<W>(-127.f), hi = vsplat<W>(128.f), magic = vsplat<W>(kExp2Magic);
  F x = vselect<W>(x0 < lo, lo, x0);
  x = vselect<W>(x > hi, hi, x);
  const F t = x + magic;
  const F f = x - (t - magic);
  const I n = FLASHATTN_CPU_VCAST(I, t) - vsplat_i<W>(0x4b400000);
  F p = vsplat<W>(kExp2C7);
  p = p * f + vsplat<W>(kExp2C6);
  p = p * f + vsplat<W>(kExp2C5);
  p = p * f + vsplat<W>(kExp2C4);
  p = p * f + vsplat<W>(kExp2C3);
  p = p * f + vsplat<W>(kExp2C2);
  p = p * f + vsplat<W>(kExp2C1);
  p = p * f + vsplat<W>(1.f);
  const F scale = FLASHATTN_CPU_VCAST(F, (n + vsplat_i<W>(127)) << vsplat_i<W>(23));
  return p * scale;
}

// ---- row operations ----------------------------------------------------------------------------

template <int W>
FLASHATTN_CPU_INLINE float row_max(const float* x, int n) {
  using F = typename Vec<W>::f;
  F lanes = vsplat<W>(-kInf);
  int j = 0;
  for (; j + W <= n; j += W) lanes = vmax<W>(lanes, vload<W>(x + j));
  float m = -kInf;
  for (int k = 0; k < W; ++k) m = lanes[k] > m ? lanes[k] : m;
  for (; j < n; ++j) m = x[j] > m ? x[j] : m;
  return m;
}

// Scores are in the natural-log domain everywhere (q pre-scaled by the softmax scale, nothing
// else folded in), so that the forward's row max m and LSE = m + ln(l) are made of the very scores
// the backward recomputes: where a row is one-hot (large inputs), LSE == m exactly and the
// backward's exp(s - LSE) is exactly 1. exp(z) is 2^(z * log2 e) with z = s - m (or s - LSE)
// formed first, while it is small, so the change of base costs no precision.

// x[j] = exp(x[j] - sub) for j < n; returns the sum of the new values. `sub` finite.
template <int W>
FLASHATTN_CPU_INLINE float exp_row_sum(float* x, int n, float sub) {
  using F = typename Vec<W>::f;
  const F s = vsplat<W>(sub), c = vsplat<W>(kLog2e);
  F lanes = vsplat<W>(0.f);
  int j = 0;
  for (; j + W <= n; j += W) {
    const F e = vexp2<W>((vload<W>(x + j) - s) * c);
    vstore<W>(x + j, e);
    lanes += e;
  }
  float sum = 0.f;
  for (int k = 0; k < W; ++k) sum += lanes[k];
  for (; j < n; ++j) {
    x[j] = exp2_approx((x[j] - sub) * kLog2e);
    sum += x[j];
  }
  return sum;
}

// x[j] = exp(x[j] - lse) for j < n (x already scaled).
template <int W>
FLASHATTN_CPU_INLINE void exp_row_minus_lse(float* x, int n, float lse) {
  using F = typename Vec<W>::f;
  const F l = vsplat<W>(lse), c = vsplat<W>(kLog2e);
  int j = 0;
  for (; j + W <= n; j += W) vstore<W>(x + j, vexp2<W>((vload<W>(x + j) - l) * c));
  for (; j < n; ++j) x[j] = exp2_approx((x[j] - lse) * kLog2e);
}

// ---- column operations -------------------------------------------------------------------------
// On a tile stored transposed, s (rows, ld) with column r = query r and row j = key j, the softmax
// of a query is a column, and these run down W columns at a time: every lane is one query, so no
// horizontal reduction is needed and each query's sum is accumulated in key order whatever W is.
// n (the columns touched) must be a multiple of W.

// m[r] = max(m[r], max_j s[j][r]) for r < n.
template <int W>
FLASHATTN_CPU_INLINE void col_max(const float* s, int rows, ptrdiff_t ld, int n, float* m) {
  using F = typename Vec<W>::f;
  for (int r = 0; r < n; r += W) {
    F acc = vload<W>(m + r);
    for (int j = 0; j < rows; ++j) acc = vmax<W>(acc, vload<W>(s + j * ld + r));
    vstore<W>(m + r, acc);
  }
}

// s[j][r] = exp(s[j][r] - sub[r]) and sum[r] += s[j][r], for r < n. sub finite.
template <int W>
FLASHATTN_CPU_INLINE void col_exp_sum(float* s, int rows, ptrdiff_t ld, int n, const float* sub, float* sum) {
  using F = typename Vec<W>::f;
  const F c = vsplat<W>(kLog2e);
  for (int r = 0; r < n; r += W) {
    const F sb = vload<W>(sub + r);
    F acc = vload<W>(sum + r);
    for (int j = 0; j < rows; ++j) {
      const F e = vexp2<W>((vload<W>(s + j * ld + r) - sb) * c);
      vstore<W>(s + j * ld + r, e);
      acc += e;
    }
    vstore<W>(sum + r, acc);
  }
}

// s[j][r] = exp(s[j][r] - lse[r]) for r < n (s already scaled). lse[r] = +inf gives P = 0 down
// column r: that is how a query that sees no key is passed in (no inf - inf).
template <int W>
FLASHATTN_CPU_INLINE void col_exp_minus_lse(float* s, int rows, ptrdiff_t ld, int n, const float* lse) {
  using F = typename Vec<W>::f;
  const F c = vsplat<W>(kLog2e);
  for (int r = 0; r < n; r += W) {
    const F l = vload<W>(lse + r);
    for (int j = 0; j < rows; ++j) vstore<W>(s + j * ld + r, vexp2<W>((vload<W>(s + j * ld + r) - l) * c));
  }
}

// The softmax backward on a tile: ds[j][r] = p[j][r] * (ds[j][r] - D[r]) for r < n, ds holding dP.
template <int W>
FLASHATTN_CPU_INLINE void col_softmax_grad(const float* p, float* ds, int rows, ptrdiff_t ld, int n,
                                           const float* D) {
  using F = typename Vec<W>::f;
  for (int r = 0; r < n; r += W) {
    const F dd = vload<W>(D + r);
    for (int j = 0; j < rows; ++j)
      vstore<W>(ds + j * ld + r, vload<W>(p + j * ld + r) * (vload<W>(ds + j * ld + r) - dd));
  }
}

FLASHATTN_CPU_INLINE void scale_row(float* x, int n, float s) {
  for (int j = 0; j < n; ++j) x[j] *= s;
}

}  // namespace flashattn::cpu
