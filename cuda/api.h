// api.h — the CUDA layer's entry points, as plain C++ (no CUDA headers, no napi.h).
//
// native/ includes this header only in the CUDA build (FLASHATTN_WITH_CUDA). Every entry point
// throws flashattn::cuda::Error on failure; none of them exits, aborts or asserts.
// Streams are opaque handles (a cudaStream_t underneath).
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "params.h"

namespace flashattn::cuda {

// A failed CUDA call: which call, the CUDA error name, and a hint for the user.
class Error : public std::runtime_error {
 public:
  Error(const std::string& message, int code, bool out_of_memory)
      : std::runtime_error(message), code_(code), oom_(out_of_memory) {}
  int code() const { return code_; }  // the cudaError_t value, or -1 when not from CUDA
  bool out_of_memory() const { return oom_; }

 private:
  int code_;
  bool oom_;
};

// Which kernel family runs a request. kNone means "not supported here"; the reason says why.
enum class KernelPath : int32_t { kNone = 0, kSm80 = 1, kSm90 = 2 };

inline const char* kernel_path_name(KernelPath p) {
  switch (p) {
    case KernelPath::kNone: return "none";
    case KernelPath::kSm80: return "sm80";
    case KernelPath::kSm90: return "sm90";
  }
  return "unknown";
}

struct DeviceInfo {
  int index = 0;
  std::string name;
  int major = 0, minor = 0;
  int sm_count = 0;
  size_t total_memory = 0;
  size_t free_memory = 0;
  size_t shared_memory_per_block_optin = 0;
  // The kernel paths this device can run, best first (e.g. {"sm90", "sm80"}).
  std::vector<std::string> paths;
};

struct ProbeInfo {
  int runtime_version = 0;  // cudaRuntimeGetVersion, e.g. 13000
  int driver_version = 0;   // cudaDriverGetVersion; 0 when no driver
  std::string error;        // why no device is usable, empty when at least one is
  std::vector<DeviceInfo> devices;
  std::vector<std::string> compiled_archs;  // e.g. {"sm_80", "sm_90a"}
};

// Reads the runtime, the driver and every device. Never throws: failures land in .error.
ProbeInfo probe();

enum class Op : int32_t { kForward = 0, kBackward = 1 };

struct Selection {
  KernelPath path = KernelPath::kNone;
  int kernel_head_dim = 0;  // the compiled head dim that runs this request (>= params.d)
  std::string reason;       // when path == kNone: why not
};

// The one selection function: dispatch and probe()/inspect both ask it.
Selection select_kernel(Op op, const AttnParams& params, const DeviceInfo& device);

// ---- memory and streams (device index is explicit everywhere) --------------------------------
using Stream = void*;

Stream stream_create(int device);
void stream_destroy(Stream stream) noexcept;
void stream_synchronize(Stream stream);

void* device_alloc(int device, size_t bytes);  // throws Error with out_of_memory() on OOM
void device_free(int device, void* ptr) noexcept;
void copy_to_device(int device, void* dst, const void* src, size_t bytes, Stream stream);
void copy_to_host(int device, void* dst, const void* src, size_t bytes, Stream stream);
void fill_bytes(int device, void* dst, int value, size_t bytes, Stream stream);

// ---- attention ---------------------------------------------------------------------------
// All pointers in params are device pointers on `device`. Enqueues on `stream`; does not wait.
// Workspace the kernels need is allocated stream-ordered and freed before returning.
void forward(int device, const AttnParams& params, Stream stream);
void backward(int device, const AttnParams& params, Stream stream);

// Naive "standard attention" (materialized s_q x s_k scores in device memory), the paper's
// baseline for the benchmark. Forward only; writes out and lse like forward().
void naive_forward(int device, const AttnParams& params, Stream stream);

// ---- benchmark --------------------------------------------------------------------------
struct BenchRequest {
  Op op = Op::kForward;
  bool naive = false;  // time naive_forward instead of forward
  AttnParams shape;    // sizes, dtype, scale and window; pointers ignored (random device data)
  int warmup = 5;
  int iters = 20;
};

struct BenchResult {
  std::vector<float> ms;            // one CUDA-event time per iteration
  size_t peak_extra_bytes = 0;      // device memory beyond inputs and outputs, at its peak
  std::string kernel;               // what ran, e.g. "sm80 fwd d128"
};

BenchResult bench(int device, const BenchRequest& request);

}  // namespace flashattn::cuda
