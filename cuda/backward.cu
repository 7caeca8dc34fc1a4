// backward.cu — api.h's backward(): ask select_kernel which kernel runs this request on this
// device, then launch it. The sm80 (mma.sync) backward serves sm80, sm86/89 and sm90 alike.
#include <cuda_runtime.h>

#include <string>

#include "api.h"
#include "common/check.h"
#include "sm80/launch.h"

namespace flashattn::cuda {
namespace {

// The DeviceInfo fields select_kernel reads, from cudaDeviceGetAttribute (cheap per call).
DeviceInfo device_facts(int device) {
  DeviceInfo info;
  info.index = device;
  int major = 0, minor = 0, sms = 0, smem = 0;
  FA_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  FA_CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device));
  FA_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  FA_CUDA_CHECK(cudaDeviceGetAttribute(&smem, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  info.major = major;
  info.minor = minor;
  info.sm_count = sms;
  info.shared_memory_per_block_optin = static_cast<size_t>(smem);
  return info;
}

}  // namespace

void backward(int device, const AttnParams& params, Stream stream) {
  FA_CUDA_CHECK(cudaSetDevice(device));
  const Selection sel = select_kernel(Op::kBackward, params, device_facts(device));
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
