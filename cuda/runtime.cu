// runtime.cu — the CUDA runtime side of api.h: probe, streams, memory, copies.
//
// Every failing CUDA call becomes a flashattn::cuda::Error (common/check.h); probe() alone never
// throws and reports what went wrong in ProbeInfo::error instead. Each entry point that takes a
// device sets it on the calling thread first (cudaSetDevice is per thread and cheap when the device
// is already current), so callers on any worker thread need no device bookkeeping.
#include <cuda_runtime.h>

#include <cctype>
#include <mutex>
#include <cstdio>
#include <string>
#include <vector>

#include "api.h"
#include "common/check.h"

namespace flashattn::cuda {

namespace {

// ---- what this binary was compiled for ---------------------------------------------------------

// One entry of FLASHATTN_CUDA_ARCHS in CMake's CUDA_ARCHITECTURES syntax: "80", "90a", "86-real",
// "80-virtual". A plain entry holds both machine code (SASS) and PTX, as CMake compiles it.
struct CompiledArch {
  int major = 0, minor = 0;
  char suffix = 0;  // 'a' (arch-specific, e.g. 90a) or 'f' (family), else 0
  bool sass = true;
  bool ptx = true;
  std::string label;  // "sm_90a"; "compute_80" for PTX only
};

bool parse_arch(const std::string& entry, CompiledArch* out) {
  size_t i = 0;
  int number = 0;
  while (i < entry.size() && std::isdigit(static_cast<unsigned char>(entry[i]))) number = number * 10 + (entry[i++] - '0');
  if (i == 0 || number < 10) return false;
  CompiledArch a;
  a.major = number / 10;
  a.minor = number % 10;
  if (i < entry.size() && (entry[i] == 'a' || entry[i] == 'f')) a.suffix = entry[i++];
  const std::string rest = entry.substr(i);
  if (rest == "-real") {
    a.ptx = false;
  } else if (rest == "-virtual") {
    a.sass = false;
  } else if (!rest.empty()) {
    return false;
  }
  const std::string digits = std::to_string(number) + (a.suffix ? std::string(1, a.suffix) : std::string());
  a.label = (a.sass ? "sm_" : "compute_") + digits;
  *out = a;
  return true;
}

// The archs compiled into this binary: the FLASHATTN_CUDA_ARCHS definition the build sets (e.g.
// "80;90a" or "80,90a"), else nvcc's own __CUDA_ARCH_LIST__ (e.g. 800,900), which lacks suffixes.
const std::vector<CompiledArch>& compiled_archs() {
  static const std::vector<CompiledArch> archs = [] {
    std::vector<CompiledArch> list;
    bool ok = false;
#ifdef FLASHATTN_CUDA_ARCHS
    const std::string spec = FLASHATTN_CUDA_ARCHS;
    ok = true;
    std::string entry;
    for (size_t i = 0; i <= spec.size(); ++i) {
      const char c = i < spec.size() ? spec[i] : ';';
      if (c == ';' || c == ',' || c == ' ') {
        CompiledArch a;
        if (!entry.empty()) {
          if (parse_arch(entry, &a)) {
            list.push_back(a);
          } else {
            ok = false;  // e.g. "all" or "native": fall back to what nvcc says it built
          }
        }
        entry.clear();
      } else {
        entry += c;
      }
    }
#endif
#ifdef __CUDA_ARCH_LIST__
    if (!ok || list.empty()) {
      list.clear();
      for (int v : {__CUDA_ARCH_LIST__}) {
        CompiledArch a;
        if (parse_arch(std::to_string(v / 10), &a)) list.push_back(a);
      }
    }
#endif
    (void)ok;
    return list;
  }();
  return archs;
}

// Whether some compiled arch of at least 8.0 (the oldest the kernels target) runs on a device of
// capability major.minor: SASS runs within its major version at the same or a newer minor (an
// 'a' arch only on exactly its own), and PTX is JIT-compiled for any newer device.
bool kernels_cover(int major, int minor) {
  const int cc = major * 10 + minor;
  for (const CompiledArch& a : compiled_archs()) {
    const int acc = a.major * 10 + a.minor;
    if (acc < 80) continue;
    const bool exact_only = a.suffix == 'a';
    const bool same_family = major == a.major && minor >= a.minor;
    if (a.sass && (exact_only ? cc == acc : same_family)) return true;
    if (a.ptx && (exact_only ? cc == acc : a.suffix == 'f' ? same_family : cc >= acc)) return true;
  }
  return false;
}

std::string compiled_arch_list() {
  std::string s;
  for (const CompiledArch& a : compiled_archs()) s += (s.empty() ? "" : ", ") + a.label;
  return s.empty() ? "no CUDA arch" : s;
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
    } else {
      (void)cudaGetLastError();
      slot.mem = MemoryStream{};
    }
  }
  return slot.mem;
}

}  // namespace

// ---- probe --------------------------------------------------------------------------------------

ProbeInfo probe() {
  ProbeInfo info;
  try {
    for (const CompiledArch& a : compiled_archs()) info.compiled_archs.push_back(a.label);
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

      // Kernel paths, best first. sm90 joins here once the Hopper kernels are built.
      if (d.major < 8) {
        why_not.push_back(label + ": flashattn's kernels need capability 8.0 or newer");
      } else if (!kernels_cover(d.major, d.minor)) {
        why_not.push_back(label + ": this addon was compiled for " + compiled_arch_list() +
                          ", none of which runs on it; rebuild with FLASHATTN_CUDA_ARCHS including " +
                          std::to_string(d.major) + std::to_string(d.minor));
      } else {
        d.paths = {"sm80"};
      }
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

// ---- memory -------------------------------------------------------------------------------------

void* device_alloc(int device, size_t bytes) {
  if (bytes == 0) return nullptr;
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

}  // namespace flashattn::cuda
