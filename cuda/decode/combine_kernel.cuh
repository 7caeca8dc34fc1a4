// combine_kernel.cuh — merges the splits' partial results by their LSE (flash-decoding's reduce).
//
//   LSE = log Σ_s exp(lse_s),   O = Σ_s exp(lse_s − LSE) · O_s
// where O_s is already normalized by its own split's sum. A split that saw no key has lse_s =
// −inf and weight 0 (its O_s is skipped, not multiplied, so nothing unwritten is ever read); a
// row whose every split is empty gets zeros and LSE −inf.
#pragma once

#include <cstdint>

#include "sm80/mma.h"
#include "decode/decode_params.h"
#include "decode/decode_tile.h"

namespace flashattn::decode {

// One warp per packed row (b * h_k * m_total rows); each lane owns D/32 consecutive columns.
template <typename E, int D>
__global__ void __launch_bounds__(128) combine_kernel(const DecodeParams p, const DecodeLaunch L) {
  using T = typename E::T;
  constexpr int kPerLane = D / 32;  // 2, 4 or 8 floats
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  // Launched as a programmatic dependent of the split kernel (sm_90+): wait here until every
  // split CTA has finished and its partials are visible.
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
  const int64_t rows = static_cast<int64_t>(p.b) * p.h_k * L.m_total;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * 4 + (threadIdx.x >> 5);
  if (row >= rows) return;
  const int lane = threadIdx.x & 31;
  const int64_t split_stride = rows;  // workspace rows per split

  float mx = -INFINITY;
  for (int s = 0; s < L.num_splits; ++s) mx = fmaxf(mx, L.lse_ws[s * split_stride + row]);
  float acc[kPerLane];
#pragma unroll
  for (int x = 0; x < kPerLane; ++x) acc[x] = 0.f;
  float sum = 0.f;
  if (mx != -INFINITY) {
    for (int s = 0; s < L.num_splits; ++s) {
      const float ls = L.lse_ws[s * split_stride + row];
      if (ls == -INFINITY) continue;
      const float w = __expf(ls - mx);
      sum += w;
      const float* src = L.o_ws + (s * split_stride + row) * D + lane * kPerLane;
#pragma unroll
      for (int x = 0; x < kPerLane; x += 2) {
        const float2 v = *reinterpret_cast<const float2*>(src + x);
        acc[x] += w * v.x;
        acc[x + 1] += w * v.y;
      }
    }
  }
  const float inv = sum > 0.f ? 1.f / sum : 0.f;
  const int r = static_cast<int>(row % L.m_total);
  const int64_t bh = row / L.m_total;
  const int bi = static_cast<int>(bh / p.h_k), hk = static_cast<int>(bh % p.h_k);
  const int i = r / L.group, g = r % L.group;
  const int hq = hk * L.group + g;
  T* dst = static_cast<T*>(p.out) + bi * p.o_stride.batch + static_cast<int64_t>(i) * p.o_stride.row +
           static_cast<int64_t>(hq) * p.o_stride.head + lane * kPerLane;
#pragma unroll
  for (int x = 0; x < kPerLane; x += 2) {
    reinterpret_cast<uint32_t*>(dst)[x / 2] = sm80::pack2<E>(acc[x] * inv, acc[x + 1] * inv);
  }
  if (lane == 0 && p.lse != nullptr)
    p.lse[(static_cast<int64_t>(bi) * p.h + hq) * p.s_q + i] = sum > 0.f ? mx + __logf(sum) : -INFINITY;
}

}  // namespace flashattn::decode
