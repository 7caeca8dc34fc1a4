// fp8.h — float8_e4m3 inputs on the CPU backend: decode, descale, then the float32 forward.
// Internal to native/cpu/.
#pragma once

#include <cstdint>

#include "cuda/params.h"

namespace flashattn::cpu {

// The value of one OCP float8_e4m3 ("E4M3FN") bit pattern: bias 7, no Inf, S.1111.111 is NaN.
float e4m3_to_float(uint8_t bits);

// The forward for p.dtype == kFloat8E4M3: q, k, v are decoded to float32 and multiplied by their
// descale factors (p.q_descale (b, h), p.k_descale / p.v_descale (b, h_k); null means 1), the
// float32 forward runs on them, and out is rounded to p.out_dtype (bf16 or fp16, nearest even).
// LSE is that of the descaled scores. Same semantics as forward() for every mask and GQA ratio.
void fp8_forward(const AttnParams& p, int threads);

}  // namespace flashattn::cpu
