// cpu_backend.h — the CPU backend: exact attention on host memory, the reference path.
//
// Every function reads the shared AttnParams (cuda/params.h) with HOST pointers and strides in
// elements. Semantics are flash-attn's: layout (b, s, heads, d); GQA/MQA; sliding window /
// bottom-right causal through key_range(); a query row that sees no key gives zeros and LSE -inf;
// float32, float16 and bfloat16 (16-bit data are raw bits, upcast to float, math in float32, results
// rounded to nearest even); float8_e4m3 in forward() only (native/cpu/fp8.h: decoded and descaled, float32
// math, out in p.out_dtype).
//
// `threads <= 0` means default_threads(). Errors are thrown as std::invalid_argument (the request
// cannot be served) or std::runtime_error (out of memory, a worker failed); nothing aborts.
// Results never depend on the thread count or on scheduling: every reduction has a fixed order.
#pragma once

#include "cuda/params.h"

namespace flashattn::cpu {

// std::thread::hardware_concurrency(), at least 1.
int default_threads();

// Which SIMD instance of the kernels runs on this CPU, for probe()/bench output, e.g.
// "avx2+fma (8-wide vectors)" or "generic (4-wide vectors)". FLASHATTN_CPU_SIMD=generic in the
// environment forces the generic one (the results differ only by float rounding).
const char* simd_path();

// Tiled FlashAttention forward with online softmax. Writes p.out (b, s_q, h, d) and
// p.lse (b, h, s_q). Memory O(s_q + s_k) per thread; the s_q x s_k matrix is never formed.
void forward(const AttnParams& p, int threads);

// "Standard attention", the benchmark baseline: forms the full s_q x s_k float score matrix of one
// (batch, head) at a time per thread, softmax, then P.V. Same outputs and semantics as forward().
void naive_forward(const AttnParams& p, int threads);

// FlashAttention backward. Reads p.dout, q, k, v, out, lse (as written by forward); writes
// p.dq (b, s_q, h, d), p.dk and p.dv (b, s_k, h_k, d) summed over the query heads of a KV head.
// Recomputes P from the LSE; memory O(s_q + s_k). Always deterministic (bit-identical run to run,
// for any thread count), so p.deterministic changes nothing here.
void backward(const AttnParams& p, int threads);

}  // namespace flashattn::cpu
