// cache_index.cuh — where key position j of batch row b lives in a contiguous or paged KV cache,
// and the clamped lengths. Shared by the append kernel and the attention kernel so they agree.
//
// Lengths and indices come from device memory the host never saw, so nothing here trusts them:
// cache_seqlens[b] is clamped to [0, s_max], the attended length to s_max, a cache_batch_idx or
// block_table entry out of range makes the row (or that key) read as empty instead of reading
// out of bounds. The API validates host-side values before they get here.
#pragma once

#include <cstdint>

#include "decode/decode_params.h"

namespace flashattn::decode {

struct CacheRow {
  int cache_batch;  // contiguous: the cache row; -1 when cache_batch_idx is out of range
  int cached;       // tokens already cached, clamped to [0, s_max]
  int seqlen_k;     // keys attended: min(cached + s_new, s_max); 0 when the row is invalid
};

__device__ __forceinline__ CacheRow cache_row(const DecodeParams& p, int b) {
  CacheRow r;
  const int cap = p.capacity();
  // No cache_seqlens: every row's cache is full (a plain forward served by the decode kernels).
  int cs = p.cache_seqlens != nullptr ? __ldg(p.cache_seqlens + b) : cap;
  cs = cs < 0 ? 0 : (cs > cap ? cap : cs);
  r.cached = cs;
  r.cache_batch = b;
  if (!p.paged() && p.cache_batch_idx != nullptr) {
    const int cb = __ldg(p.cache_batch_idx + b);
    r.cache_batch = (cb >= 0 && cb < p.batch_cache) ? cb : -1;
  }
  const long long sk = static_cast<long long>(cs) + p.s_new;
  r.seqlen_k = r.cache_batch < 0 ? 0 : static_cast<int>(sk < cap ? sk : cap);
  return r;
}

// Physical block of key position j (paged), or -1 when the table entry is out of range.
__device__ __forceinline__ int physical_block(const DecodeParams& p, int b, int j) {
  const int page = j / p.page_size;
  const int blk = __ldg(p.block_table + b * p.block_table_batch_stride + page);
  return (blk >= 0 && blk < p.num_blocks) ? blk : -1;
}

// Row of key position j within its cache unit: its page's row (paged), else j itself.
__device__ __forceinline__ int row_in_unit(const DecodeParams& p, int j) {
  return p.paged() ? j - (j / p.page_size) * p.page_size : j;
}

// Element offset of row `pos` of cache unit `unit` (a physical block, or a contiguous cache row),
// head hk, d = 0, in a cache with strides `st`.
__device__ __forceinline__ int64_t unit_offset(const Strides& st, int unit, int pos, int hk) {
  return static_cast<int64_t>(unit) * st.batch + static_cast<int64_t>(pos) * st.row + static_cast<int64_t>(hk) * st.head;
}

// Element offset of key position j (head hk, d = 0) in a cache with strides `st`. For a paged
// cache `blk` is physical_block(p, b, j) (>= 0); for a contiguous one it is the cache row.
__device__ __forceinline__ int64_t key_offset(const DecodeParams& p, const Strides& st, int blk, int j, int hk) {
  return unit_offset(st, blk, row_in_unit(p, j), hk);
}

}  // namespace flashattn::decode
