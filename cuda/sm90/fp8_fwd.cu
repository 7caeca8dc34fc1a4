// fp8_fwd.cu — the e4m3 forward's host side: the Vᵀ pass into a stream-ordered workspace, then
// the kernel for the compiled head dim and the output dtype (instantiations in cuda/generated/).
#include <string>

#include <cuda_runtime.h>

#include "common/check.h"
#include "sm90/api.h"
#include "sm90/fp8_vt.h"
#include "sm90/fwd_launch.cuh"

namespace flashattn::sm90 {

void sm90_forward_fp8(const AttnParams& p, cudaStream_t stream) {
  void* vt = nullptr;
  cuda::check(cudaMallocAsync(&vt, fp8_vt_bytes(p) > 0 ? fp8_vt_bytes(p) : 1, stream), "cudaMallocAsync(fp8 Vᵀ workspace)");
  try {
    fp8_transpose_v(p, vt, stream);
    const bool bf16 = p.out_dtype == DType::kBFloat16;
    switch (fwd_kernel_head_dim(p.d)) {
      case 64: bf16 ? launch_fwd_fp8<sm80::Bf16, 64>(p, vt, stream) : launch_fwd_fp8<sm80::Fp16, 64>(p, vt, stream); break;
      case 128: bf16 ? launch_fwd_fp8<sm80::Bf16, 128>(p, vt, stream) : launch_fwd_fp8<sm80::Fp16, 128>(p, vt, stream); break;
      case 256: bf16 ? launch_fwd_fp8<sm80::Bf16, 256>(p, vt, stream) : launch_fwd_fp8<sm80::Fp16, 256>(p, vt, stream); break;
      default: cuda::fail("sm90 fp8 forward: no kernel for head dim " + std::to_string(p.d));
    }
  } catch (...) {
    cudaFreeAsync(vt, stream);
    throw;
  }
  cuda::check(cudaFreeAsync(vt, stream), "cudaFreeAsync(fp8 Vᵀ workspace)");
}

}  // namespace flashattn::sm90
