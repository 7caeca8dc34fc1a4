// fp8_vt.h — Vᵀ for the e4m3 forward. fp8 wgmma reads its B operand K-major only, so O += P V
// needs V with the keys contiguous: this pass writes Vᵀ (b, h_k, d, s_k rounded up to 64) into a
// workspace before the kernel runs (zeros past s_k, so the zero probabilities of masked and tail
// keys never meet garbage).
//
// Inside each group of 32 keys the columns are permuted: column c holds key fp8_key_of_column(c),
// the key whose probability the consumer packs into fragment column c (fwd_softmax.h,
// to_operand_a). P·V sums over keys, so the product is unchanged and P needs no shuffles.
#pragma once

#include <cstddef>
#include <cstdint>

#include <cuda_runtime.h>

#include "params.h"
#include "sm90/fp8_workspace.h"

namespace flashattn::sm90 {

// Key (0..31, within its group of 32) that fragment column c (0..31) of an m64k32 e4m3 A operand
// stands for: thread quad lane t holds columns 4t..4t+3 and 16+4t..16+4t+3, and its accumulators
// keys 2t, 2t+1 of each 8-key block.
#if defined(__CUDACC__)
__host__ __device__
#endif
constexpr int fp8_key_of_column(int c) {
  return 16 * (c / 16) + 8 * ((c % 4) / 2) + 2 * ((c % 16) / 4) + (c % 2);
}

// The permutation is one: every key of a group of 32 stands for exactly one fragment column.
constexpr bool fp8_key_order_is_permutation() {
  unsigned seen = 0;
  for (int c = 0; c < 32; ++c) seen |= 1u << fp8_key_of_column(c);
  return seen == 0xffffffffu;
}
static_assert(fp8_key_order_is_permutation(), "fp8_key_of_column must permute 0..31");

// Writes Vᵀ of p.v (b, s_k, h_k, d; strides multiples of 8 elements, base 8-byte aligned) to `vt`
// (fp8_vt_bytes(p) bytes) on `stream`.
void fp8_transpose_v(const AttnParams& p, void* vt, cudaStream_t stream);

}  // namespace flashattn::sm90

namespace flashattn::sm90 {

// The e4m3 forward (sm90_forward's float8_e4m3 branch, fp8_fwd.cu): Vᵀ into a stream-ordered
// workspace of fp8_vt_bytes(p), then the kernel for p's head dim and output dtype.
void sm90_forward_fp8(const AttnParams& p, cudaStream_t stream);

}  // namespace flashattn::sm90
