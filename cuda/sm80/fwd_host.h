// fwd_host.h — host-side helpers shared by the forward's dispatch files (forward.cu, naive.cu,
// bench.cu, select.cu, sm80/fwd_launch.*): turning a cudaError_t into cuda::Error, and the
// device facts select_kernel reads.
#pragma once

#include <string>

#include <cuda_runtime.h>

#include "api.h"
#include "common/check.h"

namespace flashattn::cuda {

// Throws cuda::Error naming the step, the CUDA error and common/check.h's hint for it.
inline void fwd_check(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return;
  (void)cudaGetLastError();  // clear a non-sticky error so the next call starts clean
  std::string msg = std::string(what) + " failed: " + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")";
  if (const char* hint = error_hint(err)) msg += std::string("; ") + hint;
  throw Error(msg, static_cast<int>(err), err == cudaErrorMemoryAllocation);
}

// Throws cuda::Error (code -1) for a request the CUDA layer cannot run.
[[noreturn]] inline void fwd_fail(const std::string& msg) { throw Error(msg, -1, false); }

// The DeviceInfo fields select_kernel reads (index, capability, SM count, opt-in shared memory;
// not the name), from cudaDeviceGetAttribute, which is cheap enough to call on every launch.
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
