// probe.cpp — probe() and select(). Both are synchronous and cheap after the first CUDA call
// (which creates the CUDA context on each device, once per process).
#include "probe.h"

#include <string>
#include <vector>

#include "cpu/cpu_backend.h"
#include "errors.h"
#include "fields.h"
#include "plan/decode_plan.h"
#include "plan/plan.h"
#include "request/tensor.h"
#include "request/request.h"

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

Napi::Object selection(Napi::Env env, const plan::Plan& p) {
  Napi::Object s = Napi::Object::New(env);
  s.Set("path", Napi::String::New(env, plan::kernel_path_name(p.path)));
  s.Set("kernelHeadDim", Napi::Number::New(env, p.ok() ? p.kernel_head_dim : 0));
  s.Set("tile", Napi::String::New(env, plan::sm80_tile_name(p.tile)));
  s.Set("decode", Napi::Boolean::New(env, p.decode));
  s.Set("splits", Napi::Number::New(env, p.splits));
  s.Set("workspaceBytes", Napi::Number::New(env, static_cast<double>(p.workspace_bytes)));
  s.Set("reason", Napi::String::New(env, p.reason));
  return s;
}

Napi::Object selection(Napi::Env env, const std::string& why_none) {
  plan::Plan p;
  p.reason = why_none;
  return selection(env, p);
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
    return selection(env, "built without CUDA");
#else
    const std::string d_problem = head_dim_problem(query.params.d, "headDim");
    if (!d_problem.empty()) return selection(env, d_problem);
    const cuda::ProbeInfo& p = cached_probe();
    if (static_cast<size_t>(query.device) >= p.devices.size()) {
      return selection(env, p.devices.empty() ? "no CUDA device" + (p.error.empty() ? std::string() : ": " + p.error)
                                              : "CUDA device " + std::to_string(query.device) + " does not exist (" +
                                                    std::to_string(p.devices.size()) + " present)");
    }
    return selection(env, cuda::plan_for(query.backward ? plan::Op::kBackward : plan::Op::kForward, query.params,
                                         query.device));
#endif
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    throw make_js_error(env, current_failure("select"));
  }
}

namespace {

// A hypothetical device from capability, smemOptin (default: the capability's) and smCount
// (default 0: no split planning).
plan::DeviceFacts hypothetical_device(const OwnFields& req, const Napi::Value& cap) {
  if (!cap.IsArray() || cap.As<Napi::Array>().Length() != 2) {
    fail(ErrorCode::kArg, "capability must be [major, minor], but got " + describe(cap));
  }
  plan::DeviceFacts dev;
  dev.major = static_cast<int>(read_integer(cap.As<Napi::Array>().Get(0u), "capability[0]", 0, 100, "an integer"));
  dev.minor = static_cast<int>(read_integer(cap.As<Napi::Array>().Get(1u), "capability[1]", 0, 9, "an integer"));
  const Napi::Value smem = field(req, "smemOptin");
  dev.smem_optin = smem.IsUndefined() ? plan::known_smem_optin(dev.major, dev.minor)
                                      : static_cast<size_t>(read_integer(smem, "smemOptin", 0, kMaxSafeInteger,
                                                                         "a non-negative integer"));
  const Napi::Value sms = field(req, "smCount");
  dev.sm_count = sms.IsUndefined() ? 0 : read_count(req, "smCount", 100000);
  return dev;
}

// The build's arch list, as CMake spells it ('80;90a').
std::vector<plan::ArchTarget> read_archs(const OwnFields& req) {
  const Napi::Value archs_value = field(req, "archs");
  if (!archs_value.IsString()) fail(ErrorCode::kArg, "archs must be a string such as '80;90a', but got " + describe(archs_value));
  std::vector<plan::ArchTarget> archs;
  std::string why;
  if (!plan::parse_arch_list(archs_value.As<Napi::String>().Utf8Value(), &archs, &why)) fail(ErrorCode::kArg, "archs: " + why);
  return archs;
}

}  // namespace

Napi::Value PlanFor(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    const Napi::Object obj = as_object(info[0], "the request");
    const SelectQuery query = parse_select(obj);
    const OwnFields req(obj);
    plan::DeviceFacts dev = hypothetical_device(req, field(req, "capability"));
    dev.index = query.device;
    const std::vector<plan::ArchTarget> archs = read_archs(req);
    plan::Force force = plan::Force::kAuto;
    const Napi::Value force_value = field(req, "forcePath");
    if (!force_value.IsUndefined() &&
        (!force_value.IsString() || !plan::parse_force(force_value.As<Napi::String>().Utf8Value(), &force))) {
      fail(ErrorCode::kArg, "forcePath must be 'sm80', 'sm90' or '', but got " + describe(force_value));
    }
    const plan::Plan p = plan::make_plan(query.backward ? plan::Op::kBackward : plan::Op::kForward, query.params, dev,
                                         archs, force);
    Napi::Object result = selection(env, p);
    std::string why_none;
    result.Set("devicePaths", string_array(env, plan::device_paths(dev, archs, &why_none)));
    result.Set("devicePathsReason", Napi::String::New(env, why_none));
    return result;
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    throw make_js_error(env, current_failure("planFor"));
  }
}


Napi::Value PlanDecode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    const OwnFields req(as_object(info[0], "the request"));
    decode::DecodeParams shape;
    shape.dtype = read_dtype(field(req, "dtype"), "dtype");
    shape.b = read_count(req, "batch", 65535);
    shape.s_q = read_count(req, "seqlenQ", 1 << 20);
    shape.h = read_count(req, "headsQ", 65535);
    shape.h_k = read_count(req, "headsKV", 65535);
    shape.d = read_count(req, "headDim", 4096);
    shape.max_seqlen = read_count(req, "capacity", 1 << 30);
    shape.batch_cache = shape.b;
    const Napi::Value wl = field(req, "windowLeft"), wr = field(req, "windowRight");
    shape.window_left = wl.IsUndefined() ? -1 : static_cast<int>(read_integer(wl, "windowLeft", -1, INT32_MAX, "an integer >= -1"));
    shape.window_right = wr.IsUndefined() ? -1 : static_cast<int>(read_integer(wr, "windowRight", -1, INT32_MAX, "an integer >= -1"));
    plan::DecodePlan plan;
    const Napi::Value cap = field(req, "capability");
    if (!cap.IsUndefined()) {
      plan = plan::plan_decode(shape, hypothetical_device(req, cap), read_archs(req));
    } else {
      const int device = read_device(req);
#if !FLASHATTN_WITH_CUDA
      (void)device;
      plan.reason = "built without CUDA";
#else
      const cuda::ProbeInfo& p = cached_probe();
      if (static_cast<size_t>(device) >= p.devices.size()) {
        plan.reason = p.devices.empty() ? "no CUDA device" + (p.error.empty() ? std::string() : ": " + p.error)
                                        : "CUDA device " + std::to_string(device) + " does not exist";
      } else {
        plan = cuda::plan_decode_for(shape, device);
      }
#endif
    }
    Napi::Object result = Napi::Object::New(env);
    result.Set("ok", Napi::Boolean::New(env, plan.ok));
    result.Set("reason", Napi::String::New(env, plan.reason));
    result.Set("splits", Napi::Number::New(env, plan.ok ? plan.splits : 0));
    result.Set("workspaceBytes", Napi::Number::New(env, static_cast<double>(plan.workspace_bytes)));
    result.Set("tileRows", Napi::Number::New(env, plan.tile_rows));
    result.Set("smemBytes", Napi::Number::New(env, static_cast<double>(plan.smem_bytes)));
    return result;
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    throw make_js_error(env, current_failure("planDecode"));
  }
}

}  // namespace flashattn::native
