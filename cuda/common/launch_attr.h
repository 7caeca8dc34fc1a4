// launch_attr.h — a kernel's dynamic shared memory limit, set once per device.
#pragma once

#include <atomic>
#include <cstdint>

#include <cuda_runtime.h>

#include "common/check.h"

namespace flashattn::cuda {

// Sets `kernel`'s cudaFuncAttributeMaxDynamicSharedMemorySize to `bytes` on `device` unless `done`
// (the caller's static, one per kernel instantiation) says it was set there already: the attribute
// sticks to the function, and setting it on every launch is a driver call on the path of every
// call. One bit per device (devices 64 and up are set every time); racing setters agree.
inline void set_max_dynamic_smem_once(const void* kernel, int device, int bytes, std::atomic<uint64_t>& done,
                                      const char* what) {
  const uint64_t bit = device >= 0 && device < 64 ? uint64_t{1} << device : 0;
  if (bit != 0 && (done.load(std::memory_order_acquire) & bit) != 0) return;
  check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes), what);
  done.fetch_or(bit, std::memory_order_release);
}

}  // namespace flashattn::cuda
