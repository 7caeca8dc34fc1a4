// probe.h — the synchronous exports: probe() (what this build and machine can run) and
// select(req) (which kernel would serve a request; the same function dispatch asks).
#pragma once

#include <napi.h>

namespace flashattn::native {

Napi::Value Probe(const Napi::CallbackInfo& info);
Napi::Value Select(const Napi::CallbackInfo& info);

}  // namespace flashattn::native
