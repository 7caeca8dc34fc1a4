// decode_params.h — the plain struct the split-KV decode kernels read (KV-cache attention).
//
// Semantics are flash-attn's flash_attn_with_kvcache: optional k_new/v_new are written into the
// cache at positions cache_seqlens[b] … cache_seqlens[b] + s_new − 1 (in place), then query row i
// of batch b attends to the first cache_seqlens[b] + s_new keys of its cache row, with causal /
// window aligned to that row's own length (key_range() in params.h with s_k = that length).
//
// Dimension letters (as in params.h):
//   b     batch (query rows)                 b_c   batch of the contiguous cache (>= b with cache_batch_idx)
//   s_q   query tokens per row (1..16 for decode and speculative decoding; larger works)
//   s_new new tokens appended per row (0 when k_new is null)
//   h     query heads                        h_k   key/value heads (h % h_k == 0)
//   d     head dimension: 64, 128 or 256
//   s_max cache capacity per row: contiguous max_seqlen, paged page_size * max_blocks_per_seq
// Strides are in ELEMENTS, the d stride is 1. Every 16-bit pointer must be 16-byte aligned and
// every stride a multiple of 8 (the kernels move 16-byte chunks).
#pragma once

#include <cstddef>
#include <cstdint>

#include "params.h"

#if defined(__CUDACC__)
#define FA_DECODE_HD __host__ __device__
#else
#define FA_DECODE_HD
#endif

namespace flashattn::decode {

struct DecodeParams {
  // ---- operands -------------------------------------------------------------------------------
  const void* q = nullptr;  // (b, s_q, h, d)                       dtype
  // Contiguous: (b_c, s_max, h_k, d); k_stride.batch steps one cache row.
  // Paged:      (num_blocks, page_size, h_k, d); k_stride.batch steps one physical block.
  void* k_cache = nullptr;
  void* v_cache = nullptr;
  const void* k_new = nullptr;  // (b, s_new, h_k, d) dtype, or null (then v_new is null too)
  const void* v_new = nullptr;
  void* out = nullptr;          // (b, s_q, h, d) dtype
  float* lse = nullptr;         // (b, h, s_q) float32, natural log; -inf where a row sees no key; may be null

  // (b) device: tokens already in row b's cache; null: every row holds s_max tokens (a plain
  // forward, nothing appended: decode_unsupported allows it only then)
  const int32_t* cache_seqlens = nullptr;
  const int32_t* cache_batch_idx = nullptr;  // (b) device or null: cache row of batch row b (contiguous only)
  const int32_t* block_table = nullptr;      // (b, max_blocks_per_seq) device, or null for a contiguous cache
  int64_t block_table_batch_stride = 0;      // elements between rows of block_table

  Strides q_stride, k_stride, v_stride, knew_stride, vnew_stride, o_stride;

  // ---- sizes ----------------------------------------------------------------------------------
  int b = 0, s_q = 0, h = 0, h_k = 0, d = 0;
  int s_new = 0;
  int batch_cache = 0;         // b_c (contiguous), bounds cache_batch_idx
  int max_seqlen = 0;          // s_max of a contiguous cache (rows per cache batch)
  int page_size = 0;           // paged only: keys per block (any positive value; 16 and 256 tested)
  int num_blocks = 0;          // paged only: physical blocks in k_cache/v_cache
  int max_blocks_per_seq = 0;  // paged only: columns of block_table
  DType dtype = DType::kBFloat16;

  // ---- rotary (flash-attn's): applied to q and k_new at each token's position -------------------
  // cos/sin (s_rot, rotary_dim / 2) dtype; null: none. Rows 0..rotary_dim-1 of each head rotate:
  // interleaved pairs (2i, 2i+1), else halves (i, i + rotary_dim/2). k_new token t of row b sits at
  // cache_seqlens[b] + t; query token i at cache_seqlens[b] + i when causal or windowed, else
  // every query token at cache_seqlens[b] (flash-attn's convention).
  const void* rotary_cos = nullptr;
  const void* rotary_sin = nullptr;
  int rotary_dim = 0;
  int rotary_seqlen = 0;  // s_rot: rows of cos/sin
  bool rotary_interleaved = false;

  // ---- semantics ------------------------------------------------------------------------------
  float scale = 0.f;     // softmax scale (the API fills in 1/sqrt(d))
  int window_left = -1;  // flash-attn window, -1 unbounded; causal is window_right == 0
  int window_right = -1;

  // ---- planning -------------------------------------------------------------------------------
  // Splits of the context (flash-decoding). 0: decode_num_splits() picks from the SM count.
  int num_splits = 0;
  // Upper bound of cache_seqlens[b] + s_new that the heuristic plans for (the lengths live on the
  // device, so the host cannot see them). 0 means the cache capacity s_max.
  int seqlen_k_hint = 0;
  // Bytes of the workspace passed to decode_forward; checked against decode_workspace_bytes().
  size_t workspace_bytes = 0;

  FA_DECODE_HD bool paged() const { return block_table != nullptr; }
  FA_DECODE_HD int group_size() const { return h_k > 0 ? h / h_k : 0; }
  FA_DECODE_HD int capacity() const { return paged() ? page_size * max_blocks_per_seq : max_seqlen; }
  FA_DECODE_HD bool rotary() const { return rotary_cos != nullptr && rotary_dim > 0; }
};

}  // namespace flashattn::decode
