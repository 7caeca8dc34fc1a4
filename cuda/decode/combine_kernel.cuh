// combine_kernel.cuh — merges the splits' partial results by their LSE (flash-decoding's reduce).
//
//   LSE = log Σ_s exp(lse_s),   O = Σ_s exp(lse_s − LSE) · O_s
// where O_s is already normalized by its own split's sum. A split that saw no key has lse_s =
// −inf and weight 0 (its O_s is skipped, not multiplied, so nothing unwritten is ever read); a
// row whose every split is empty gets zeros and LSE −inf.
//
// Two callers share combine_splits(): the split kernel's fused combine (the last split CTA of a
// tile to arrive merges it, split_kernel.cuh) and combine_kernel, a second launch after the split
// grid (FLASHATTN_DECODE_COMBINE=kernel, decode.cu). Partials are read with ld.global.cg: in the
// fused case other CTAs of the same grid wrote them, and L1 is not coherent.
#pragma once

#include <cstdint>

#include "common/reduce.h"
#include "sm80/mma.h"
#include "decode/decode_params.h"
#include "decode/decode_tile.h"

namespace flashattn::decode {

// Columns col .. col + N - 1 of packed row `row` (of b * h_k * m_total; `rows` per split) merged
// over the splits into acc (normalized); returns the row's LSE (natural log), or -inf with acc all
// zero when no split saw a key.
template <int D, int N>
__device__ __forceinline__ float combine_splits(const DecodeLaunch& L, int64_t rows, int64_t row, int col,
                                                float (&acc)[N]) {
  static_assert(N % 2 == 0, "columns come in pairs");
  float mx = -INFINITY;
  for (int s = 0; s < L.num_splits; ++s) mx = fmaxf(mx, __ldcg(L.lse_ws + s * rows + row));
#pragma unroll
  for (int x = 0; x < N; ++x) acc[x] = 0.f;
  float sum = 0.f;
  if (mx != -INFINITY) {
#pragma unroll 4
    for (int s = 0; s < L.num_splits; ++s) {
      const float ls = __ldcg(L.lse_ws + s * rows + row);
      if (ls == -INFINITY) continue;
      const float w = __expf(ls - mx);
      sum += w;
      const float* src = L.o_ws + (s * rows + row) * D + col;
#pragma unroll
      for (int x = 0; x < N; x += 2) {
        const float2 v = __ldcg(reinterpret_cast<const float2*>(src + x));
        acc[x] += w * v.x;
        acc[x + 1] += w * v.y;
      }
    }
  }
  const float inv = sum > 0.f ? 1.f / sum : 0.f;
#pragma unroll
  for (int x = 0; x < N; ++x) acc[x] *= inv;
  return sum > 0.f ? mx + __logf(sum) : -INFINITY;
}

// Writes columns col .. col + N - 1 of packed row r (query token r / group, head hk * group +
// r % group) of batch row bi to out, and its LSE (from the thread holding column 0).
template <typename E, int N>
__device__ __forceinline__ void store_row(const DecodeParams& p, const DecodeLaunch& L, int bi, int hk, int r, int col,
                                          const float (&acc)[N], float lse) {
  using T = typename E::T;
  const int i = r / L.group, hq = hk * L.group + r % L.group;
  T* dst = static_cast<T*>(p.out) + bi * p.o_stride.batch + static_cast<int64_t>(i) * p.o_stride.row +
           static_cast<int64_t>(hq) * p.o_stride.head + col;
  uint32_t packed[N / 2];
#pragma unroll
  for (int x = 0; x < N; x += 2) packed[x / 2] = sm80::pack2<E>(acc[x], acc[x + 1]);
  if constexpr (N == 8) {
    *reinterpret_cast<uint4*>(dst) = make_uint4(packed[0], packed[1], packed[2], packed[3]);
  } else if constexpr (N == 4) {
    *reinterpret_cast<uint2*>(dst) = make_uint2(packed[0], packed[1]);
  } else {
#pragma unroll
    for (int x = 0; x < N / 2; ++x) reinterpret_cast<uint32_t*>(dst)[x] = packed[x];
  }
  if (col == 0 && p.lse != nullptr) p.lse[(static_cast<int64_t>(bi) * p.h + hq) * p.s_q + i] = lse;
}

// Bytes of shared memory merge_tile_splits needs for `rows` packed rows of `splits` splits.
__host__ __device__ constexpr size_t merge_smem_bytes(int rows, int splits) {
  return static_cast<size_t>(rows) * (splits + 1) * sizeof(float);
}

// The fused combine of one query tile (rows m0 .. m0 + rows_here - 1 of (batch row, KV head) bh),
// run by all kThreads threads of the CTA that counted in last, with `smem` holding
// merge_smem_bytes(rows_here, num_splits). The same sums as combine_splits, with the loads in
// flight together rather than one split after another (each a trip to L2):
//   1. every split's LSE of every row, one load per thread and element, into shared memory;
//   2. per row (one warp), the max, the weights exp(lse_s - max) normalized by their sum, the LSE;
//   3. O per (row, 4 columns) as the weighted sum of the partials, eight splits' loads at a time.
template <typename E, int D, int kThreads>
__device__ __forceinline__ void merge_tile_splits(const DecodeParams& p, const DecodeLaunch& L, int64_t rows_per_split,
                                                  int bi, int hk, int bh, int m0, int rows_here, float* smem) {
  const int S = L.num_splits;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  float* lse_s = smem;               // (rows_here)
  float* w_s = smem + rows_here;     // (rows_here, S): LSE, then weights
  const int64_t row0 = static_cast<int64_t>(bh) * L.m_total + m0;
  for (int idx = tid; idx < rows_here * S; idx += kThreads) {
    const int rr = idx / S, s = idx - rr * S;
    w_s[idx] = __ldcg(L.lse_ws + s * rows_per_split + row0 + rr);
  }
  __syncthreads();
  for (int rr = warp; rr < rows_here; rr += kThreads / 32) {
    float* w = w_s + rr * S;
    float mx = -INFINITY;
    for (int s = lane; s < S; s += 32) mx = fmaxf(mx, w[s]);
    mx = warp_max(mx);
    float sum = 0.f;
    for (int s = lane; s < S; s += 32) {
      // A split that saw no key has LSE -inf: weight 0 (also when every split is empty).
      const float ws = w[s] == -INFINITY ? 0.f : __expf(w[s] - mx);
      w[s] = ws;
      sum += ws;
    }
    sum = warp_sum(sum);
    const float inv = sum > 0.f ? 1.f / sum : 0.f;
    for (int s = lane; s < S; s += 32) w[s] *= inv;
    if (lane == 0) lse_s[rr] = sum > 0.f ? mx + __logf(sum) : -INFINITY;
  }
  __syncthreads();
  constexpr int kQuads = D / 4;
  constexpr int kBatch = 8;  // splits whose partial loads are in flight together
  const int64_t split_step = rows_per_split * D;
  for (int item = tid; item < rows_here * kQuads; item += kThreads) {
    const int rr = item / kQuads, c = (item % kQuads) * 4;
    const float* src = L.o_ws + (row0 + rr) * D + c;
    const float* w = w_s + rr * S;
    float acc[4] = {0.f, 0.f, 0.f, 0.f};
    for (int s0 = 0; s0 < S; s0 += kBatch) {
      float4 v[kBatch];
#pragma unroll
      for (int u = 0; u < kBatch; ++u)
        v[u] = s0 + u < S ? __ldcg(reinterpret_cast<const float4*>(src + (s0 + u) * split_step))
                          : make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll
      for (int u = 0; u < kBatch; ++u) {
        const float ws = s0 + u < S ? w[s0 + u] : 0.f;
        acc[0] += ws * v[u].x;
        acc[1] += ws * v[u].y;
        acc[2] += ws * v[u].z;
        acc[3] += ws * v[u].w;
      }
    }
    store_row<E>(p, L, bi, hk, m0 + rr, c, acc, lse_s[rr]);
  }
}

// One warp per packed row (b * h_k * m_total rows); each lane owns D/32 consecutive columns.
template <typename E, int D>
__global__ void __launch_bounds__(128) combine_kernel(const DecodeParams p, const DecodeLaunch L) {
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
  float acc[kPerLane];
  const float lse = combine_splits<D>(L, rows, row, lane * kPerLane, acc);
  const int64_t bh = row / L.m_total;
  store_row<E>(p, L, static_cast<int>(bh / p.h_k), static_cast<int>(bh % p.h_k), static_cast<int>(row % L.m_total),
               lane * kPerLane, acc, lse);
}

}  // namespace flashattn::decode
