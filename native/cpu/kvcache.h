// kvcache.h — the CPU backend of flashAttentionWithKVCache (the oracle of the decode kernels).
//
// Reads the same DecodeParams as the kernels (cuda/decode/decode_params.h), with HOST pointers:
// appends k_new/v_new (rotary applied to k_new) into the cache in place, then attends each batch
// row to its first cache_seqlens[b] + s_new keys through cpu::forward, with causal / window
// aligned to that row's own length. The request layer has already checked every host int32
// value; positions past the capacity are still skipped here, never written.
#pragma once

#include "cuda/decode/decode_params.h"

namespace flashattn::cpu {

// Writes p.out (b, s_q, h, d) and p.lse (b, h, s_q); updates p.k_cache / p.v_cache in place.
void kvcache_forward(const decode::DecodeParams& p, int threads);

}  // namespace flashattn::cpu
