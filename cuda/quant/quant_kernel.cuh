// quant_kernel.cuh — the device kernels of quantizeFp8: one warp per row of d values.
//
//   amax_kernel      per (b, h): max |x| over the finite values (rotated first with hadamard),
//                    one atomicMax per warp on the float's bits (values >= 0 order as their bits,
//                    and max is exact, so the order of the atomics does not change the result)
//   scale_kernel     per (b, h): scale = min(448 / amax, 2^127), descale = 1 / scale, both in
//                    float32 (the amax of the whole tensor for per_tensor)
//   convert_kernel   x · scale rounded to e4m3 (f32_to_e4m3), rows rotated again the same way
// Every floating-point step is one IEEE float32 operation written out (__fadd_rn, __fmul_rn...),
// in the order src-ts/fp8.ts takes them, so device and host give the same bits.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "common/reduce.h"
#include "quant/api.h"
#include "quant/e4m3.h"

namespace flashattn::quant {

constexpr int kWarpsPerBlock = 8;
constexpr int kRowsPerWarp = 8;

__device__ __forceinline__ float load_as_float(const void* base, int64_t i, DType dt) {
  switch (dt) {
    case DType::kFloat16:
      return __half2float(static_cast<const __half*>(base)[i]);
    case DType::kBFloat16:
      return __uint_as_float(static_cast<uint32_t>(static_cast<const uint16_t*>(base)[i]) << 16);
    default:
      return static_cast<const float*>(base)[i];
  }
}

// One row (b, s, h) held by a warp, rotated (hadamard, d = 32·kE): lane l holds elements
// l·kE .. l·kE + kE - 1. The steps of hadamard_row (quant/e4m3.h): diag(sign), the butterflies
// h = 1 .. kE/2 inside the lane, then h = kE .. d/2 across lanes (partner lane l ^ (h / kE), the
// lower element taking a + b and the upper a - b), then one multiply by 1/sqrt(d).
template <int kE>
__device__ __forceinline__ void load_rotated(const QuantParams& p, int64_t base, int lane, float (&x)[kE]) {
#pragma unroll
  for (int e = 0; e < kE; ++e) {
    const float v = load_as_float(p.in, base + lane * kE + e, p.dtype);
    x[e] = hadamard_flips(lane * kE + e) ? -v : v;
  }
#pragma unroll
  for (int h = 1; h < kE; h *= 2) {
#pragma unroll
    for (int e = 0; e < kE; ++e) {
      if ((e & h) == 0) {
        const float a = x[e], b = x[e + h];
        x[e] = __fadd_rn(a, b);
        x[e + h] = __fsub_rn(a, b);
      }
    }
  }
#pragma unroll
  for (int m = 1; m < 32; m *= 2) {
    const bool lower = (lane & m) == 0;
#pragma unroll
    for (int e = 0; e < kE; ++e) {
      const float other = __shfl_xor_sync(0xffffffffu, x[e], m);
      x[e] = lower ? __fadd_rn(x[e], other) : __fsub_rn(other, x[e]);
    }
  }
  const float n = hadamard_norm(32 * kE);
#pragma unroll
  for (int e = 0; e < kE; ++e) x[e] = __fmul_rn(x[e], n);
}

// Calls fn(bh, in_base, out_base, lane) for every row of this block's (b, h) = blockIdx.x, one
// warp per row; blockIdx.y strides over the rows. Rows are warp-uniform (the shuffles need it).
template <typename RowFn>
__device__ __forceinline__ void for_each_row(const QuantParams& p, RowFn&& fn) {
  const int bh = blockIdx.x, bi = bh / p.h, hi = bh % p.h;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t step = static_cast<int64_t>(kWarpsPerBlock) * kRowsPerWarp;
  for (int64_t r0 = static_cast<int64_t>(blockIdx.y) * step; r0 < p.s; r0 += static_cast<int64_t>(gridDim.y) * step) {
    for (int k = 0; k < kRowsPerWarp; ++k) {
      const int64_t si = r0 + static_cast<int64_t>(warp) * kRowsPerWarp + k;
      if (si >= p.s) break;
      fn(bh, bi * p.in_stride_b + si * p.in_stride_s + hi * p.in_stride_h,
         bi * p.out_stride_b + si * p.out_stride_s + hi * p.out_stride_h, lane);
    }
  }
}

// kE == 0: no rotation (any d, lane l taking elements l, l + 32, ...); else hadamard, d = 32·kE.
template <int kE>
__global__ void __launch_bounds__(kWarpsPerBlock * 32) amax_kernel(QuantParams p, float* amax) {
  float m = 0.f;
  for_each_row(p, [&](int, int64_t in, int64_t, int lane) {
    if constexpr (kE == 0) {
      for (int c = lane; c < p.d; c += 32) m = fmaxf(m, amax_term(load_as_float(p.in, in + c, p.dtype)));
    } else {
      float x[kE];
      load_rotated<kE>(p, in, lane, x);
#pragma unroll
      for (int e = 0; e < kE; ++e) m = fmaxf(m, amax_term(x[e]));
    }
  });
  m = warp_max(m);
  if (threadIdx.x % 32 == 0 && m > 0.f) atomicMax(reinterpret_cast<unsigned int*>(amax + blockIdx.x), __float_as_uint(m));
}

// amax: (b·h) maxima, scale: (b·h) out, p.descale: (b·h) out. One thread per (b, h).
__global__ void scale_kernel(QuantParams p, const float* amax, float* scale) {
  const int n = p.b * p.h;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
    float a = amax[i];
    if (p.per_tensor) {
      for (int j = 0; j < n; ++j) a = fmaxf(a, amax[j]);
    }
    const float s = a > 0.f ? fminf(__fdiv_rn(kE4m3Max, a), kMaxScale) : 1.f;
    scale[i] = s;
    p.descale[i] = __frcp_rn(s);
  }
}

template <int kE>
__global__ void __launch_bounds__(kWarpsPerBlock * 32) convert_kernel(QuantParams p, const float* scale) {
  for_each_row(p, [&](int bh, int64_t in, int64_t out, int lane) {
    const float sc = scale[bh];
    if constexpr (kE == 0) {
      for (int c = lane; c < p.d; c += 32) p.out[out + c] = f32_to_e4m3(__fmul_rn(load_as_float(p.in, in + c, p.dtype), sc));
    } else {
      float x[kE];
      load_rotated<kE>(p, in, lane, x);
#pragma unroll
      for (int e = 0; e < kE; ++e) p.out[out + lane * kE + e] = f32_to_e4m3(__fmul_rn(x[e], sc));
    }
  });
}

}  // namespace flashattn::quant
