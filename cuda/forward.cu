// forward.cu — api.h's forward(): select the kernel for this request and device, then launch it.
#include <string>

#include <cuda_runtime.h>

#include "api.h"
#include "common/device.h"
#include "sm80/fwd_host.h"
#include "sm80/launch.h"

namespace flashattn::cuda {

void forward(int device, const AttnParams& params, Stream stream) {
  fwd_check(cudaSetDevice(device), "cudaSetDevice");
  const DeviceInfo info = dispatch_device_info(device);
  const Selection sel = select_kernel(Op::kForward, params, info);
  switch (sel.path) {
    case KernelPath::kSm80:
      sm80::run_fwd(params, sel.kernel_head_dim, static_cast<cudaStream_t>(stream));
      return;
    case KernelPath::kNone: fwd_fail("forward is not supported here: " + sel.reason);
    case KernelPath::kSm90: break;
  }
  fwd_fail(std::string("forward: no launcher for kernel path ") + kernel_path_name(sel.path));
}

}  // namespace flashattn::cuda
