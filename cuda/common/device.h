// device.h — the facts about a device that select_kernel reads, for dispatch on every call.
#pragma once

#include <cuda_runtime.h>

#include "api.h"
#include "common/check.h"

namespace flashattn::cuda {

// Index, capability, SM count and opt-in shared memory (not the name or memory sizes: probe()
// has those), from cudaDeviceGetAttribute, which is cheap enough to call on every launch.
inline DeviceInfo dispatch_device_info(int device) {
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

}  // namespace flashattn::cuda
