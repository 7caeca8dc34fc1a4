// fwd_host.h — host-side helpers shared by the forward's dispatch files (forward.cu, naive.cu,
// bench.cu, select.cu, sm80/fwd_launch.*): turning a cudaError_t into cuda::Error, and the
// device facts select_kernel reads.
//
// TODO(forward): switch fwd_check to cuda/common/check.h once the N-API helper lands it.
#pragma once

#include <string>

#include <cuda_runtime.h>

#include "api.h"

namespace flashattn::cuda {

// Throws cuda::Error naming the call, the CUDA error and a hint when `err` is not cudaSuccess.
inline void fwd_check(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return;
  (void)cudaGetLastError();  // clear a non-sticky error so the next call starts clean
  const bool oom = err == cudaErrorMemoryAllocation;
  std::string msg = std::string(what) + " failed: " + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")";
  if (oom) {
    msg += "; hint: the GPU is out of memory, try a smaller batch or sequence length";
  } else if (err == cudaErrorNoKernelImageForDevice || err == cudaErrorInvalidDeviceFunction) {
    msg += "; hint: the addon was not compiled for this GPU, rebuild with FLASHATTN_CUDA_ARCHS";
  } else if (err == cudaErrorInsufficientDriver) {
    msg += "; hint: the NVIDIA driver is older than the CUDA runtime the addon was built with";
  }
  throw Error(msg, static_cast<int>(err), oom);
}

// Throws cuda::Error (code -1) for a request the CUDA layer cannot run.
[[noreturn]] inline void fwd_fail(const std::string& msg) { throw Error(msg, -1, false); }

// The DeviceInfo fields select_kernel reads (index, name, capability, SMs, opt-in shared memory),
// from cudaDeviceGetAttribute, which is cheap enough to call on every launch.
inline DeviceInfo fwd_device_info(int device) {
  DeviceInfo info;
  info.index = device;
  int major = 0, minor = 0, sms = 0, smem = 0;
  fwd_check(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device), "cudaDeviceGetAttribute(major)");
  fwd_check(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device), "cudaDeviceGetAttribute(minor)");
  fwd_check(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device), "cudaDeviceGetAttribute(sm count)");
  fwd_check(cudaDeviceGetAttribute(&smem, cudaDevAttrMaxSharedMemoryPerBlockOptin, device),
            "cudaDeviceGetAttribute(shared memory per block opt-in)");
  info.major = major;
  info.minor = minor;
  info.sm_count = sms;
  info.shared_memory_per_block_optin = static_cast<size_t>(smem);
  return info;
}

}  // namespace flashattn::cuda
