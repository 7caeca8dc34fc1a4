// probe.cpp — probe() and select(). Both are synchronous and cheap after the first CUDA call
// (which creates the CUDA context on each device, once per process).
#include "probe.h"

#include <string>
#include <vector>

#include "cpu/cpu_backend.h"
#include "errors.h"
#include "requests.h"

#if FLASHATTN_WITH_CUDA
#include "api.h"
#include "cuda_devices.h"
#endif

namespace flashattn::native {

namespace {

Napi::Array string_array(Napi::Env env, const std::vector<std::string>& items) {
  Napi::Array a = Napi::Array::New(env, items.size());
  for (size_t i = 0; i < items.size(); ++i) a.Set(static_cast<uint32_t>(i), Napi::String::New(env, items[i]));
  return a;
}

Napi::Object selection(Napi::Env env, const std::string& path, int kernel_head_dim, const std::string& reason) {
  Napi::Object s = Napi::Object::New(env);
  s.Set("path", Napi::String::New(env, path));
  s.Set("kernelHeadDim", Napi::Number::New(env, kernel_head_dim));
  s.Set("reason", Napi::String::New(env, reason));
  return s;
}

#if FLASHATTN_WITH_CUDA
Napi::Object device_report(Napi::Env env, const cuda::DeviceInfo& d) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("index", Napi::Number::New(env, d.index));
  o.Set("name", Napi::String::New(env, d.name));
  Napi::Array capability = Napi::Array::New(env, 2);
  capability.Set(0u, Napi::Number::New(env, d.major));
  capability.Set(1u, Napi::Number::New(env, d.minor));
  o.Set("capability", capability);
  o.Set("smCount", Napi::Number::New(env, d.sm_count));
  o.Set("totalMemory", Napi::Number::New(env, static_cast<double>(d.total_memory)));
  o.Set("freeMemory", Napi::Number::New(env, static_cast<double>(d.free_memory)));
  o.Set("paths", string_array(env, d.paths));
  return o;
}
#endif

}  // namespace

Napi::Value Probe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    Napi::Object report = Napi::Object::New(env);
#if FLASHATTN_WITH_CUDA
    // A fresh probe, for current free memory; the cached one serves dispatch.
    const cuda::ProbeInfo p = cuda::probe();
    Napi::Array devices = Napi::Array::New(env, p.devices.size());
    for (size_t i = 0; i < p.devices.size(); ++i) devices.Set(static_cast<uint32_t>(i), device_report(env, p.devices[i]));
    report.Set("build", Napi::String::New(env, "cuda"));
    report.Set("compiledArchs", string_array(env, p.compiled_archs));
    report.Set("cudaRuntimeVersion", Napi::Number::New(env, p.runtime_version));
    report.Set("cudaDriverVersion", Napi::Number::New(env, p.driver_version));
    report.Set("cudaError", Napi::String::New(env, p.error));
    report.Set("devices", devices);
#else
    report.Set("build", Napi::String::New(env, "cpu"));
    report.Set("compiledArchs", string_array(env, {}));
    report.Set("cudaRuntimeVersion", Napi::Number::New(env, 0));
    report.Set("cudaDriverVersion", Napi::Number::New(env, 0));
    report.Set("cudaError", Napi::String::New(env, "built without CUDA"));
    report.Set("devices", Napi::Array::New(env, 0));
#endif
    report.Set("cpuThreads", Napi::Number::New(env, cpu::default_threads()));
    return report;
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    throw make_js_error(env, current_failure("probe"));
  }
}

Napi::Value Select(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    const SelectQuery query = parse_select(info[0]);
#if !FLASHATTN_WITH_CUDA
    (void)query;
    return selection(env, "none", 0, "built without CUDA");
#else
    const std::string d_problem = head_dim_problem(query.params.d, "headDim");
    if (!d_problem.empty()) return selection(env, "none", 0, d_problem);
    const cuda::ProbeInfo& p = cached_probe();
    if (static_cast<size_t>(query.device) >= p.devices.size()) {
      return selection(env, "none", 0,
                       p.devices.empty() ? "no CUDA device" + (p.error.empty() ? std::string() : ": " + p.error)
                                         : "CUDA device " + std::to_string(query.device) + " does not exist (" +
                                               std::to_string(p.devices.size()) + " present)");
    }
    const cuda::Selection s = cuda::select_kernel(query.backward ? cuda::Op::kBackward : cuda::Op::kForward,
                                                  query.params, p.devices[static_cast<size_t>(query.device)]);
    return selection(env, cuda::kernel_path_name(s.path), s.path == cuda::KernelPath::kNone ? 0 : s.kernel_head_dim,
                     s.reason);
#endif
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    throw make_js_error(env, current_failure("select"));
  }
}

}  // namespace flashattn::native
