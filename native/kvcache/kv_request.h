// kv_request.h — the KV-cache request of binding.ts (NativeKvCacheRequest), read from JS and
// checked on the JS thread, as a plain struct the worker threads can use.
//
// Everything a bad request can get wrong is refused here, with the field path (E_ARG, E_SHAPE,
// E_DTYPE, E_UNSUPPORTED): shapes and dtypes of every tensor and, for host int32 tensors, their
// values: cacheSeqlens[b] + seqlenNew within the cache, block table entries a row uses within
// [0, numBlocks), cacheBatchIdx within the cache's rows, no cache position appended twice. So the
// CPU backend never reads or writes outside the arrays it was given. Device int32 tensors cannot
// be read without waiting on the GPU: the kernels clamp lengths to the cache and read unmapped
// blocks as absent keys (docs/decode-notes.md).
#pragma once

#include <napi.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "cuda/decode/decode_params.h"
#include "request/request.h"
#include "request/tensor.h"

namespace flashattn::native {

struct KvCacheJob {
  Backend backend = Backend::kCpu;
  int device = 0;
  int threads = 0;         // CPU threads; 0 = the CPU backend's default
  bool on_device = false;  // every tensor is a DeviceBuffer (backend 'cuda' only)
  bool poison = false;     // fill the outputs with NaN bits before the backend runs (tests)
  std::shared_ptr<StreamCore> stream;
  // Sizes, flags, scale, window, rotary layout; strides of the tensors as the backend sees them
  // (dense copies for host tensors, the DeviceBuffers' own strides on the device). Pointers are
  // bound where the op runs.
  decode::DecodeParams params;

  // Read: q, cacheSeqlens and the optional kNew, vNew, blockTable, cacheBatchIdx, rotaryCos,
  // rotarySin (absent ones have an empty name). Read and, with kNew, written: kCache, vCache.
  // Written: out, lse (absent: the execution layer allocates them).
  TensorArg q, k_cache, v_cache, k_new, v_new, cache_seqlens, block_table, cache_batch_idx, rotary_cos, rotary_sin;
  TensorArg out, lse;

  // Host caches with kNew: the (dim 0, dim 1) cache index of every appended token (every KV head
  // of it is written), so the settle step copies back exactly what this call appended.
  struct Slot {
    int64_t outer = 0;  // cache row (contiguous) or physical block (paged)
    int64_t inner = 0;  // position in that row or block
  };
  std::vector<Slot> appended;

  bool appends() const { return !k_new.name.empty(); }
  bool paged() const { return !block_table.name.empty(); }
  // Keys a row's cache holds: maxSeqlen (contiguous) or pageSize * maxBlocksPerSeq (paged).
  int64_t capacity() const {
    return paged() ? static_cast<int64_t>(params.page_size) * params.max_blocks_per_seq : params.max_seqlen;
  }
  // q, kNew, vNew, cacheSeqlens, blockTable, cacheBatchIdx, rotaryCos, rotarySin: those present.
  std::vector<TensorArg*> inputs();
  // kCache, vCache.
  std::vector<TensorArg*> caches() { return {&k_cache, &v_cache}; }
  std::vector<TensorArg*> outputs() { return {&out, &lse}; }
};

KvCacheJob parse_kvcache(Napi::Value request);

}  // namespace flashattn::native
