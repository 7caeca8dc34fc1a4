// env_state.h — per-environment execution state: how completed work gets back to its JS thread.
//
// A CUDA call enqueues its work on a stream and records an event behind it; the completion thread
// (completion.h) sees the event complete and hands the Work to this environment's thread-safe
// function; on the JS thread the Work settles its promise and is deleted. A CPU call runs as napi async
// work and settles the same way from its completion callback.
//
// Teardown (a worker_thread terminated with calls in flight): the cleanup hook marks the
// environment dead, waits for the streams it used so every host function has run, and frees all
// Work that could no longer be delivered. Work delivered into a dying environment is freed without
// touching JS. Nothing on these paths throws into N-API.
#pragma once

#include <node_api.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "errors.h"

namespace flashattn::native {

class EnvState;
struct StreamCore;

// What a Work's settle step can use: the shared part of its environment, which outlives the
// EnvState for driver threads that still hold a pointer to it.
struct EnvShared {
  std::mutex mu;
  bool alive = true;
  napi_threadsafe_function tsfn = nullptr;
};

// One call in flight. Its destructor frees everything the call took (device memory
// stream-ordered, pinned buffers back to their pool) and must not call N-API: it may run on any
// thread that may call CUDA, after the environment is gone.
class Work {
 public:
  virtual ~Work() = default;
  // On the JS thread, environment alive: resolve or reject `deferred`. May throw (the caller
  // turns an exception into a rejection).
  virtual void settle(napi_env env) = 0;
  // Deletes the N-API references the Work holds (JS thread, environment alive).
  void drop_refs(napi_env env) noexcept;

  std::string op;  // "forward", "backward", "DeviceBuffer.upload", ...
  napi_deferred deferred = nullptr;
  std::shared_ptr<EnvShared> shared;
  std::vector<napi_ref> refs;  // JS objects the settle step writes into
  std::string gpu_failure;     // set by the completion thread when the call's GPU work failed
  // steady-clock ns (FLASHATTN_TRACE): call start, request read, outputs and plan (CUDA), kernel
  // launched (CUDA), end of the synchronous part, completion seen
  int64_t t_start_ns = 0, t_parsed_ns = 0, t_planned_ns = 0, t_launched_ns = 0, t_enqueued_ns = 0, t_done_ns = 0;
};

class EnvState {
 public:
  // The state of `env`, created by init() at module load.
  static EnvState* of(napi_env env);
  static napi_status init(napi_env env);

  napi_env env() const { return env_; }
  const std::shared_ptr<EnvShared>& shared() const { return shared_; }

  // Counts a Work as in flight (the event loop stays alive while any is).
  void begin(Work* work);
  // JS thread: settle, drop refs, delete, uncount. Never throws.
  void finish(Work* work) noexcept;
  // Deletes a Work whose environment is going away (or whose settle cannot run). Never throws.
  static void discard(Work* work) noexcept;

  // Remembers a stream this environment enqueued CUDA work on, for the teardown wait.
  void used_stream(const std::shared_ptr<StreamCore>& stream);

  // The DeviceBuffer constructor of this environment (set at module load).
  napi_ref device_buffer_ctor = nullptr;

  // From the completion thread: delivers `work` to its environment, or keeps it for the next
  // free_orphans() when the environment is gone.
  static void deliver(void* work) noexcept;
  // Frees Work that could not be delivered (call from a thread that may use CUDA).
  static void free_orphans() noexcept;

 private:
  explicit EnvState(napi_env env);
  static void cleanup(void* data) noexcept;
  static void call_js(napi_env env, napi_value js_cb, void* context, void* data) noexcept;

  napi_env env_;
  std::shared_ptr<EnvShared> shared_;
  int64_t in_flight_ = 0;
  std::mutex streams_mu_;
  std::vector<std::weak_ptr<StreamCore>> streams_;
};

// Creates a promise for `work` (setting work->deferred). Returns the promise.
napi_value new_promise(napi_env env, Work* work);

// A JS Error with `code` set, without exceptions (nullptr when the environment cannot make one).
napi_value js_error(napi_env env, const Failure& f) noexcept;

// Rejects / resolves without throwing.
void reject(napi_env env, napi_deferred deferred, const Failure& f) noexcept;

}  // namespace flashattn::native
