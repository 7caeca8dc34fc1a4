// append_kernel.cuh — writes k_new/v_new into the cache at cache_seqlens[b] … + s_new − 1
// (k_new rotated there when rotary is on: rotary.cuh).
//
// Runs on the stream before split_kernel, so the attention reads the new keys like any other.
// One thread per 16-byte chunk of one (b, token, KV head) row. Positions past the capacity, and
// rows whose cache_batch_idx or block-table entry is out of range, are dropped (cache_index.cuh).
// Two batch rows that name the same cache row (or physical block) race; the API forbids that.
#pragma once

#include <cstdint>

#include "decode/cache_index.cuh"
#include "decode/decode_params.h"
#include "decode/rotary.cuh"

namespace flashattn::decode {

template <int D>
__global__ void __launch_bounds__(256) append_kernel(const DecodeParams p) {
  constexpr int kChunks = D / 8;
  const int64_t total = static_cast<int64_t>(p.b) * p.s_new * p.h_k * kChunks;
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= total) return;
  const int ch = static_cast<int>(idx % kChunks);
  const int hk = static_cast<int>((idx / kChunks) % p.h_k);
  const int t = static_cast<int>((idx / (static_cast<int64_t>(kChunks) * p.h_k)) % p.s_new);
  const int bi = static_cast<int>(idx / (static_cast<int64_t>(kChunks) * p.h_k * p.s_new));
  const CacheRow row = cache_row(p, bi);
  const int j = row.cached + t;
  if (row.cache_batch < 0 || j >= p.capacity()) return;
  const int blk = p.paged() ? physical_block(p, bi, j) : row.cache_batch;
  if (blk < 0) return;
  const uint16_t* kn = static_cast<const uint16_t*>(p.k_new) + bi * p.knew_stride.batch +
                       static_cast<int64_t>(t) * p.knew_stride.row + static_cast<int64_t>(hk) * p.knew_stride.head;
  const uint16_t* vn = static_cast<const uint16_t*>(p.v_new) + bi * p.vnew_stride.batch +
                       static_cast<int64_t>(t) * p.vnew_stride.row + static_cast<int64_t>(hk) * p.vnew_stride.head;
  uint16_t* kc = static_cast<uint16_t*>(p.k_cache) + key_offset(p, p.k_stride, blk, j, hk);
  uint16_t* vc = static_cast<uint16_t*>(p.v_cache) + key_offset(p, p.v_stride, blk, j, hk);
  reinterpret_cast<uint4*>(kc)[ch] = p.rotary() ? rotated_chunk(p, kn, ch, j) : __ldg(reinterpret_cast<const uint4*>(kn) + ch);
  reinterpret_cast<uint4*>(vc)[ch] = __ldg(reinterpret_cast<const uint4*>(vn) + ch);
}

}  // namespace flashattn::decode
