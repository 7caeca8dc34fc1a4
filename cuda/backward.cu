// backward.cu — api.h's backward(): launch the kernel the plan chose: the sm90 (wgmma) backward on
// capability 9.0 where it covers the request, the sm80 (mma.sync) backward everywhere else.
#include <cuda_runtime.h>

#include <string>

#include "api.h"
#include "common/check.h"
#include "sm80/launch.h"

#if FLASHATTN_WITH_SM90
#include "sm90/api.h"
#endif

namespace flashattn::cuda {

void backward(int device, const AttnParams& params, const plan::Plan& plan, Stream stream) {
  FA_CUDA_CHECK(cudaSetDevice(device));
  switch (plan.path) {
    case KernelPath::kSm80:
      sm80::run_bwd(params, plan.kernel_head_dim, static_cast<cudaStream_t>(stream));
      return;
    case KernelPath::kSm90:
#if FLASHATTN_WITH_SM90
      sm90::sm90_backward(params, static_cast<cudaStream_t>(stream));
      return;
#else
      break;  // a build without sm_90a code: the plan never picks sm90
#endif
    case KernelPath::kNone: fail("backward is not supported here: " + plan.reason);
  }
  fail(std::string("backward: no launcher for kernel path ") + kernel_path_name(plan.path));
}

}  // namespace flashattn::cuda
