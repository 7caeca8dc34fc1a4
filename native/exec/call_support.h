// call_support.h — pieces every call kind shares: a tensor bound to where the backend reads or
// writes it, copying host inputs into memory the addon owns, and handing results back to JS
// (fresh arrays, or the caller's arrays when they are still alive and unchanged).
#pragma once

#include <napi.h>

#include <cstddef>
#include <initializer_list>
#include <memory>
#include <vector>

#if FLASHATTN_WITH_CUDA
#include "api.h"
#endif

#include "device_buffer.h"
#include "errors.h"
#include "exec/completion.h"
#include "exec/env_state.h"
#include "exec/host_memory.h"
#include "exec/stream.h"
#include "request/tensor.h"

namespace flashattn::native {

// One tensor of a call, bound to where the backend reads or writes it.
struct Bound {
  TensorArg* arg = nullptr;
  void* ptr = nullptr;                     // what the backend's params point at
  HostBlock host;                          // owned host copy: the data (CPU) or pinned staging (CUDA)
  std::shared_ptr<DeviceAllocation> dev;   // the user's buffer, a staging copy, or an allocated output
  int ref = -1;                            // index into Work::refs of a caller-provided host output
};

// The user's typed array behind `ref`, if it still has exactly `bytes` bytes (not detached, not
// resized): its data pointer, else nullptr.
void* live_array_data(napi_env env, napi_ref ref, size_t bytes);

// A new typed array of `dtype` holding `block`'s bytes; a plain block is handed over without a copy.
napi_value new_host_array(napi_env env, HostBlock& block, DType dtype);

// b.host = block, filled with b's host input (strides gathered to a dense copy).
void copy_in(Bound& b, HostBlock block);

// A caller-provided host output: keeps a reference to its array in work->refs (b.ref) so the
// settle step can write into it.
void keep_output(napi_env env, Work* work, Bound& b);

// Where the backend reads or writes `t`: the ptr of its Bound in `groups`, else nullptr (a role the
// request left out).
void* bound_ptr(std::initializer_list<std::vector<Bound>*> groups, const TensorArg& t);

// Settle: the staging copies and allocated outputs in `groups` (what the call itself allocated, not
// the caller's DeviceBuffers) are free of stream order now that the call's work has completed.
void complete_owned(std::initializer_list<std::vector<Bound>*> groups);

// The outputs of a CPU call: owned blocks the backend writes (filled with NaN bits first when
// `poison`, which proves in the tests that every element is written), kept for the settle step.
void bind_cpu_outputs(napi_env env, Work* work, std::vector<Bound>& outputs, bool poison);

// The end of a CPU call's start, once its inputs are bound: outputs bound, then the call queued on
// its Stream (or the pool) to run on a libuv thread. Call: a CpuTask with job.stream, job.poison
// and outputs.
template <typename Call>
void queue_cpu_call(napi_env env, EnvState* state, Call* call) {
  bind_cpu_outputs(env, call, call->outputs, call->job.poison);
  call->stream = call->job.stream;
  call->state = state;
  call->t_enqueued_ns = now_ns();
  queue_cpu(env, call);
}

// The first step of a settle: rejects `work`'s promise with its own failure (`failed`) or with the
// GPU failure the completion thread recorded; true when it rejected.
bool reject_if_failed(napi_env env, Work* work, bool failed, const Failure& failure);

// The synchronous part of a call of any kind: make() reads the request and returns the new call
// (op and shared set here); start(call) starts it. A call that does not start is rejected and
// freed here; what the promise settles with is the call's business.
template <typename Make, typename Start>
Napi::Value queue_call(const Napi::CallbackInfo& info, const char* op, Make&& make, Start&& start) {
  Napi::Env env = info.Env();
  const int64_t t_start = now_ns();
  EnvState::free_orphans();
  decltype(make()) call = nullptr;
  try {
    EnvState* state = EnvState::of(env);
    call = make();
    call->t_start_ns = t_start;
    call->op = op;
    call->shared = state->shared();
    napi_value promise = new_promise(env, call);
    try {
      start(env, state, call);
    } catch (...) {
      // Not started: nothing enqueued uses its memory.
      Failure f = call->failed ? call->failure : current_failure(op);
      reject(env, call->deferred, f);
      call->drop_refs(env);
      delete call;
    }
    return Napi::Value(env, promise);
  } catch (...) {
    delete call;
    return rejected_with_current(env, op);
  }
}

#if FLASHATTN_WITH_CUDA
// A CUDA call's stream: its Stream's, or a default stream of `device`; recorded on the call (and on
// its environment, for the teardown wait). Call: a Work with gpu_core and gpu_stream.
template <typename Call>
void* take_stream(napi_env env, Call* call, const std::shared_ptr<StreamCore>& requested, int device) {
  std::shared_ptr<StreamCore> core = requested ? requested : default_stream(device);
  call->gpu_core = core;
  call->gpu_stream = core->cuda_stream();
  EnvState::of(env)->used_stream(core);
  return call->gpu_stream;
}

// Binds b on the device: a given DeviceBuffer in place (at its view's offset), anything else (a
// host input to upload, an output left out) to a new stream-ordered allocation of its size.
void bind_device(Bound& b, int device, void* stream);

// The start of a CUDA call of any kind: `enqueue(&enqueued_any)` puts its work on call->gpu_stream;
// then an event is recorded behind it and the completion thread takes the call. If enqueue throws
// before anything was enqueued, the throw goes to the caller (who frees the call); once work is on
// the stream, a failure is recorded on the call, which still settles after the stream passes it.
// Call: a Work with job.device, gpu_stream, gpu_core, op, failure and failed.
template <typename Call, typename Enqueue>
void start_on_stream(EnvState* state, Call* call, Enqueue&& enqueue) {
  bool enqueued_any = false;
  try {
    enqueue(&enqueued_any);
  } catch (...) {
    call->failure = current_failure(call->op);
    call->failed = true;
    if (!enqueued_any) throw;  // nothing on the stream uses the call's memory: the caller frees it now
  }
  call->on_gpu = true;
  state->begin(call);
  void* event = nullptr;
  try {
    event = cuda::event_acquire(call->job.device);
    cuda::event_record(call->job.device, event, call->gpu_stream);
  } catch (...) {
    // No completion signal: wait here (rare; the stream is broken) so the memory can be freed.
    cuda::event_release(call->job.device, event);
    if (!call->failed) {
      call->failure = current_failure(call->op);
      call->failed = true;
    }
    wait_stream_quietly(call->gpu_stream);
    state->finish(call);
    return;
  }
  call->t_enqueued_ns = now_ns();
  watch(call, call->job.device, event, call->gpu_core.get());
}
#endif

}  // namespace flashattn::native
