// varlen.h — the CPU backend of flashAttentionVarlen / flashAttentionVarlenBackward (the oracle of
// the varlen kernels): a batch of sequences of different lengths packed along one token axis,
// each attended on its own through cpu::forward / cpu::backward as a batch of one. So every mask
// means per sequence exactly what it means in the padded API (causal and windows aligned to the
// bottom-right corner of that sequence's own [seqlenQ_b, seqlenK_b] block), and sequence b's
// results are bit for bit those of a padded call on that sequence alone.
//
// p carries h, h_k, d, dtype, scale, window, and p.b = the number of sequences; p.s_q and p.s_k are
// the packed totals (totalQ, totalK); the strides' row and head steps are those of one token of the
// packed [total, heads, d] tensors (their batch steps are not read). cu_seqlens_q and cu_seqlens_k
// hold b + 1 offsets, 0 first, non-decreasing, totals last: the request layer has checked them
// (native/varlen/varlen_request.cpp), so nothing here reads or writes outside the tensors.
#pragma once

#include <cstdint>

#include "cuda/params.h"

namespace flashattn::cpu {

// Writes p.out (totalQ, h, d) and p.lse (h, totalQ): lse[h][cu_seqlens_q[b] + i] is row i of
// sequence b. A sequence with no keys gives zeros and lse -inf, one with no queries nothing.
void varlen_forward(const AttnParams& p, const int32_t* cu_seqlens_q, const int32_t* cu_seqlens_k, int threads);

// Reads p.dout, q, k, v, out (totalQ or totalK rows) and p.lse (h, totalQ, as varlen_forward wrote
// it); writes p.dq (totalQ, h, d), p.dk and p.dv (totalK, h_k, d; keys of a sequence with no
// queries get 0).
void varlen_backward(const AttnParams& p, const int32_t* cu_seqlens_q, const int32_t* cu_seqlens_k, int threads);

}  // namespace flashattn::cpu
