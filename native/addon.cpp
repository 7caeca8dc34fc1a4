// addon.cpp — the module: registers every export of NativeBinding (src-ts/binding.ts), no more.
//
// Nothing here or in the files it registers keeps a JS handle in a static: each environment (the
// main thread, each worker_thread) gets its own functions and its own DeviceBuffer class, and
// DeviceBuffers are recognized by a type tag rather than by a stored constructor. Process-wide
// state (the CUDA device list, the stream pool) is plain C++ behind a mutex (cuda_devices.h).
#include <napi.h>

#include "device_buffer.h"
#include "probe.h"
#include "workers.h"

namespace flashattn::native {

// Matches package.json's version; test/binding.test.ts checks the two agree.
constexpr const char* kVersion = "0.1.0";

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("version", Napi::String::New(env, kVersion));
  exports.Set("probe", Napi::Function::New(env, Probe, "probe"));
  exports.Set("select", Napi::Function::New(env, Select, "select"));
  exports.Set("forward", Napi::Function::New(env, Forward, "forward"));
  exports.Set("backward", Napi::Function::New(env, Backward, "backward"));
  exports.Set("bench", Napi::Function::New(env, Bench, "bench"));
  exports.Set("DeviceBuffer", DeviceBuffer::Define(env));
  return exports;
}

}  // namespace flashattn::native

// NODE_API_MODULE pastes its second argument into a name, so it takes a plain identifier.
static Napi::Object InitFlashattn(Napi::Env env, Napi::Object exports) { return flashattn::native::Init(env, exports); }

NODE_API_MODULE(flashattn, InitFlashattn)
