// runtime.cu — the CUDA runtime side of api.h: probe, streams, memory, copies.
//
// Every failing CUDA call becomes a flashattn::cuda::Error (common/check.h); probe() alone never
// throws and reports what went wrong in ProbeInfo::error instead. Each entry point that takes a
// device sets it on the calling thread first (cudaSetDevice is per thread and cheap when the device
// is already current), so callers on any worker thread need no device bookkeeping.
#include <cuda_runtime.h>

#include <cctype>
#include <cstdint>
#include <mutex>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "api.h"
#include "common/check.h"
#include "plan/cache.h"

namespace flashattn::cuda {

namespace {

// The archs compiled into this binary: the FLASHATTN_CUDA_ARCHS definition the build sets (e.g.
// "80,90a"), read by the one arch parser (plan/archs.h); else nvcc's own __CUDA_ARCH_LIST__
// (e.g. 800,900), which lacks suffixes.
std::vector<plan::ArchTarget> read_compiled_archs() {
  std::vector<plan::ArchTarget> list;
  bool ok = false;
#ifdef FLASHATTN_CUDA_ARCHS
  ok = plan::parse_arch_list(FLASHATTN_CUDA_ARCHS, &list, nullptr);  // "all", "native": not readable
#endif
#ifdef __CUDA_ARCH_LIST__
  if (!ok || list.empty()) {
    list.clear();
    for (int v : {__CUDA_ARCH_LIST__}) {
      std::vector<plan::ArchTarget> one;
      if (plan::parse_arch_list(std::to_string(v / 10), &one, nullptr)) list.insert(list.end(), one.begin(), one.end());
    }
  }
#endif
  (void)ok;
  return list;
}

// ---- small helpers ------------------------------------------------------------------------------

std::string version_text(int v) {  // 13000 -> "13.0"
  return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10);
}

std::string bytes_text(size_t bytes) {
  char buf[64];
  const double b = static_cast<double>(bytes);
  if (b >= 1024.0 * 1024 * 1024) {
    std::snprintf(buf, sizeof buf, "%.2f GiB", b / (1024.0 * 1024 * 1024));
  } else if (b >= 1024.0 * 1024) {
    std::snprintf(buf, sizeof buf, "%.1f MiB", b / (1024.0 * 1024));
  } else {
    std::snprintf(buf, sizeof buf, "%zu bytes", bytes);
  }
  return buf;
}

void use_device(int device) {
  const cudaError_t err = cudaSetDevice(device);
  if (err != cudaSuccess) check(err, ("cudaSetDevice(" + std::to_string(device) + ")").c_str(), __FILE__, __LINE__);
}

cudaStream_t as_stream(Stream stream) { return static_cast<cudaStream_t>(stream); }

// Why cudaGetDeviceCount found nothing usable, in words a user can act on.
std::string no_device_text(cudaError_t err, int driver_version, int runtime_version) {
  if (err == cudaErrorInsufficientDriver) {
    if (driver_version == 0) {
      return "no NVIDIA driver found (cudaErrorInsufficientDriver: libcuda could not be loaded); install the NVIDIA "
             "driver and check that nvidia-smi lists your GPU";
    }
    return "the NVIDIA driver supports CUDA " + version_text(driver_version) + ", older than the CUDA " +
           version_text(runtime_version) + " runtime this addon was built with (cudaErrorInsufficientDriver); update "
           "the NVIDIA driver";
  }
  if (err == cudaErrorNoDevice) {
    return "no CUDA-capable GPU is visible (cudaErrorNoDevice); check nvidia-smi and CUDA_VISIBLE_DEVICES";
  }
  std::string s = std::string("cudaGetDeviceCount failed: ") + cudaGetErrorName(err) + " (" +
                  cudaGetErrorString(err) + ")";
  if (const char* hint = error_hint(err)) s += std::string("; ") + hint;
  return s;
}

// DeviceBuffer memory is stream-ordered (cudaMallocAsync / cudaFreeAsync on one stream per
// device) where the device supports memory pools: cudaFree waits for the whole device, so a
// dispose() from the JS thread would stall the event loop while any kernel runs. The callers
// free a buffer only after every operation that used it has finished. Devices without memory
// pools use cudaMalloc / cudaFree.
struct MemoryStream {
  bool pooled = false;             // false: cudaMalloc / cudaFree
  cudaStream_t stream = nullptr;   // the stream allocations and frees are ordered on, when pooled
};

// Probed once per device; returned by value, so no caller holds a reference into the table.
MemoryStream memory_stream(int device) {
  struct Slot {
    bool probed = false;
    MemoryStream mem;
  };
  static std::mutex mu;
  static std::vector<Slot> slots;
  std::lock_guard<std::mutex> lock(mu);
  if (device >= static_cast<int>(slots.size())) slots.resize(device + 1);
  Slot& slot = slots[device];
  if (!slot.probed) {
    slot.probed = true;
    int pools = 0;
    if (cudaDeviceGetAttribute(&pools, cudaDevAttrMemoryPoolsSupported, device) == cudaSuccess && pools &&
        cudaStreamCreateWithFlags(&slot.mem.stream, cudaStreamNonBlocking) == cudaSuccess) {
      slot.mem.pooled = true;
      // Keep freed memory in the device's pool instead of returning it to the driver at each
      // synchronization: outputs and workspaces of the next calls reuse it without a cudaMalloc.
      // The pool then holds at most the peak a workload needed (DeviceBuffer memory included).
      cudaMemPool_t pool = nullptr;
      if (cudaDeviceGetDefaultMemPool(&pool, device) == cudaSuccess) {
        uint64_t keep = UINT64_MAX;
        (void)cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep);
      }
      (void)cudaGetLastError();
    } else {
      (void)cudaGetLastError();
      slot.mem = MemoryStream{};
    }
  }
  return slot.mem;
}

}  // namespace

// Device facts for the plan, read once per device (capability, SMs, opt-in shared memory do not
// change under a running process). Returned by value.
plan::DeviceFacts device_facts(int device) {
  struct Slot {
    bool read = false;
    plan::DeviceFacts facts;
  };
  static std::mutex mu;
  static std::vector<Slot> slots;
  {
    std::lock_guard<std::mutex> lock(mu);
    if (device >= 0 && device < static_cast<int>(slots.size()) && slots[device].read) return slots[device].facts;
  }
  plan::DeviceFacts f;
  f.index = device;
  int major = 0, minor = 0, sms = 0, smem = 0;
  FA_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  FA_CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device));
  FA_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  FA_CUDA_CHECK(cudaDeviceGetAttribute(&smem, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  f.major = major;
  f.minor = minor;
  f.sm_count = sms;
  f.smem_optin = static_cast<size_t>(smem);
  std::lock_guard<std::mutex> lock(mu);
  if (device >= static_cast<int>(slots.size())) slots.resize(device + 1);
  slots[device].read = true;
  slots[device].facts = f;
  return f;
}

const std::vector<plan::ArchTarget>& compiled_archs() {
  static const std::vector<plan::ArchTarget> archs = read_compiled_archs();
  return archs;
}

plan::Plan plan_for(Op op, const AttnParams& params, int device) {
  return plan::plan_cached(op, params, device_facts(device), compiled_archs());
}

plan::DecodePlan plan_decode_for(const decode::DecodeParams& shape, int device) {
  return plan::plan_decode(shape, device_facts(device), compiled_archs());
}

// ---- probe --------------------------------------------------------------------------------------

ProbeInfo probe() {
  ProbeInfo info;
  try {
    for (const plan::ArchTarget& a : compiled_archs()) info.compiled_archs.push_back(a.label);
    if (cudaRuntimeGetVersion(&info.runtime_version) != cudaSuccess) info.runtime_version = 0;
    if (cudaDriverGetVersion(&info.driver_version) != cudaSuccess) info.driver_version = 0;  // 0: no driver

    int count = 0;
    const cudaError_t count_err = cudaGetDeviceCount(&count);
    if (count_err != cudaSuccess) {
      (void)cudaGetLastError();
      info.error = no_device_text(count_err, info.driver_version, info.runtime_version);
      return info;
    }
    if (count == 0) {
      info.error = "no CUDA-capable GPU found; check nvidia-smi and CUDA_VISIBLE_DEVICES";
      return info;
    }

    int previous = -1;
    if (cudaGetDevice(&previous) != cudaSuccess) previous = -1;
    std::vector<std::string> why_not;  // one line per device that can run no kernel path
    for (int i = 0; i < count; ++i) {
      DeviceInfo d;
      d.index = i;
      cudaDeviceProp prop;
      const cudaError_t prop_err = cudaGetDeviceProperties(&prop, i);
      if (prop_err != cudaSuccess) {
        (void)cudaGetLastError();
        d.name = "unknown";
        why_not.push_back("device " + std::to_string(i) + ": cudaGetDeviceProperties failed: " +
                          cudaGetErrorName(prop_err));
        info.devices.push_back(d);
        continue;
      }
      d.name = prop.name;
      d.major = prop.major;
      d.minor = prop.minor;
      d.sm_count = prop.multiProcessorCount;
      d.total_memory = prop.totalGlobalMem;
      d.shared_memory_per_block_optin = prop.sharedMemPerBlockOptin;
      const std::string label = "device " + std::to_string(i) + " (" + d.name + ", capability " +
                                std::to_string(d.major) + "." + std::to_string(d.minor) + ")";

      // Free memory needs a context on the device; failing to make one means it is not usable.
      size_t free_bytes = 0, total_bytes = 0;
      cudaError_t mem_err = cudaSetDevice(i);
      if (mem_err == cudaSuccess) mem_err = cudaMemGetInfo(&free_bytes, &total_bytes);
      if (mem_err != cudaSuccess) {
        (void)cudaGetLastError();
        std::string s = label + ": cannot create a CUDA context: " + cudaGetErrorName(mem_err);
        if (const char* hint = error_hint(mem_err)) s += std::string("; ") + hint;
        why_not.push_back(s);
        info.devices.push_back(d);
        continue;
      }
      d.free_memory = free_bytes;

      // Kernel paths, best first: the plan's answer for this device (plan::device_paths).
      plan::DeviceFacts facts;
      facts.index = i;
      facts.major = d.major;
      facts.minor = d.minor;
      facts.smem_optin = d.shared_memory_per_block_optin;
      facts.sm_count = d.sm_count;
      std::string why;
      d.paths = plan::device_paths(facts, compiled_archs(), &why);
      if (d.paths.empty()) why_not.push_back(label + ": " + why);
      info.devices.push_back(d);
    }
    if (previous >= 0) (void)cudaSetDevice(previous);
    (void)cudaGetLastError();

    bool any_usable = false;
    for (const DeviceInfo& d : info.devices) any_usable = any_usable || !d.paths.empty();
    if (!any_usable) {
      info.error = "no usable CUDA device: ";
      for (size_t i = 0; i < why_not.size(); ++i) info.error += (i ? "; " : "") + why_not[i];
    }
  } catch (const std::exception& e) {
    info.error = std::string("CUDA probe failed: ") + e.what();
  } catch (...) {
    info.error = "CUDA probe failed";
  }
  return info;
}

// ---- streams ------------------------------------------------------------------------------------

Stream stream_create(int device) {
  use_device(device);
  cudaStream_t stream = nullptr;
  // Non-blocking: our streams never serialize with the legacy default stream other code may use.
  FA_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  return stream;
}

void stream_destroy(Stream stream) noexcept {
  if (stream == nullptr) return;
  (void)cudaStreamDestroy(as_stream(stream));
  (void)cudaGetLastError();
}

void stream_synchronize(Stream stream) { FA_CUDA_CHECK(cudaStreamSynchronize(as_stream(stream))); }

std::vector<Stream> side_streams(int device, int count) {
  static std::mutex mu;
  static std::map<int, std::vector<Stream>> made;  // kept for the process, like the device's context
  std::lock_guard<std::mutex> lock(mu);
  std::vector<Stream>& have = made[device];
  while (static_cast<int>(have.size()) < count) have.push_back(stream_create(device));
  return std::vector<Stream>(have.begin(), have.begin() + count);
}

void stream_wait(int device, Stream waiter, Stream signaller) {
  use_device(device);
  cudaEvent_t event = nullptr;
  FA_CUDA_CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
  cudaError_t err = cudaEventRecord(event, as_stream(signaller));
  if (err == cudaSuccess) err = cudaStreamWaitEvent(as_stream(waiter), event, 0);
  // Destroying a recorded event is allowed: its resources go once the device has reached it.
  (void)cudaEventDestroy(event);
  FA_CUDA_CHECK(err);
}

// ---- memory -------------------------------------------------------------------------------------

namespace {

// Completed device blocks kept for reuse, by exact size (calls repeat their shapes).
struct BlockCache {
  std::mutex mu;
  std::vector<std::map<size_t, std::vector<void*>>> idle;  // per device
  std::vector<size_t> bytes;                                // per device
};

BlockCache& block_cache() {
  static auto* c = new BlockCache();  // never destroyed
  return *c;
}

void* cached_block(int device, size_t bytes) {
  BlockCache& c = block_cache();
  std::lock_guard<std::mutex> lock(c.mu);
  if (device < 0 || device >= static_cast<int>(c.idle.size())) return nullptr;
  auto it = c.idle[device].find(bytes);
  if (it == c.idle[device].end() || it->second.empty()) return nullptr;
  void* p = it->second.back();
  it->second.pop_back();
  c.bytes[device] -= bytes;
  return p;
}

}  // namespace

void device_release(int device, void* ptr, size_t bytes) noexcept {
  if (ptr == nullptr) return;
  try {
    BlockCache& c = block_cache();
    std::lock_guard<std::mutex> lock(c.mu);
    if (device >= static_cast<int>(c.idle.size())) {
      c.idle.resize(device + 1);
      c.bytes.resize(device + 1, 0);
    }
    if (c.bytes[device] + bytes <= kDeviceCacheBytes) {
      c.idle[device][bytes].push_back(ptr);
      c.bytes[device] += bytes;
      return;
    }
  } catch (...) {
  }
  device_free(device, ptr);
}

size_t device_cached_bytes(int device) noexcept {
  BlockCache& c = block_cache();
  std::lock_guard<std::mutex> lock(c.mu);
  return device >= 0 && device < static_cast<int>(c.bytes.size()) ? c.bytes[device] : 0;
}

void* device_alloc(int device, size_t bytes) {
  if (bytes == 0) return nullptr;
  if (void* hit = cached_block(device, bytes)) return hit;  // complete: usable on any stream
  use_device(device);
  void* ptr = nullptr;
  const MemoryStream mem = memory_stream(device);
  cudaError_t err;
  if (mem.pooled) {
    // Wait for this allocation only (and frees queued before it), so any stream may use it next.
    err = cudaMallocAsync(&ptr, bytes, mem.stream);
    if (err == cudaSuccess) err = cudaStreamSynchronize(mem.stream);
  } else {
    err = cudaMalloc(&ptr, bytes);
  }
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    std::string what = std::string(mem.pooled ? "cudaMallocAsync" : "cudaMalloc") + " of " + bytes_text(bytes) +
                       " on device " + std::to_string(device);
    size_t free_bytes = 0, total_bytes = 0;
    if (err == cudaErrorMemoryAllocation && cudaMemGetInfo(&free_bytes, &total_bytes) == cudaSuccess) {
      what += " (" + bytes_text(free_bytes) + " free of " + bytes_text(total_bytes) + ")";
    }
    check(err, what.c_str(), __FILE__, __LINE__);
  }
  return ptr;
}

void device_free(int device, void* ptr) noexcept {
  if (ptr == nullptr) return;
  // Best effort: a free that fails (the context is already broken) has nothing left to report to.
  (void)cudaSetDevice(device);
  const MemoryStream mem = memory_stream(device);
  if (mem.pooled) {
    (void)cudaFreeAsync(ptr, mem.stream);  // returns at once; the memory is reusable when it runs
  } else {
    (void)cudaFree(ptr);
  }
  (void)cudaGetLastError();
}

void* device_alloc_async(int device, size_t bytes, Stream stream) {
  if (bytes == 0) return nullptr;
  if (void* hit = cached_block(device, bytes)) return hit;  // complete: usable on any stream
  use_device(device);
  const MemoryStream mem = memory_stream(device);  // sets the pool's release threshold once
  void* ptr = nullptr;
  cudaError_t err = mem.pooled ? cudaMallocAsync(&ptr, bytes, as_stream(stream)) : cudaMalloc(&ptr, bytes);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    const std::string what = std::string(mem.pooled ? "cudaMallocAsync" : "cudaMalloc") + " of " + bytes_text(bytes) +
                             " on device " + std::to_string(device);
    check(err, what.c_str(), __FILE__, __LINE__);
  }
  return ptr;
}

void device_free_async(int device, void* ptr, Stream stream) noexcept {
  if (ptr == nullptr) return;
  (void)cudaSetDevice(device);
  const MemoryStream mem = memory_stream(device);
  if (mem.pooled) {
    (void)cudaFreeAsync(ptr, as_stream(stream));
  } else {
    (void)cudaFree(ptr);
  }
  (void)cudaGetLastError();
}

void* pinned_alloc(size_t bytes) {
  if (bytes == 0) return nullptr;
  void* ptr = nullptr;
  const cudaError_t err = cudaHostAlloc(&ptr, bytes, cudaHostAllocPortable);
  if (err != cudaSuccess) {
    check(err, ("cudaHostAlloc of " + bytes_text(bytes) + " of pinned host memory").c_str(), __FILE__, __LINE__);
  }
  return ptr;
}

void pinned_free(void* ptr) noexcept {
  if (ptr == nullptr) return;
  (void)cudaFreeHost(ptr);
  (void)cudaGetLastError();
}

namespace {

// Idle events per device, of one kind: completion events (timing disabled) or FLASHATTN_TRACE's
// timing events.
struct EventPool {
  explicit EventPool(unsigned f) : flags(f) {}
  const unsigned flags;
  std::mutex mu;
  std::vector<std::vector<cudaEvent_t>> idle;  // per device

  cudaEvent_t acquire(int device) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (device < static_cast<int>(idle.size()) && !idle[device].empty()) {
        cudaEvent_t e = idle[device].back();
        idle[device].pop_back();
        return e;
      }
    }
    use_device(device);
    cudaEvent_t e = nullptr;
    FA_CUDA_CHECK(cudaEventCreateWithFlags(&e, flags));
    return e;
  }

  void release(int device, cudaEvent_t e) noexcept {
    if (e == nullptr) return;
    try {
      std::lock_guard<std::mutex> lock(mu);
      if (device >= static_cast<int>(idle.size())) idle.resize(device + 1);
      idle[device].push_back(e);
    } catch (...) {
      (void)cudaEventDestroy(e);
    }
  }
};

EventPool& completion_events() {
  static auto* p = new EventPool(cudaEventDisableTiming);  // never destroyed
  return *p;
}

EventPool& timing_events() {
  static auto* p = new EventPool(cudaEventDefault);  // never destroyed
  return *p;
}

}  // namespace

void* event_acquire(int device) { return completion_events().acquire(device); }

void event_release(int device, void* event) noexcept {
  completion_events().release(device, static_cast<cudaEvent_t>(event));
}

void* timing_event_record(int device, Stream stream) {
  cudaEvent_t e = timing_events().acquire(device);
  const cudaError_t err = cudaEventRecord(e, as_stream(stream));
  if (err != cudaSuccess) {
    timing_events().release(device, e);
    FA_CUDA_CHECK(err);
  }
  return e;
}

double timing_elapsed_us(void* from, void* to) noexcept {
  float ms = 0;
  if (from == nullptr || to == nullptr ||
      cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(from), static_cast<cudaEvent_t>(to)) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return static_cast<double>(ms) * 1e3;
}

void timing_event_release(int device, void* event) noexcept {
  timing_events().release(device, static_cast<cudaEvent_t>(event));
}

void event_record(int device, void* event, Stream stream) {
  use_device(device);
  FA_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(event), as_stream(stream)));
}

int event_query(void* event, std::string* why) noexcept {
  const cudaError_t err = cudaEventQuery(static_cast<cudaEvent_t>(event));
  if (err == cudaSuccess) return 1;
  if (err == cudaErrorNotReady) return 0;
  (void)cudaGetLastError();
  if (why) {
    try {
      *why = std::string("a kernel or copy of this call failed: ") + cudaGetErrorName(err) + " (" +
             cudaGetErrorString(err) + ")";
      if (const char* hint = error_hint(err)) *why += std::string("; ") + hint;
    } catch (...) {
    }
  }
  return -1;
}

void copy_to_device(int device, void* dst, const void* src, size_t bytes, Stream stream) {
  if (bytes == 0) return;
  use_device(device);
  const cudaError_t err = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, as_stream(stream));
  if (err != cudaSuccess) {
    check(err, ("cudaMemcpyAsync (host to device, " + bytes_text(bytes) + ", device " + std::to_string(device) + ")").c_str(),
          __FILE__, __LINE__);
  }
}

void copy_to_host(int device, void* dst, const void* src, size_t bytes, Stream stream) {
  if (bytes == 0) return;
  use_device(device);
  const cudaError_t err = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, as_stream(stream));
  if (err != cudaSuccess) {
    check(err, ("cudaMemcpyAsync (device to host, " + bytes_text(bytes) + ", device " + std::to_string(device) + ")").c_str(),
          __FILE__, __LINE__);
  }
}

void fill_bytes(int device, void* dst, int value, size_t bytes, Stream stream) {
  if (bytes == 0) return;
  use_device(device);
  const cudaError_t err = cudaMemsetAsync(dst, value, bytes, as_stream(stream));
  if (err != cudaSuccess) {
    check(err, ("cudaMemsetAsync (" + bytes_text(bytes) + ", device " + std::to_string(device) + ")").c_str(), __FILE__,
          __LINE__);
  }
}

void copy_2d(int device, void* dst, size_t dpitch, const void* src, size_t spitch, size_t width, size_t height,
             Stream stream) {
  if (width == 0 || height == 0) return;
  use_device(device);
  const cudaError_t err =
      cudaMemcpy2DAsync(dst, dpitch, src, spitch, width, height, cudaMemcpyDeviceToDevice, as_stream(stream));
  if (err != cudaSuccess) {
    check(err, ("cudaMemcpy2DAsync (" + std::to_string(height) + " rows of " + bytes_text(width) + ", device " +
                std::to_string(device) + ")").c_str(), __FILE__, __LINE__);
  }
}

void fill_2d(int device, void* dst, size_t pitch, int value, size_t width, size_t height, Stream stream) {
  if (width == 0 || height == 0) return;
  use_device(device);
  const cudaError_t err = cudaMemset2DAsync(dst, pitch, value, width, height, as_stream(stream));
  if (err != cudaSuccess) {
    check(err, ("cudaMemset2DAsync (" + std::to_string(height) + " rows of " + bytes_text(width) + ", device " +
                std::to_string(device) + ")").c_str(), __FILE__, __LINE__);
  }
}

namespace {
__global__ void fill_floats_kernel(float* dst, size_t pitch, float value, size_t width, size_t height) {
  const size_t n = width * height;
  for (size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    dst[(i / width) * pitch + i % width] = value;
  }
}
}  // namespace

void fill_floats_2d(int device, float* dst, size_t pitch, float value, size_t width, size_t height, Stream stream) {
  if (width == 0 || height == 0) return;
  use_device(device);
  const size_t n = width * height;
  const unsigned blocks = static_cast<unsigned>(n < 256 * 1024 ? (n + 255) / 256 : 1024);
  fill_floats_kernel<<<blocks, 256, 0, as_stream(stream)>>>(dst, pitch, value, width, height);
  check(cudaGetLastError(), "fill_floats_2d kernel launch", __FILE__, __LINE__);
}

}  // namespace flashattn::cuda
