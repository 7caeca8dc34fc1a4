// e4m3.h — the quantization rules quantizeFp8() follows, written once for the host and the device:
// float32 -> float8_e4m3 bits, the per-head scale, and the fixed randomized Hadamard rotation.
// src-ts/fp8.ts (quantizeHost) implements the same rules in TypeScript; the device kernels
// (quant_kernel.cuh) call these functions, so device and host results are bit-identical.
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define FLASHATTN_HD __host__ __device__ __forceinline__
#else
#define FLASHATTN_HD inline
#endif

namespace flashattn::quant {

constexpr float kE4m3Max = 448.f;
// float32's largest power of two: the cap on 448 / amax for a tiny amax.
constexpr float kMaxScale = 1.7014118346046923e38f;  // 2^127
// e4m3's NaN code (S.1111.111); quantizeFp8 writes every NaN with the sign bit clear.
constexpr uint8_t kE4m3NaN = 0x7f;

FLASHATTN_HD uint32_t f32_bits(float x) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(x);
#else
  uint32_t u;
  std::memcpy(&u, &x, 4);
  return u;
#endif
}

// float32 -> e4m3 (OCP E4M3FN: bias 7, no Inf, max ±448), round to nearest even, saturating to
// ±448 (±Inf too); NaN -> 0x7f. Subnormal e4m3 results (|x| < 2^-6) are rounded exactly.
FLASHATTN_HD uint8_t f32_to_e4m3(float x) {
  const uint32_t u = f32_bits(x);
  const uint32_t sign = (u >> 24) & 0x80;
  const int exp = static_cast<int>((u >> 23) & 0xff);
  const uint32_t mant = u & 0x7fffff;
  if (exp == 0xff) return mant == 0 ? static_cast<uint8_t>(sign | 0x7e) : kE4m3NaN;
  const int e = exp - 127 + 7;  // biased e4m3 exponent
  if (e >= 16) return static_cast<uint8_t>(sign | 0x7e);
  if (e <= 0) {
    if (exp == 0) return static_cast<uint8_t>(sign);  // float32 zero or subnormal: rounds to ±0
    const int shift = 141 - exp;                       // value in units of 2^-9 is (1.mant) >> shift
    if (shift > 24) return static_cast<uint8_t>(sign);
    const uint32_t full = mant | 0x800000;
    uint32_t h = full >> shift;
    const uint32_t rem = full & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1))) ++h;  // may carry into the smallest normal
    return static_cast<uint8_t>(sign | h);
  }
  uint32_t h = (static_cast<uint32_t>(e) << 3) | (mant >> 20);
  const uint32_t rem = mant & 0xfffff;
  if (rem > 0x80000 || (rem == 0x80000 && (h & 1))) ++h;
  return static_cast<uint8_t>(sign | (h < 0x7e ? h : 0x7e));
}

// |x| if it counts toward amax (finite), else 0: NaN and ±Inf never set the scale.
FLASHATTN_HD float amax_term(float x) {
  const float a = x < 0.f ? -x : x;
  return a <= 3.4028234663852886e38f ? a : 0.f;  // false for NaN and Inf
}

// scale = min(448 / amax, 2^127) in float32 (1 for an all-zero head); descale = 1 / scale.
FLASHATTN_HD float scale_of(float amax) {
  if (!(amax > 0.f)) return 1.f;
  const float s = kE4m3Max / amax;
  return s < kMaxScale ? s : kMaxScale;
}

// ---- the randomized Hadamard rotation (hadamard: true) -------------------------------------------
// y = H_d · diag(sign) · x / sqrt(d) along the head dim, H_d the Sylvester Hadamard matrix
// (H[j][i] = (-1)^popcount(i & j)) and sign_i = -1 where bit 31 of fmix32(i + kHadamardSeed) is set
// (MurmurHash3's finalizer). Orthogonal: the same rotation of q and of k leaves q·kᵀ unchanged.
// In float32: sign flip, then the butterflies for h = 1, 2, 4, ..., d/2 (pair (j, j + h):
// (a, b) -> (a + b, a - b)), then one multiply by hadamard_norm(d).
constexpr uint32_t kHadamardSeed = 0x2545f491u;

FLASHATTN_HD uint32_t fmix32(uint32_t h) {
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}

FLASHATTN_HD bool hadamard_flips(int i) { return (fmix32(static_cast<uint32_t>(i) + kHadamardSeed) >> 31) != 0; }

// 1/sqrt(d) rounded to float32, for the head dims the rotation takes (0 for any other).
FLASHATTN_HD float hadamard_norm(int d) {
  return d == 64 ? 0.125f : d == 128 ? 0.0883883476483184405f : d == 256 ? 0.0625f : 0.f;
}

FLASHATTN_HD bool hadamard_head_dim_ok(int d) { return d == 64 || d == 128 || d == 256; }

// In place on one row of d floats (host reference; the device kernel does the same operations
// across a warp).
inline void hadamard_row(float* x, int d) {
  for (int i = 0; i < d; ++i)
    if (hadamard_flips(i)) x[i] = -x[i];
  for (int h = 1; h < d; h *= 2) {
    for (int j0 = 0; j0 < d; j0 += 2 * h) {
      for (int j = j0; j < j0 + h; ++j) {
        const float a = x[j], b = x[j + h];
        x[j] = a + b;
        x[j + h] = a - b;
      }
    }
  }
  const float n = hadamard_norm(d);
  for (int i = 0; i < d; ++i) x[i] *= n;
}

}  // namespace flashattn::quant
