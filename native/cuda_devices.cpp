// cuda_devices.cpp — the cached device list (streams: exec/stream.h).
#include "cuda_devices.h"

#if FLASHATTN_WITH_CUDA

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "errors.h"

namespace flashattn::native {

const cuda::ProbeInfo& cached_probe() {
  static std::once_flag once;
  // Never destroyed: worker threads may still read it while the process exits.
  static cuda::ProbeInfo* info = nullptr;
  std::call_once(once, [] {
    auto* p = new cuda::ProbeInfo();
    try {
      *p = cuda::probe();
    } catch (const std::exception& e) {  // probe() promises not to throw; keep the promise here too
      p->error = std::string("CUDA probe failed: ") + e.what();
    }
    info = p;
  });
  return *info;
}

const cuda::DeviceInfo& device_info(int index) {
  const cuda::ProbeInfo& p = cached_probe();
  if (p.devices.empty()) {
    fail(ErrorCode::kNoDevice, "no CUDA device is available" + (p.error.empty() ? std::string() : ": " + p.error));
  }
  if (index < 0 || static_cast<size_t>(index) >= p.devices.size()) {
    const size_t n = p.devices.size();
    fail(ErrorCode::kNoDevice, "CUDA device " + std::to_string(index) + " does not exist; this machine has " +
                                   std::to_string(n) + (n == 1 ? " device (index 0)" : " devices (indices 0.." +
                                   std::to_string(n - 1) + ")"));
  }
  return p.devices[static_cast<size_t>(index)];
}

}  // namespace flashattn::native

#endif  // FLASHATTN_WITH_CUDA
