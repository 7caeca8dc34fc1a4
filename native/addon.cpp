// addon.cpp — the module: registers every export of NativeBinding (src-ts/binding.ts), no more.
//
// Nothing here or in the files it registers keeps a JS handle in a static: each environment (the
// main thread, each worker_thread) gets its own functions and its own DeviceBuffer class, and
// DeviceBuffers are recognized by a type tag rather than by a stored constructor. Process-wide
// state (the CUDA device list, the stream pool) is plain C++ behind a mutex (cuda_devices.h).
#include <napi.h>

#include "device_buffer.h"
#include "errors.h"
#include "exec/env_state.h"
#include "exec/stream.h"
#include "kvcache/kvcache.h"
#include "probe.h"
#include "quant/quant.h"
#include "varlen/varlen.h"
#include "workers.h"

namespace flashattn::native {

namespace {

// Every export runs behind this guard: no C++ exception leaves the addon. A Napi::Error (a JS
// exception raised while reading the request, or an N-API call failing because a worker_thread is
// terminating) is thrown as a JS exception when the environment can still take one, and
// dropped when it cannot; letting it reach node-addon-api there would abort the process.
template <Napi::Value (*Fn)(const Napi::CallbackInfo&)>
Napi::Value guarded(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  napi_value error = nullptr;
  try {
    return Fn(info);
  } catch (const Napi::Error& e) {
    try {
      error = e.Value();
    } catch (...) {
    }
  } catch (...) {
    try {
      error = make_js_error(info.Env(), current_failure("flashattn")).Value();
    } catch (...) {
    }
  }
  bool pending = false;
  if (error != nullptr && napi_is_exception_pending(env, &pending) == napi_ok && !pending) (void)napi_throw(env, error);
  return Napi::Value();
}

}  // namespace

// Matches package.json's version; test/binding.test.ts checks the two agree.
constexpr const char* kVersion = "0.1.0";

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  if (EnvState::init(env) != napi_ok) {
    throw Napi::Error::New(env, "flashattn: could not set up the addon's completion queue");
  }
  exports.Set("version", Napi::String::New(env, kVersion));
  exports.Set("probe", Napi::Function::New(env, guarded<Probe>, "probe"));
  exports.Set("select", Napi::Function::New(env, guarded<Select>, "select"));
  exports.Set("forward", Napi::Function::New(env, guarded<Forward>, "forward"));
  exports.Set("forwardFlat", Napi::Function::New(env, guarded<ForwardFlat>, "forwardFlat"));
  exports.Set("poll", Napi::Function::New(env, guarded<Poll>, "poll"));
  exports.Set("backward", Napi::Function::New(env, guarded<Backward>, "backward"));
  exports.Set("kvcache", Napi::Function::New(env, guarded<KvCache>, "kvcache"));
  exports.Set("varlenForward", Napi::Function::New(env, guarded<VarlenForward>, "varlenForward"));
  exports.Set("varlenBackward", Napi::Function::New(env, guarded<VarlenBackward>, "varlenBackward"));
  exports.Set("bench", Napi::Function::New(env, guarded<Bench>, "bench"));
  exports.Set("benchDecode", Napi::Function::New(env, guarded<BenchDecode>, "benchDecode"));
  exports.Set("planFor", Napi::Function::New(env, guarded<PlanFor>, "planFor"));
  exports.Set("planDecode", Napi::Function::New(env, guarded<PlanDecode>, "planDecode"));
  exports.Set("quantizeFp8", Napi::Function::New(env, guarded<QuantizeFp8>, "quantizeFp8"));
  Napi::Function device_buffer = DeviceBuffer::Define(env);
  napi_create_reference(env, device_buffer, 1, &EnvState::of(env)->device_buffer_ctor);
  exports.Set("DeviceBuffer", device_buffer);
  exports.Set("Stream", Stream::Define(env));
  return exports;
}

}  // namespace flashattn::native

// NODE_API_MODULE pastes its second argument into a name, so it takes a plain identifier.
static Napi::Object InitFlashattn(Napi::Env env, Napi::Object exports) { return flashattn::native::Init(env, exports); }

NODE_API_MODULE(flashattn, InitFlashattn)
