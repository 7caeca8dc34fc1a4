// fwd_softmax.h — masking and the online softmax on one warpgroup's wgmma accumulators.
//
// Layout of a (64 x N) fp32 accumulator of m64nNk16: thread t of the warpgroup (warp w = t/32,
// lane l) holds rows w*16 + l/4 ("row 0") and w*16 + l/4 + 8 ("row 1"); register i belongs to
// column block c = i/4 (8 columns each), column 8c + 2(l%4) + (i&1), row (i%4) / 2. A row's values
// thus live in the 4 lanes of one quad, as in mma.sync's m16n8 tiles (common/reduce.h).
#pragma once

#include <cstdint>
#include <type_traits>

#include "sm80/mma.h"
#include "common/reduce.h"
#include "sm90/wgmma.h"

namespace flashattn::sm90 {

constexpr float kNegInf = -__builtin_huge_valf();
constexpr float kLn2 = 0.693147180559945309f;

// e4m3 P is stored as P·2^kFp8PLog2 (the row max's p is 256, in range of e4m3's 448): the small
// probabilities keep e4m3's normal range instead of flushing to its subnormals. l carries the same
// factor, so O / l is unchanged, and the LSE subtracts kFp8PLog2·ln 2.
constexpr int kFp8PLog2 = 8;

// What one (batch, head) multiplies by: the scale of the raw scores (natural units for the LSE,
// log2 units for the softmax), O's factor after O / l, and the LSE's shift (fp8's P offset).
struct OutScale {
  float lse_scale, scale_log2;
  float o_mul, lse_shift;
};

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
// kPLog2 (e4m3 P): every p is multiplied by 2^kPLog2, inside the exp2 (an FFMA instead of the FMUL).
// A row whose max is still -inf (every key so far masked, or every score NaN) uses 0 as its
// offset, so (-inf) - (-inf) never makes a NaN: masked probabilities are exp2(-inf) = 0 and the
// correction exp2(-inf) = 0 (O is 0 anyway). A NaN score (NaN/Inf inputs) is skipped by fmaxf
// but makes its p, hence l and O, NaN, as in PyTorch.
template <bool kFirst, int kPLog2 = 0, int kN>
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
      if constexpr (kPLog2 == 0) {
        s[i] = fast_exp2(__fmul_rn(s[i] - offset, scale_log2));
        s[i + 1] = fast_exp2(__fmul_rn(s[i + 1] - offset, scale_log2));
      } else {
        s[i] = fast_exp2(__fmaf_rn(s[i] - offset, scale_log2, static_cast<float>(kPLog2)));
        s[i + 1] = fast_exp2(__fmaf_rn(s[i + 1] - offset, scale_log2, static_cast<float>(kPLog2)));
      }
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

// Four floats rounded (RNE, saturating to ±448) into one register of four e4m3 bytes, lowest first.
__device__ __forceinline__ uint32_t pack4_e4m3(float a, float b, float c, float d) {
  uint16_t lo, hi;
  // cvt's first source lands in the upper byte.
  asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;\n" : "=h"(lo) : "f"(b), "f"(a));
  asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;\n" : "=h"(hi) : "f"(d), "f"(c));
  return static_cast<uint32_t>(lo) | static_cast<uint32_t>(hi) << 16;
}

// Probabilities (64 x N accumulator layout) -> the A fragments of P·V.
//   16-bit: one m64k16 fragment per 16 keys: key block kk holds column blocks 2kk and 2kk+1, which
//     is exactly the register layout of wgmma's A-from-registers operand (rows l/4 and l/4+8, keys
//     2(l%4)+{0,1} and the same +8).
//   e4m3: one m64k32 fragment per 32 keys. Its register j holds row l/4 (j even) or l/4+8 (j odd),
//     fragment columns 4(l%4)+{0..3} (j < 2) or 16+4(l%4)+{0..3} (j >= 2), while the accumulator
//     gives a thread keys 2(l%4)+{0,1} of each 8-column block. The registers are packed as they
//     lie, so fragment column c of a 32-key group stands for key fp8_key_of_column(c) (below);
//     Vᵀ is written in that order (fp8_vt.h), which makes P·V the same sum.
template <typename Elem, int kN, int kF>
__device__ __forceinline__ void to_operand_a(const float (&s)[kN], uint32_t (&p)[kF][4]) {
  if constexpr (std::is_same_v<Elem, E4m3>) {
    static_assert(kF * 16 == kN, "one m64k32 fragment per 32 keys");
#pragma unroll
    for (int kk = 0; kk < kF; ++kk) {
      const float* x = s + 16 * kk;  // column blocks 4kk..4kk+3
      p[kk][0] = pack4_e4m3(x[0], x[1], x[4], x[5]);
      p[kk][1] = pack4_e4m3(x[2], x[3], x[6], x[7]);
      p[kk][2] = pack4_e4m3(x[8], x[9], x[12], x[13]);
      p[kk][3] = pack4_e4m3(x[10], x[11], x[14], x[15]);
    }
  } else {
    static_assert(kF * 8 == kN, "one m64k16 fragment per 16 keys");
#pragma unroll
    for (int kk = 0; kk < kF; ++kk) {
      p[kk][0] = sm80::pack2<Elem>(s[8 * kk + 0], s[8 * kk + 1]);
      p[kk][1] = sm80::pack2<Elem>(s[8 * kk + 2], s[8 * kk + 3]);
      p[kk][2] = sm80::pack2<Elem>(s[8 * kk + 4], s[8 * kk + 5]);
      p[kk][3] = sm80::pack2<Elem>(s[8 * kk + 6], s[8 * kk + 7]);
    }
  }
}

}  // namespace flashattn::sm90
