// fwd_softmax.h — masking and the online softmax on one warpgroup's wgmma accumulators.
//
// Layout of a (64 x N) fp32 accumulator of m64nNk16: thread t of the warpgroup (warp w = t/32,
// lane l) holds rows w*16 + l/4 ("row 0") and w*16 + l/4 + 8 ("row 1"); register i belongs to
// column block c = i/4 (8 columns each), column 8c + 2(l%4) + (i&1), row (i%4) / 2. A row's values
// thus live in the 4 lanes of one quad, as in mma.sync's m16n8 tiles (common/reduce.h).
#pragma once

#include <cstdint>

#include "sm80/mma.h"
#include "common/reduce.h"

namespace flashattn::sm90 {

constexpr float kNegInf = -__builtin_huge_valf();

// Sets scores outside each row's visible keys [lo_r, hi_r) to -inf. `col0` is this thread's first
// key index in the block (block start + 2(l%4)). hi is already clamped to s_k, which masks the
// copy engine's zero-filled tail keys too.
template <int kN>
__device__ __forceinline__ void apply_mask(float (&s)[kN], int col0, const int (&lo)[2], const int (&hi)[2]) {
#pragma unroll
  for (int i = 0; i < kN; ++i) {
    const int r = (i % 4) / 2;
    const int col = col0 + (i / 4) * 8 + (i & 1);
    if (col < lo[r] || col >= hi[r]) s[i] = kNegInf;
  }
}

// Running max (raw scores, unscaled) and partial row sum (this thread's columns only; the quad's
// four partial sums are added once, in the epilogue) of this thread's two rows.
struct SoftmaxState {
  float m[2] = {kNegInf, kNegInf};
  float l[2] = {0.f, 0.f};
};

// One key block: updates the row maxima, turns the scores into exp2 probabilities in place and
// returns the factor each row's O must be multiplied by (1 on the first block). The rounding is
// the sm80 forward's (cuda/sm80/fwd_kernel.cuh, softmax_step), which the backward relies on:
//   p    = exp2((s - m)·scale_log2) for the new running max m: the max's own p is exactly 1, so a
//     one-hot row (large inputs) has l = 1 and O = V_argmax bit for bit, and the backward's
//     D = rowsum(dO∘O) cancels its dP exactly (an FFMA form, exp2(s·scale_log2 - round(m·scale_log2)),
//     gives the max p = 2^r for the rounding residual r, and P rounded to 16 bits then disagrees
//     with l by up to an ulp of O);
//   corr = exp2((m_old - m)·scale_log2), exactly 1 when the max did not change.
// A row whose max is still -inf (every key so far masked, or every score NaN) uses 0 as its
// offset, so (-inf) - (-inf) never makes a NaN: masked probabilities are exp2(-inf) = 0 and the
// correction exp2(-inf) = 0 (O is 0 anyway). A NaN score (NaN/Inf inputs) is skipped by fmaxf
// but makes its p, hence l and O, NaN, as in PyTorch.
template <bool kFirst, int kN>
__device__ __forceinline__ void online_softmax(float (&s)[kN], SoftmaxState& st, float scale_log2, float (&corr)[2]) {
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    float mx = st.m[r];
#pragma unroll
    for (int i = 2 * r; i < kN; i += 4) mx = fmaxf(mx, fmaxf(s[i], s[i + 1]));
    mx = quad_max(mx);
    const float offset = mx == kNegInf ? 0.f : mx;
    corr[r] = kFirst ? 1.f : fast_exp2(__fmul_rn(st.m[r] - offset, scale_log2));
    float sum = 0.f;
#pragma unroll
    for (int i = 2 * r; i < kN; i += 4) {
      s[i] = fast_exp2(__fmul_rn(s[i] - offset, scale_log2));
      s[i + 1] = fast_exp2(__fmul_rn(s[i + 1] - offset, scale_log2));
      sum += s[i] + s[i + 1];
    }
    st.l[r] = kFirst ? sum : st.l[r] * corr[r] + sum;
    st.m[r] = mx;
  }
}

// O *= corr per row.
template <int kN>
__device__ __forceinline__ void rescale(float (&o)[kN], const float (&corr)[2]) {
#pragma unroll
  for (int i = 0; i < kN; ++i) o[i] *= corr[(i % 4) / 2];
}

// Probabilities (64 x N accumulator layout) -> the A fragments of P·V, one m64k16 fragment per
// 16 keys: key block kk holds column blocks 2kk and 2kk+1, which is exactly the register layout of
// wgmma's A-from-registers operand (rows l/4 and l/4+8, keys 2(l%4)+{0,1} and the same +8).
template <typename Elem, int kN>
__device__ __forceinline__ void to_operand_a(const float (&s)[kN], uint32_t (&p)[kN / 8][4]) {
#pragma unroll
  for (int kk = 0; kk < kN / 8; ++kk) {
    p[kk][0] = sm80::pack2<Elem>(s[8 * kk + 0], s[8 * kk + 1]);
    p[kk][1] = sm80::pack2<Elem>(s[8 * kk + 2], s[8 * kk + 3]);
    p[kk][2] = sm80::pack2<Elem>(s[8 * kk + 4], s[8 * kk + 5]);
    p[kk][3] = sm80::pack2<Elem>(s[8 * kk + 6], s[8 * kk + 7]);
  }
}

}  // namespace flashattn::sm90
