// quant.cu — quantize_fp8's launches (quant/api.h): amax, scales, conversion, on one stream.
#include <cuda_runtime.h>

#include <algorithm>
#include <string>

#include "common/check.h"
#include "quant/api.h"
#include "quant/quant_kernel.cuh"

namespace flashattn::quant {

const char* quantize_unsupported(const QuantParams& p) {
  if (p.dtype != DType::kFloat32 && p.dtype != DType::kFloat16 && p.dtype != DType::kBFloat16) {
    return "the input must be float32, float16 or bfloat16";
  }
  if (p.b < 0 || p.s < 0 || p.h < 0 || p.d < 0) return "negative dims";
  if (static_cast<int64_t>(p.b) * p.h > 0x7fffffff) return "batch * heads must fit in an int32";
  if (p.hadamard && !hadamard_head_dim_ok(p.d)) return "hadamard needs head dim 64, 128 or 256";
  return nullptr;
}

size_t quantize_workspace_bytes(const QuantParams& p) { return 2 * sizeof(float) * std::max<size_t>(1, static_cast<size_t>(p.b) * p.h); }

namespace {

template <int kE>
void launch(const QuantParams& p, float* amax, float* scale, cudaStream_t stream) {
  const int bh = p.b * p.h;
  const int64_t rows_per_block = static_cast<int64_t>(kWarpsPerBlock) * kRowsPerWarp;
  const dim3 grid(static_cast<unsigned>(bh), static_cast<unsigned>(std::min<int64_t>(65535, std::max<int64_t>(1, (p.s + rows_per_block - 1) / rows_per_block))));
  amax_kernel<kE><<<grid, kWarpsPerBlock * 32, 0, stream>>>(p, amax);
  FA_CUDA_CHECK_LAUNCH("quantize_fp8 amax");
  scale_kernel<<<(bh + 255) / 256, 256, 0, stream>>>(p, amax, scale);
  FA_CUDA_CHECK_LAUNCH("quantize_fp8 scale");
  convert_kernel<kE><<<grid, kWarpsPerBlock * 32, 0, stream>>>(p, scale);
  FA_CUDA_CHECK_LAUNCH("quantize_fp8 convert");
}

}  // namespace

void quantize_fp8(int device, const QuantParams& p, void* workspace, cuda::Stream stream_handle) {
  if (const char* why = quantize_unsupported(p)) cuda::fail("quantize_fp8", why);
  if (p.b == 0 || p.h == 0) return;
  FA_CUDA_CHECK(cudaSetDevice(device));
  const auto stream = static_cast<cudaStream_t>(stream_handle);
  const size_t bh = static_cast<size_t>(p.b) * p.h;
  float* amax = static_cast<float*>(workspace);
  float* scale = amax + bh;
  FA_CUDA_CHECK(cudaMemsetAsync(amax, 0, bh * sizeof(float), stream));
  if (p.s == 0 || p.d == 0) {  // nothing to read: every scale is 1
    scale_kernel<<<static_cast<unsigned>((bh + 255) / 256), 256, 0, stream>>>(p, amax, scale);
    FA_CUDA_CHECK_LAUNCH("quantize_fp8 scale");
    return;
  }
  if (!p.hadamard) return launch<0>(p, amax, scale, stream);
  switch (p.d) {
    case 64: return launch<2>(p, amax, scale, stream);
    case 128: return launch<4>(p, amax, scale, stream);
    case 256: return launch<8>(p, amax, scale, stream);
    default: cuda::fail("quantize_fp8", "hadamard needs head dim 64, 128 or 256");
  }
}

}  // namespace flashattn::quant
