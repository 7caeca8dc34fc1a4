// harness.h — host helpers shared by the stand-alone kernel harnesses in cuda/dev/.
#pragma once

#include <cstdint>
#include <cstring>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "params.h"

namespace flashattn::dev {

// float -> float16/bfloat16 bits, round to nearest even.
inline uint16_t to_bits(float x, DType dt) {
  uint16_t b;
  if (dt == DType::kBFloat16) {
    const __nv_bfloat16 h = __float2bfloat16_rn(x);
    std::memcpy(&b, &h, 2);
  } else {
    const __half h = __float2half_rn(x);
    std::memcpy(&b, &h, 2);
  }
  return b;
}

inline double from_bits(uint16_t b, DType dt) {
  if (dt == DType::kBFloat16) {
    __nv_bfloat16 h;
    std::memcpy(&h, &b, 2);
    return __bfloat162float(h);
  }
  __half h;
  std::memcpy(&h, &b, 2);
  return __half2float(h);
}

// x as the dtype would hold it.
inline double round_to(double x, DType dt) { return from_bits(to_bits(static_cast<float>(x), dt), dt); }

}  // namespace flashattn::dev
