// rotary.cuh — flash-attn's rotary embedding on the decode path: k_new rotated as the append
// kernel writes it into the cache, q rotated into the workspace before the split kernel reads it.
//
// The arithmetic is the CPU backend's (native/cpu/kvcache.cpp rotate()), product by product with
// no fused multiply-add, each value rounded once to the dtype: for a pair (x1, x2) at angle row
// pos, x1' = x1·cos − x2·sin and x2' = x1·sin + x2·cos in float32. Pairs are (2i, 2i+1) when
// interleaved, else (i, i + rotary_dim/2); elements at or past rotary_dim pass through unchanged.
// pos is clamped to the table, [0, rotary_seqlen − 1], as on the CPU.
#pragma once

#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "decode/cache_index.cuh"
#include "decode/decode_params.h"

namespace flashattn::decode {

__device__ __forceinline__ float bits_to_float(uint16_t bits, bool bf16) {
  return bf16 ? __uint_as_float(static_cast<uint32_t>(bits) << 16) : __half2float(__ushort_as_half(bits));
}

__device__ __forceinline__ uint16_t float_to_bits(float x, bool bf16) {
  return bf16 ? __bfloat16_as_ushort(__float2bfloat16_rn(x)) : __half_as_ushort(__float2half_rn(x));
}

// The 8 elements [8·ch, 8·ch + 8) of the 16-bit row `row` (d elements, contiguous) after rotation
// at angle row `pos`, as one 16-byte chunk.
__device__ __forceinline__ uint4 rotated_chunk(const DecodeParams& p, const uint16_t* row, int ch, int pos) {
  const uint4 own = __ldg(reinterpret_cast<const uint4*>(row) + ch);
  const int first = 8 * ch;
  if (first >= p.rotary_dim) return own;
  const bool bf16 = p.dtype == DType::kBFloat16;
  const int half = p.rotary_dim / 2;
  pos = pos < 0 ? 0 : (pos >= p.rotary_seqlen ? p.rotary_seqlen - 1 : pos);
  const uint16_t* cos_row = static_cast<const uint16_t*>(p.rotary_cos) + static_cast<int64_t>(pos) * half;
  const uint16_t* sin_row = static_cast<const uint16_t*>(p.rotary_sin) + static_cast<int64_t>(pos) * half;
  // The partner chunk: the same chunk when interleaved, else the one half a rotary_dim away
  // (rotary_dim is a multiple of 16, so half is a whole number of chunks).
  const int partner_ch = p.rotary_interleaved ? ch : (first < half ? ch + half / 8 : ch - half / 8);
  const uint4 other = __ldg(reinterpret_cast<const uint4*>(row) + partner_ch);
  const uint16_t* x = reinterpret_cast<const uint16_t*>(&own);
  const uint16_t* y = reinterpret_cast<const uint16_t*>(&other);
  uint4 result;
  uint16_t* r = reinterpret_cast<uint16_t*>(&result);
#pragma unroll
  for (int e = 0; e < 8; ++e) {
    const int idx = first + e;
    int i;           // the angle index
    bool second;     // this element is x2 of its pair
    float x1, x2;
    if (p.rotary_interleaved) {
      i = idx / 2;
      second = idx & 1;
      x1 = bits_to_float(x[e & ~1], bf16);
      x2 = bits_to_float(x[e | 1], bf16);
    } else {
      second = idx >= half;
      i = second ? idx - half : idx;
      x1 = bits_to_float(second ? y[e] : x[e], bf16);
      x2 = bits_to_float(second ? x[e] : y[e], bf16);
    }
    const float c = bits_to_float(__ldg(cos_row + i), bf16), s = bits_to_float(__ldg(sin_row + i), bf16);
    const float v = second ? __fadd_rn(__fmul_rn(x1, s), __fmul_rn(x2, c)) : __fsub_rn(__fmul_rn(x1, c), __fmul_rn(x2, s));
    r[e] = float_to_bits(v, bf16);
  }
  return result;
}

// q rotated into `q_rot`, contiguous (b, s_q, h, d): query token i of row b at cache_seqlens[b] + i
// when causal or windowed, else at cache_seqlens[b] (flash-attn's convention). One thread per
// 16-byte chunk.
template <int D>
__global__ void __launch_bounds__(256) rotary_q_kernel(const DecodeParams p, uint16_t* q_rot) {
  constexpr int kChunks = D / 8;
  const int64_t total = static_cast<int64_t>(p.b) * p.s_q * p.h * kChunks;
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= total) return;
  const int ch = static_cast<int>(idx % kChunks);
  const int hq = static_cast<int>((idx / kChunks) % p.h);
  const int i = static_cast<int>((idx / (static_cast<int64_t>(kChunks) * p.h)) % p.s_q);
  const int bi = static_cast<int>(idx / (static_cast<int64_t>(kChunks) * p.h * p.s_q));
  const int cached = cache_row(p, bi).cached;
  const bool local = p.window_left >= 0 || p.window_right >= 0;
  const uint16_t* row = static_cast<const uint16_t*>(p.q) + bi * p.q_stride.batch + static_cast<int64_t>(i) * p.q_stride.row +
                        static_cast<int64_t>(hq) * p.q_stride.head;
  reinterpret_cast<uint4*>(q_rot)[idx] = rotated_chunk(p, row, ch, local ? cached + i : cached);
}

}  // namespace flashattn::decode
