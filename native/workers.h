// workers.h — the async ops: every one is an AsyncWorker that settles a Promise::Deferred.
//
// The JS thread only reads and checks the request; the work (attention, copies, benchmarks) runs
// in Execute() on a libuv worker thread. Any failure, there or while reading the request, rejects
// the promise with a JS Error that has a `code`: callers handle one path only.
#pragma once

#include <napi.h>

#include <cstddef>
#include <memory>
#include <string>

#include "device_buffer.h"
#include "errors.h"

namespace flashattn::native {

// An AsyncWorker that settles a promise. Subclasses implement Run() (worker thread) and, when
// they resolve with a value, Result() (JS thread).
class PromiseWorker : public Napi::AsyncWorker {
 public:
  // `op` names the op in error messages ("forward", "DeviceBuffer.upload", ...).
  PromiseWorker(Napi::Env env, const char* op);

  // Queues the work and returns its promise. The worker deletes itself once settled.
  Napi::Promise QueuePromise();

 protected:
  virtual void Run() = 0;
  virtual Napi::Value Result(Napi::Env env);

 private:
  void Execute() final;
  void OnOK() final;
  void OnError(const Napi::Error& error) final;

  std::string op_;
  Napi::Promise::Deferred deferred_;
  Failure failure_;
};

// binding.ts: forward(req), forwardFlat(...), backward(req), bench(req), benchDecode(req).
Napi::Value Forward(const Napi::CallbackInfo& info);
Napi::Value Backward(const Napi::CallbackInfo& info);
// forwardFlat(header, stream, q, k, v, out, lse, qDescale, kDescale, vDescale): the forward of
// the TypeScript layer's hot path (request/flat.h), the same call as forward(req).
Napi::Value ForwardFlat(const Napi::CallbackInfo& info);

// poll(more: boolean) → GPU calls of this environment still in flight, after settling those that
// have completed; `more` says the caller polls again soon (see exec/env_state.h).
Napi::Value Poll(const Napi::CallbackInfo& info);
Napi::Value Bench(const Napi::CallbackInfo& info);
Napi::Value BenchDecode(const Napi::CallbackInfo& info);

struct AttentionJob;
// The attention call kind (exec/calls.cpp) for a request that `parse` reads into an AttentionJob
// (request/request.h): forward, backward, and the varlen requests (varlen/varlen.h). `op` names
// the call in its errors ("forward: ...").
Napi::Value QueueAttention(const Napi::CallbackInfo& info, const char* op, AttentionJob (*parse)(Napi::Value));

// DeviceBuffer.upload / download: copies `bytes` between `host` (inside the typed array `array`)
// and the allocation, keeping both JS objects alive until the copy has finished.
// DeviceBuffer.upload/download (exec/calls.cpp): the host bytes are copied through a pinned
// buffer on the JS thread (upload: now; download: when the copy has completed, into `array` if it
// is still attached and unresized). Enqueued on a default stream of the buffer's device.
Napi::Promise QueueCopy(Napi::Env env, const char* op, std::shared_ptr<DeviceAllocation> alloc, Napi::Value array,
                        void* host, size_t bytes, bool to_device);

}  // namespace flashattn::native
