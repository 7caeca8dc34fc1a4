// forward.cu — api.h's forward(): launch the kernel the plan chose for this request.
#include <string>

#include <cuda_runtime.h>

#include "api.h"
#include "common/check.h"
#include "sm80/launch.h"
#if FLASHATTN_WITH_SM90
#include "sm90/api.h"
#endif

namespace flashattn::cuda {

void forward(int device, const AttnParams& params, const plan::Plan& plan, Stream stream) {
  FA_CUDA_CHECK(cudaSetDevice(device));
  switch (plan.path) {
    case KernelPath::kSm80:
      sm80::run_fwd_planned(params, plan.kernel_head_dim, plan.tile, static_cast<cudaStream_t>(stream));
      return;
    case KernelPath::kNone: fail("forward is not supported here: " + plan.reason);
    case KernelPath::kSm90:
#if FLASHATTN_WITH_SM90
      sm90::sm90_forward(params, static_cast<cudaStream_t>(stream));
      return;
#else
      fail("forward: this build has no sm90 launcher (the plan chose sm90)");
#endif
  }
  fail(std::string("forward: no launcher for kernel path ") + kernel_path_name(plan.path));
}

}  // namespace flashattn::cuda
