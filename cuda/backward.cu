// backward.cu — api.h's backward(): launch the kernel the plan chose. The sm80 (mma.sync)
// backward serves sm80, sm86/89 and sm90 alike.
#include <cuda_runtime.h>

#include <string>

#include "api.h"
#include "common/check.h"
#include "sm80/launch.h"

namespace flashattn::cuda {

void backward(int device, const AttnParams& params, const plan::Plan& plan, Stream stream) {
  FA_CUDA_CHECK(cudaSetDevice(device));
  switch (plan.path) {
    case KernelPath::kSm80:
      sm80::run_bwd(params, plan.kernel_head_dim, static_cast<cudaStream_t>(stream));
      return;
    case KernelPath::kNone: fail("backward is not supported here: " + plan.reason);
    case KernelPath::kSm90: break;  // there is no wgmma backward; the plan never picks it
  }
  fail(std::string("backward: no launcher for kernel path ") + kernel_path_name(plan.path));
}

}  // namespace flashattn::cuda
