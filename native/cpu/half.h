// half.h — float16 / bfloat16 <-> float32 conversions on raw bits (uint16_t).
//
// Host data for 16-bit dtypes arrive as bits (Node has no Float16Array everywhere), so the CPU
// backend upcasts with these, computes in float32, and rounds back. Every conversion is exact or
// round-to-nearest-even, and keeps NaN a NaN, Inf an Inf, and subnormals as subnormals (no flush to
// zero). Plain integer/float code: no intrinsics, so it compiles for any target.
#pragma once

#include <cstdint>
#include <cstring>

namespace flashattn::cpu {

inline uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

inline float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// float16 bits -> float. Exact (every half is a float). Branch-free (selects only), so a loop of
// it vectorizes: converting K/V tiles is on the hot path for float16 inputs.
inline float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t em = h & 0x7fffu;                            // exponent and mantissa
  const uint32_t normal = (em << 13) + ((127u - 15u) << 23);  // rebias the exponent
  const uint32_t inf_nan = (em << 13) | 0x7f800000u;          // Inf, or NaN with its payload
  // Zero or subnormal: mantissa * 2^-24, exact in float (mantissa < 2^10).
  const uint32_t subnormal = float_bits(static_cast<float>(static_cast<int32_t>(em)) * 5.9604644775390625e-8f);
  // Selects by mask arithmetic: GCC does not if-convert the ?: form here, and a branch stops the
  // loop from vectorizing.
  const uint32_t is_inf_nan = 0u - static_cast<uint32_t>(em >= 0x7c00u);
  const uint32_t is_small = 0u - static_cast<uint32_t>(em < 0x0400u);
  uint32_t r = normal ^ ((normal ^ inf_nan) & is_inf_nan);
  r = r ^ ((r ^ subnormal) & is_small);
  return bits_float(sign | r);
}

// float -> float16 bits, round to nearest, ties to even. Overflow goes to Inf; NaN stays a (quiet)
// NaN with the top payload bits kept.
inline uint16_t float_to_half(float f) {
  uint32_t x = float_bits(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  x &= 0x7fffffffu;
  if (x >= 0x7f800000u) {  // Inf or NaN
    if (x == 0x7f800000u) return sign | 0x7c00u;
    return static_cast<uint16_t>(sign | 0x7e00u | ((x >> 13) & 0x3ffu));
  }
  // 65520 = halfway between 65504 (max half, odd mantissa) and 2^16: ties-to-even rounds it up.
  if (x >= 0x477ff000u) return sign | 0x7c00u;
  if (x < 0x38800000u) {
    // Below the smallest normal half (2^-14): the result is subnormal or zero. Adding 0.5 puts
    // the value's 2^-24 units into the low mantissa bits of a float whose ulp is exactly 2^-24,
    // so the float addition itself does the round-to-nearest-even.
    const float sum = bits_float(x) + 0.5f;
    return static_cast<uint16_t>(sign | (float_bits(sum) - 0x3f000000u));
  }
  // Normal: rebias the exponent and round the 13 dropped mantissa bits to nearest even. A carry
  // out of the mantissa correctly bumps the exponent.
  const uint32_t odd = (x >> 13) & 1u;
  x += (static_cast<uint32_t>(15 - 127) << 23) + 0xfffu + odd;
  return static_cast<uint16_t>(sign | (x >> 13));
}

// bfloat16 bits -> float. Exact.
inline float bf16_to_float(uint16_t b) { return bits_float(static_cast<uint32_t>(b) << 16); }

// float -> bfloat16 bits, round to nearest, ties to even; NaN stays a quiet NaN.
inline uint16_t float_to_bf16(float f) {
  const uint32_t x = float_bits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x0040u);
  const uint32_t odd = (x >> 16) & 1u;
  return static_cast<uint16_t>((x + 0x7fffu + odd) >> 16);
}

}  // namespace flashattn::cpu
