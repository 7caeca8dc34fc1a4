// fwd_host.h — host-side helpers shared by the forward's dispatch files (forward.cu, naive.cu,
// bench.cu, select.cu, sm80/fwd_launch.*): turning a cudaError_t into cuda::Error.
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

}  // namespace flashattn::cuda
