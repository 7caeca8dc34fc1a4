// quant/api.h — quantizeFp8 on the device: a float32 / float16 / bfloat16 tensor to float8_e4m3
// bits and float32 descale factors, with the rules of quant/e4m3.h (bit-identical to the host's
// quantizeHost in src-ts/fp8.ts). Plain C++; every function throws flashattn::cuda::Error.
#pragma once

#include <cstddef>
#include <cstdint>

#include "../api.h"  // flashattn::cuda::Error, cuda::Stream
#include "params.h"  // DType

namespace flashattn::quant {

// One quantization. Dimension letters: b batch, s seqlen, h heads, d head dim; strides are in
// elements, for the dims in (b, s, h) order whatever the layout (the last dim is contiguous).
struct QuantParams {
  const void* in = nullptr;  // (b, s, h, d) through in_stride, dtype `dtype`
  DType dtype = DType::kFloat32;
  int b = 0, s = 0, h = 0, d = 0;
  int64_t in_stride_b = 0, in_stride_s = 0, in_stride_h = 0;
  uint8_t* out = nullptr;  // e4m3 bits, (b, s, h, d) through out_stride
  int64_t out_stride_b = 0, out_stride_s = 0, out_stride_h = 0;
  float* descale = nullptr;  // (b, h) contiguous
  bool per_tensor = false;   // one amax over the whole tensor, repeated over (b, h)
  bool hadamard = false;     // rotate each row of d first (d 64, 128 or 256)
};

// Why the kernels cannot run `p`, or nullptr.
const char* quantize_unsupported(const QuantParams& p);

// Device workspace quantize_fp8 needs (the per-head amax and scale).
size_t quantize_workspace_bytes(const QuantParams& p);

// Enqueues the quantization on `stream` of `device` (amax per (b, h), then scales, then the
// conversion) and returns without waiting. `workspace`: quantize_workspace_bytes(p) bytes.
void quantize_fp8(int device, const QuantParams& p, void* workspace, cuda::Stream stream);

}  // namespace flashattn::quant
