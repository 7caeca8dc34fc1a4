// probe.h — the synchronous exports: probe() (what this build and machine can run) and
// select(req) (which kernel would serve a request; the same function dispatch asks).
#pragma once

#include <napi.h>

namespace flashattn::native {

Napi::Value Probe(const Napi::CallbackInfo& info);
Napi::Value Select(const Napi::CallbackInfo& info);
// planFor(req): the plan (plan/plan.h) for a hypothetical device and build, e.g.
// {capability: [9, 0], archs: '80;90a', op, dtype, headDim, ...}; what the tests check probe(),
// dispatch and select() against, with no GPU.
Napi::Value PlanFor(const Napi::CallbackInfo& info);
// planDecode(req): the decode (KV-cache) path's plan (plan/decode_plan.h) for one decode shape
// {dtype, batch, seqlenQ, headsQ, headsKV, headDim, capacity, windowLeft?, windowRight?} on a real
// device {device} or a hypothetical one {capability, smCount, smemOptin?, archs}.
Napi::Value PlanDecode(const Napi::CallbackInfo& info);

}  // namespace flashattn::native
