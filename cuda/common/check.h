// check.h — the one error idiom of cuda/: every cudaError_t becomes a flashattn::cuda::Error, and
// every request the kernels cannot run a cuda::fail(); nothing here exits or aborts.
//
//   FA_CUDA_CHECK(cudaMalloc(&p, n));          throws when the call fails
//   my_kernel<<<grid, block, smem, s>>>(...);
//   FA_CUDA_CHECK_LAUNCH("sm80 fwd d128");     throws when the launch failed (a const char* or std::string)
//   check(err, "cudaFuncSetAttribute(...)");  the same for a call named in words
//   fail("backward", "head dim 264 ...");      a request this code cannot run (Error code -1)
//
// The message names the call (its source text), the CUDA error name and text, the file and line,
// and a hint for the errors a user can do something about, e.g.
//   cudaMalloc(&p, n) failed: cudaErrorMemoryAllocation (out of memory) at cuda/runtime.cu:97; the GPU
//   is out of memory: dispose() DeviceBuffers you no longer need, or use smaller batches
// Error::out_of_memory() is true for cudaErrorMemoryAllocation, so the N-API layer reports E_OOM.
#pragma once

#include <cuda_runtime.h>

#include <string>

#include "api.h"

namespace flashattn::cuda {

// What a user can do about an error, or nullptr when there is nothing specific to say.
inline const char* error_hint(cudaError_t err) {
  switch (err) {
    case cudaErrorInsufficientDriver:
      return "no NVIDIA driver found, or it is older than the CUDA runtime this addon was built with; install or "
             "update the NVIDIA driver (nvidia-smi should list your GPU)";
    case cudaErrorNoDevice:
      return "no CUDA-capable GPU is visible; check nvidia-smi and CUDA_VISIBLE_DEVICES";
    case cudaErrorInvalidDevice:
      return "no such CUDA device; probe().devices lists the devices present";
    case cudaErrorMemoryAllocation:
      return "the GPU is out of memory: dispose() DeviceBuffers you no longer need, or use smaller batches";
    case cudaErrorNoKernelImageForDevice:
    case cudaErrorInvalidKernelImage:
      return "this addon holds no kernel for this GPU's architecture; rebuild it with FLASHATTN_CUDA_ARCHS including "
             "the GPU's (see probe().compiledArchs and devices[].capability)";
    case cudaErrorUnsupportedPtxVersion:
      return "the NVIDIA driver is too old for the code in this addon; update the driver";
    case cudaErrorDevicesUnavailable:
      return "the GPU is busy or in exclusive-process mode (nvidia-smi -q shows the compute mode)";
    case cudaErrorLaunchOutOfResources:
      return "a kernel asked for more registers or shared memory than the GPU has; this is a flashattn bug, please "
             "report it with probe()'s output";
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
    case cudaErrorMisalignedAddress:
    case cudaErrorIllegalInstruction:
    case cudaErrorHardwareStackError:
    case cudaErrorAssert:
      return "a kernel faulted; the CUDA context is now unusable, so restart the process (this is a flashattn bug, "
             "please report it with the request's shapes and probe()'s output)";
    case cudaErrorLaunchTimeout:
      return "a kernel ran longer than the display watchdog allows; use a GPU without a display, or smaller requests";
    case cudaErrorSystemDriverMismatch:
      return "the NVIDIA kernel module and user-space driver versions differ; reboot or reinstall the driver";
    case cudaErrorCompatNotSupportedOnDevice:
      return "the CUDA forward-compatibility package does not support this GPU; use a driver that matches the runtime";
    default:
      return nullptr;
  }
}

// Throws Error for a failed call. `what` names the call (FA_CUDA_CHECK passes its source text).
// cudaGetLastError() afterwards clears the error, so a non-sticky failure (an allocation, say)
// is not reported again by the next unrelated check.
inline void check(cudaError_t err, const char* what, const char* file, int line) {
  if (err == cudaSuccess) return;
  (void)cudaGetLastError();
  std::string msg = std::string(what) + " failed: " + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")";
  if (file != nullptr) msg += std::string(" at ") + file + ":" + std::to_string(line);
  if (const char* hint = error_hint(err)) msg += std::string("; ") + hint;
  throw Error(msg, static_cast<int>(err), err == cudaErrorMemoryAllocation);
}

// The same for a call named in words rather than by its source text.
inline void check(cudaError_t err, const std::string& what) { check(err, what.c_str(), nullptr, 0); }

// Throws Error (code -1) for a request the CUDA layer cannot run. `where` names the part that
// refuses it ("backward", "sm80 forward"), and prefixes the message.
[[noreturn]] inline void fail(const std::string& what) { throw Error(what, -1, false); }
[[noreturn]] inline void fail(const char* where, const std::string& what) {
  throw Error(std::string(where) + ": " + what, -1, false);
}

// After a <<<...>>> launch: reports a bad configuration (too much shared memory, no kernel image
// for this GPU) at once, naming the kernel. Faults inside the kernel surface at the next
// synchronizing call instead. The name is only formatted when the launch failed.
inline void check_launch(const char* kernel, const char* file, int line) {
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) check(err, (std::string("launch of ") + kernel).c_str(), file, line);
}
inline void check_launch(const std::string& kernel, const char* file, int line) {
  check_launch(kernel.c_str(), file, line);
}

}  // namespace flashattn::cuda

#define FA_CUDA_CHECK(call) ::flashattn::cuda::check((call), #call, __FILE__, __LINE__)
#define FA_CUDA_CHECK_LAUNCH(kernel_name) ::flashattn::cuda::check_launch((kernel_name), __FILE__, __LINE__)
