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
#include "plan/decode_plan.h"
#include "plan/plan.h"

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

// The plan's vocabulary (plan/plan.h), under the names the CUDA layer has always used.
using plan::KernelPath;
using plan::kernel_path_name;
using plan::Op;

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

// The plan for a request on a real device: plan::make_plan with this device's facts, the archs
// compiled into this binary and FLASHATTN_KERNEL_PATH, cached per shape key (plan/cache.h); the
// tensors' pointer alignment is checked on every call. Dispatch, select(), the bench and probe()
// all get their answer here. Throws Error only when the device cannot be queried.
plan::Plan plan_for(Op op, const AttnParams& params, int device);
// plan::plan_decode for `device` with this build's archs.
plan::DecodePlan plan_decode_for(const decode::DecodeParams& shape, int device);

// Capability, SM count and opt-in shared memory of `device`, read once per device and cached.
plan::DeviceFacts device_facts(int device);

// The archs compiled into this binary (FLASHATTN_CUDA_ARCHS, else nvcc's __CUDA_ARCH_LIST__).
const std::vector<plan::ArchTarget>& compiled_archs();

// ---- memory and streams (device index is explicit everywhere) --------------------------------
using Stream = void*;

Stream stream_create(int device);
void stream_destroy(Stream stream) noexcept;
// `count` streams of `device` for one call's independent pieces to run on side by side (fork from
// the call's stream with stream_wait, join back the same way); made on first use, kept for the
// process, shared by every call.
std::vector<Stream> side_streams(int device, int count);
// Work enqueued on `waiter` from now on runs after all the work enqueued on `signaller` so far.
void stream_wait(int device, Stream waiter, Stream signaller);
void stream_synchronize(Stream stream);

void* device_alloc(int device, size_t bytes);  // throws Error with out_of_memory() on OOM
void device_free(int device, void* ptr) noexcept;
// Returns memory no work uses any more (every call that used it has completed): it is kept for
// the next allocation of the same size on this device (up to kDeviceCacheBytes per device), so
// the outputs of repeated calls cost no allocator call; beyond that it is freed like device_free.
void device_release(int device, void* ptr, size_t bytes) noexcept;
inline constexpr size_t kDeviceCacheBytes = size_t(2) << 30;
// Idle bytes the cache of device `device` holds.
size_t device_cached_bytes(int device) noexcept;
// Stream-ordered allocation on `stream` from the device's pool (cudaMallocAsync; no host wait).
// The memory is usable by work enqueued on `stream` after this call, and by any stream once that
// work has completed. device_free_async orders the free on `stream`.
void* device_alloc_async(int device, size_t bytes, Stream stream);
void device_free_async(int device, void* ptr, Stream stream) noexcept;
// Page-locked host memory (cudaHostAlloc, portable), for staging copies.
void* pinned_alloc(size_t bytes);
void pinned_free(void* ptr) noexcept;
// Completion events (timing disabled) from a per-device pool. event_record marks the point on
// `stream` after the work enqueued so far; event_query says whether the work before it has
// completed: 1 yes, 0 not yet, -1 it failed (a kernel fault, say; *why says how).
void* event_acquire(int device);
void event_release(int device, void* event) noexcept;
void event_record(int device, void* event, Stream stream);
int event_query(void* event, std::string* why) noexcept;
// FLASHATTN_TRACE's GPU clock: a timing event recorded on `stream` now, from a per-device pool;
// timing_elapsed_us reads the GPU time between two of them once both have completed (0 if it
// cannot); release gives one back.
void* timing_event_record(int device, Stream stream);
double timing_elapsed_us(void* from, void* to) noexcept;
void timing_event_release(int device, void* event) noexcept;
void copy_to_device(int device, void* dst, const void* src, size_t bytes, Stream stream);
void copy_to_host(int device, void* dst, const void* src, size_t bytes, Stream stream);
void fill_bytes(int device, void* dst, int value, size_t bytes, Stream stream);
// `height` rows of `width` bytes, device to device, rows `spitch` / `dpitch` bytes apart.
void copy_2d(int device, void* dst, size_t dpitch, const void* src, size_t spitch, size_t width, size_t height,
             Stream stream);
// `height` rows of `width` bytes at `dst`, `pitch` bytes apart, set to the byte `value`.
void fill_2d(int device, void* dst, size_t pitch, int value, size_t width, size_t height, Stream stream);
// `height` rows of `width` floats at `dst`, `pitch` floats apart, set to `value`.
void fill_floats_2d(int device, float* dst, size_t pitch, float value, size_t width, size_t height, Stream stream);

// ---- attention ---------------------------------------------------------------------------
// All pointers in params are device pointers on `device`. Enqueues on `stream`; does not wait.
// `plan` is plan_for()'s answer for these params (an error when it is none). Workspace the
// kernels need is allocated stream-ordered from the device's pool and freed stream-ordered
// before returning, so it is reused by the next call rather than allocated from the driver.
void forward(int device, const AttnParams& params, const plan::Plan& plan, Stream stream);
void backward(int device, const AttnParams& params, const plan::Plan& plan, Stream stream);

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
  float host_launch_us = 0;         // median host time of one iteration's enqueue (the launch path)
};

BenchResult bench(int device, const BenchRequest& request);

// Times the split-KV decode kernels (decode_forward: splits plus combine) with CUDA events, the
// split count and workspace planned from the device's SM count as the API plans them.
BenchResult bench_decode(int device, const DecodeBenchRequest& request);

}  // namespace flashattn::cuda
