// cuda_devices.h — process-wide CUDA state the native layer shares: the device list (probed once)
// and a small pool of streams per device. CUDA build only; plain C++ (no napi values), so worker
// threads may use it. Nothing here holds a JS handle, so it is safe across worker_threads.
#pragma once

#if FLASHATTN_WITH_CUDA

#include <string>

#include "api.h"

namespace flashattn::native {

// cuda::probe() taken once per process, on first use. Device names, capabilities and kernel paths
// do not change while the process runs; only the memory numbers go stale, and probe() (the JS
// export) takes a fresh one for those.
const cuda::ProbeInfo& cached_probe();

// Device `index` from the cached probe; E_NO_DEVICE saying why when there is no such device.
const cuda::DeviceInfo& device_info(int index);

// One stream of `device`, taken from the pool (or created) for the life of the lease.
// Each in-flight op gets its own stream, so concurrent ops on one device do not wait for each
// other's stream_synchronize. Streams are kept for the life of the process.
// "device 0 (NVIDIA H200, sm_90)", for messages.
inline std::string device_label(const cuda::DeviceInfo& info) {
  return "device " + std::to_string(info.index) + " (" + info.name + ", sm_" + std::to_string(info.major) +
         std::to_string(info.minor) + ")";
}

}  // namespace flashattn::native

#endif  // FLASHATTN_WITH_CUDA
