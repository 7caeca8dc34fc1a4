// env_state.h — per-environment execution state: how completed work gets back to its JS thread.
//
// A CUDA call enqueues its work on a stream and records an event behind it; the completion thread
// (completion.h) sees the event complete and puts the Work on this environment's ready list; on the
// JS thread the Work settles its promise and is deleted. The JS thread learns of it either by
// polling (poll(): the TypeScript layer keeps the event loop turning for a short while after a GPU
// call starts or settles, src-ts/spin.ts, so an awaited call does not pay for waking a sleeping
// thread) or, when it is not polling, through the environment's thread-safe function. A CPU call runs as napi async
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
class Work;
struct StreamCore;

// What a Work's settle step can use: the shared part of its environment, which outlives the
// EnvState for driver threads that still hold a pointer to it.
struct EnvShared {
  std::mutex mu;
  bool alive = true;
  napi_threadsafe_function tsfn = nullptr;
  // Completed GPU work waiting for the JS thread (under mu), and until when (steady-clock ns) the
  // JS thread has said it polls for it itself (poll(), under mu): while it does, a delivery does
  // not wake the event loop through the thread-safe function.
  std::vector<Work*> ready;
  int64_t polled_until_ns = 0;
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
  bool on_gpu = false;         // delivered by the completion thread (counted by gpu_in_flight())
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

  // GPU work of this environment not yet settled.
  int64_t gpu_in_flight() const { return gpu_in_flight_; }

  // JS thread: settles the GPU work that has completed, and (poll_more) says the JS thread will
  // call again within a short lease, so completions need not wake the event loop until then;
  // poll_more false ends the lease. Returns gpu_in_flight() after settling.
  int64_t poll(bool poll_more) noexcept;

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
  // Settles what deliver() left in shared_->ready.
  void settle_ready() noexcept;

  int64_t in_flight_ = 0;
  int64_t gpu_in_flight_ = 0;
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
