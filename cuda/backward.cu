// backward.cu — api.h's backward(): ask select_kernel which kernel runs this request on this
// device, then launch it. The sm80 (mma.sync) backward serves sm80, sm86/89 and sm90 alike.
#include <cuda_runtime.h>

#include <string>

#include "api.h"
#include "common/check.h"
#include "common/device.h"
#include "sm80/launch.h"

namespace flashattn::cuda {
void backward(int device, const AttnParams& params, Stream stream) {
  FA_CUDA_CHECK(cudaSetDevice(device));
  const Selection sel = select_kernel(Op::kBackward, params, dispatch_device_info(device));
  switch (sel.path) {
    case KernelPath::kSm80:
      sm80::run_bwd(params, sel.kernel_head_dim, static_cast<cudaStream_t>(stream));
      return;
    case KernelPath::kNone:
      throw Error("backward is not supported here: " + sel.reason, -1, false);
    case KernelPath::kSm90:
      break;  // no wgmma backward exists; select_kernel should not pick it
  }
  throw Error(std::string("backward: no launcher for kernel path ") + kernel_path_name(sel.path), -1, false);
}

}  // namespace flashattn::cuda
