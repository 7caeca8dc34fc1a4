// calls.cpp — forward, backward and DeviceBuffer copies: validate, take what the call needs,
// enqueue, return a promise; settle on the JS thread when the work completes (env_state.h).
//
// CUDA: everything is enqueued from the JS thread on the call's stream (its Stream, or a default
// stream of the device): host inputs copied into pinned buffers and uploaded, outputs allocated
// stream-ordered, the kernel, downloads into pinned buffers, then a host function that hands the
// call back. No thread waits on the GPU.
// CPU: host inputs are copied into memory the addon owns, the backend runs on a libuv pool thread
// into owned outputs; calls on one Stream run one at a time, in issue order.
// Either way the user's arrays are touched only on the JS thread: inputs when the call starts,
// caller-provided host outputs when it settles (refused with E_ARG if detached or resized).
#include <napi.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "cpu/cpu_backend.h"
#include "cpu/varlen.h"
#include "errors.h"
#include "exec/call_support.h"
#include "exec/completion.h"
#include "exec/env_state.h"
#include "exec/host_memory.h"
#include "exec/stream.h"
#include "fields.h"
#include "request/flat.h"
#include "request/request.h"
#include "workers.h"

#if FLASHATTN_WITH_CUDA
#include "api.h"
#include "cuda_devices.h"
#include "varlen/varlen_cuda.h"
#endif

namespace flashattn::native {

namespace {

class AttentionCall final : public CpuTask {
 public:
  explicit AttentionCall(AttentionJob j) : job(std::move(j)) {}

  void execute() noexcept override {
    try {
      run_cpu();
    } catch (...) {
      failure = current_failure(op);
      failed = true;
    }
    t_done_ns = now_ns();
  }

  void settle(napi_env env) override {
    // The call's work has completed: its staging and output memory is now free of stream order
    // (reusable from the device cache on any stream once released).
    complete_owned({&inputs, &outputs});
    if (scratch) scratch->complete();
    if (reject_if_failed(env, this, failed, failure)) return;
    napi_value result = nullptr;
    if (napi_create_object(env, &result) != napi_ok) fail(ErrorCode::kInternal, "napi_create_object failed");
    if (tracing()) add_trace(env, result);
    for (Bound& b : outputs) {
      const TensorArg& t = *b.arg;
      napi_value value = nullptr;
      if (t.absent && job.on_device && b.dev) {
        value = DeviceBuffer::Adopt(env, b.dev);
      } else if (t.absent) {
        value = new_host_array(env, b.host, t.dtype);
      } else if (b.ref >= 0) {
        void* dst = live_array_data(env, refs[static_cast<size_t>(b.ref)], t.array_bytes);
        if (dst == nullptr) {
          reject(env, deferred,
                 Failure{ErrorCode::kArg, op + ": " + t.name +
                                              ".data was detached, transferred or resized while the call ran; its "
                                              "result was dropped (keep output arrays alive and unchanged until the "
                                              "promise settles)"});
          return;
        }
        scatter(t, b.host.data(), dst);
        (void)napi_get_reference_value(env, refs[static_cast<size_t>(b.ref)], &value);
      }
      if (value == nullptr) (void)napi_get_undefined(env, &value);
      (void)napi_set_named_property(env, result, t.name.c_str(), value);
    }
    (void)napi_resolve_deferred(env, deferred, result);
  }

  // FLASHATTN_TRACE=1: the result carries trace = {parseUs, planUs, launchUs, enqueueUs, doneUs,
  // settleUs}, each from the call's start: request read, outputs allocated and plan taken (CUDA),
  // kernel launched (CUDA), the synchronous part, completion seen by the completion thread, settle.
  // FLASHATTN_TRACE=gpu adds the GPU's own clock (CUDA): kernelUs, the kernel's time on the GPU, and
  // gapUs, the GPU time from the end of the previous traced kernel on the same stream to this
  // kernel's start (what the GPU waited for this call). Two extra events per call.
  static bool tracing() { return trace_level() > 0; }
  static bool tracing_gpu() { return trace_level() > 1; }
  static int trace_level() {
    static const int level = [] {
      const char* v = std::getenv("FLASHATTN_TRACE");
      if (v == nullptr || v[0] == '\0' || (v[0] == '0' && v[1] == '\0')) return 0;
      return std::strcmp(v, "gpu") == 0 ? 2 : 1;
    }();
    return level;
  }

  void add_trace(napi_env env, napi_value result) {
    napi_value trace = nullptr, x = nullptr;
    if (napi_create_object(env, &trace) != napi_ok) return;
    const double us = 1e-3;
    const auto since = [this](int64_t t) { return t > 0 ? static_cast<double>(t - t_start_ns) : 0.0; };
    napi_create_double(env, since(t_parsed_ns) * us, &x);
    napi_set_named_property(env, trace, "parseUs", x);
    napi_create_double(env, since(t_planned_ns) * us, &x);
    napi_set_named_property(env, trace, "planUs", x);
    napi_create_double(env, since(t_launched_ns) * us, &x);
    napi_set_named_property(env, trace, "launchUs", x);
    napi_create_double(env, since(t_enqueued_ns) * us, &x);
    napi_set_named_property(env, trace, "enqueueUs", x);
    napi_create_double(env, since(t_done_ns) * us, &x);
    napi_set_named_property(env, trace, "doneUs", x);
    napi_create_double(env, (now_ns() - t_start_ns) * us, &x);
    napi_set_named_property(env, trace, "settleUs", x);
#if FLASHATTN_WITH_CUDA
    if (mark_start && mark_end) {
      napi_create_double(env, mark_end->since(mark_start.get()), &x);
      napi_set_named_property(env, trace, "kernelUs", x);
      if (mark_prev) {
        napi_create_double(env, mark_start->since(mark_prev.get()), &x);
        napi_set_named_property(env, trace, "gapUs", x);
      }
    }
#endif
    napi_set_named_property(env, result, "trace", trace);
  }

  AttentionJob job;
  Failure failure;
  bool failed = false;
  // Declared before the tensors so that it is destroyed after them: their stream-ordered frees
  // go to this stream.
  std::shared_ptr<StreamCore> gpu_core;
  void* gpu_stream = nullptr;
  std::vector<Bound> inputs, outputs;
  // FLASHATTN_TRACE=gpu: the previous traced kernel's end on this stream, this kernel's start, end.
  std::shared_ptr<TimingMark> mark_prev, mark_start, mark_end;
  // Varlen on CUDA: one sequence's contiguous lse between the kernels and lse [h, total_q].
  std::shared_ptr<DeviceAllocation> scratch;

 private:
  void run_cpu() {
    AttnParams p = job.params;
    bind(p);
    const int threads = job.threads > 0 ? job.threads : cpu::default_threads();
    try {
      if (job.varlen) {
        const auto* cu_q = static_cast<const int32_t*>(bound_ptr({&inputs}, job.cu_seqlens_q));
        const auto* cu_k = static_cast<const int32_t*>(bound_ptr({&inputs}, job.cu_seqlens_k));
        (job.backward ? cpu::varlen_backward : cpu::varlen_forward)(p, cu_q, cu_k, threads);
      } else if (job.backward) {
        cpu::backward(p, threads);
      } else if (job.naive) {
        cpu::naive_forward(p, threads);
      } else {
        cpu::forward(p, threads);
      }
    } catch (const std::bad_alloc&) {
      throw;
    } catch (const std::invalid_argument& e) {
      fail(ErrorCode::kUnsupported, std::string("cpu backend: ") + e.what());
    } catch (const AddonError&) {
      throw;
    } catch (const std::exception& e) {
      fail(ErrorCode::kInternal, std::string("cpu backend failed: ") + e.what());
    }
  }

 public:
  // Points params at the bound tensors.
  void bind(AttnParams& p) {
    auto at = [this](const TensorArg& t) { return bound_ptr({&inputs, &outputs}, t); };
    p.q = at(job.q);
    p.k = at(job.k);
    p.v = at(job.v);
    p.out = at(job.out);
    p.lse = static_cast<float*>(at(job.lse));
    p.q_descale = static_cast<const float*>(at(job.q_descale));
    p.k_descale = static_cast<const float*>(at(job.k_descale));
    p.v_descale = static_cast<const float*>(at(job.v_descale));
    if (job.backward) {
      p.dout = at(job.dout);
      p.dq = at(job.dq);
      p.dk = at(job.dk);
      p.dv = at(job.dv);
    }
  }
};

void start_cpu_call(napi_env env, EnvState* state, AttentionCall* call) {
  for (Bound& b : call->inputs) {
    copy_in(b, HostBlock::plain(b.arg->bytes));
    b.ptr = b.host.data();
  }
  queue_cpu_call(env, state, call);
}

#if FLASHATTN_WITH_CUDA


// Enqueues the whole call. Throws before anything is enqueued, or records the failure in
// `enqueued_any` so the caller knows whether the stream may still touch the call's memory.
void enqueue_cuda(napi_env env, AttentionCall* call, bool* enqueued_any) {
  AttentionJob& job = call->job;
  const int device = job.device;
  const cuda::DeviceInfo& info = device_info(device);  // E_NO_DEVICE
  const cuda::Op op = job.backward ? cuda::Op::kBackward : cuda::Op::kForward;

  void* stream = take_stream(env, call, job.stream, device);

  // Device pointers first, so the plan sees the real alignment.
  for (std::vector<Bound>* group : {&call->inputs, &call->outputs}) {
    for (Bound& b : *group) bind_device(b, device, stream);
  }
  AttnParams p = job.params;
  call->bind(p);
  plan::Plan plan;
  VarlenLaunch varlen;
  if (job.varlen) {
    p.cu_seqlens_q = static_cast<const int32_t*>(bound_ptr({&call->inputs}, job.cu_seqlens_q));
    p.cu_seqlens_k = static_cast<const int32_t*>(bound_ptr({&call->inputs}, job.cu_seqlens_k));
    // The offsets as the request layer read and checked them (host arrays only).
    varlen = plan_varlen(job.backward, p, job.cu_q_values, job.cu_k_values, device, device_label(info));
  } else if (!job.naive) {
    plan = cuda::plan_for(op, p, device);
    if (!plan.ok()) {
      fail(ErrorCode::kUnsupported, "no CUDA kernel serves this request on " + device_label(info) + ": " +
                                        (plan.reason.empty() ? std::string("no reason given") : plan.reason));
    }
  }
  call->t_planned_ns = now_ns();

  for (Bound& b : call->inputs) {
    if (b.arg->on_device()) continue;
    copy_in(b, HostBlock::pinned(b.arg->bytes));
    *enqueued_any = true;
    cuda::copy_to_device(device, b.ptr, b.host.data(), b.arg->bytes, stream);
  }
  for (Bound& b : call->outputs) {
    if (job.poison) {
      *enqueued_any = true;
      cuda::fill_bytes(device, b.ptr, 0xff, b.arg->bytes, stream);
    }
  }
  *enqueued_any = true;
  const bool gpu_trace = AttentionCall::tracing_gpu();
  if (gpu_trace) {
    call->mark_prev = call->gpu_core->last_mark;
    call->mark_start = std::make_shared<TimingMark>(device, stream);
  }
  if (job.varlen) {
    if (varlen.scratch_bytes > 0) call->scratch = std::make_shared<DeviceAllocation>(device, varlen.scratch_bytes, stream);
    enqueue_varlen(device, job.backward, p, varlen, call->scratch ? static_cast<float*>(call->scratch->ptr) : nullptr,
                   stream);
  } else if (job.backward) {
    cuda::backward(device, p, plan, stream);
  } else if (job.naive) {
    cuda::naive_forward(device, p, stream);
  } else {
    cuda::forward(device, p, plan, stream);
  }
  if (gpu_trace) {
    call->mark_end = std::make_shared<TimingMark>(device, stream);
    call->gpu_core->last_mark = call->mark_end;
  }
  call->t_launched_ns = now_ns();
  for (Bound& b : call->outputs) {
    // Device outputs stay where they are: given ones, and absent ones of a DeviceTensor call
    // (they become DeviceBuffers at settle). Only host outputs are downloaded.
    if (b.arg->on_device() || (b.arg->absent && job.on_device)) continue;
    b.host = HostBlock::pinned(b.arg->bytes);
    cuda::copy_to_host(device, b.host.data(), b.ptr, b.arg->bytes, stream);
    keep_output(env, call, b);
  }
  // Host outputs that are absent get a fresh array at settle; device outputs that are absent
  // become DeviceBuffers then.
}

void start_cuda_call(napi_env env, EnvState* state, AttentionCall* call) {
  start_on_stream(state, call, [&](bool* enqueued_any) { enqueue_cuda(env, call, enqueued_any); });
}

#endif  // FLASHATTN_WITH_CUDA

}  // namespace

namespace {

// A call of any attention kind whose request `parse()` reads.
template <typename Parse>
Napi::Value queue_attention(const Napi::CallbackInfo& info, const char* op, Parse&& parse) {
  return queue_call(
      info, op,
      [&] {
        AttentionJob job = parse();
        const int64_t t_parsed = now_ns();
        auto* call = new AttentionCall(std::move(job));
        call->t_parsed_ns = t_parsed;
        for (TensorArg* t : call->job.inputs()) {
          call->inputs.emplace_back();
          call->inputs.back().arg = t;
        }
        for (TensorArg* t : call->job.outputs()) {
          call->outputs.emplace_back();
          call->outputs.back().arg = t;
        }
        return call;
      },
      [](napi_env env, EnvState* state, AttentionCall* call) {
        if (call->job.backend == Backend::kCpu) {
          start_cpu_call(env, state, call);
        } else {
#if FLASHATTN_WITH_CUDA
          start_cuda_call(env, state, call);
#else
          fail(ErrorCode::kNoDevice, kBuiltWithoutCuda);
#endif
        }
      });
}

}  // namespace

Napi::Value QueueAttention(const Napi::CallbackInfo& info, const char* op, AttentionJob (*parse)(Napi::Value)) {
  return queue_attention(info, op, [&] { return parse(info[0]); });
}

namespace {

// ---- DeviceBuffer copies -------------------------------------------------------------------------

#if FLASHATTN_WITH_CUDA
class CopyCall final : public Work {
 public:
  void settle(napi_env env) override {
    if (!gpu_failure.empty()) {
      reject(env, deferred, Failure{ErrorCode::kCuda, op + ": " + gpu_failure});
      return;
    }
    if (!to_device) {
      void* dst = live_array_data(env, refs[0], bytes);
      if (dst == nullptr) {
        reject(env, deferred,
               Failure{ErrorCode::kArg, op + ": dst was detached, transferred or resized while the copy ran"});
        return;
      }
      std::memcpy(dst, host.data(), bytes);
    }
    napi_value undefined;
    napi_get_undefined(env, &undefined);
    napi_resolve_deferred(env, deferred, undefined);
  }

  bool to_device = false;
  size_t bytes = 0;
  std::shared_ptr<StreamCore> core;
  void* gpu_stream = nullptr;
  std::shared_ptr<DeviceAllocation> alloc;
  HostBlock host;
};
#endif

}  // namespace

Napi::Value Forward(const Napi::CallbackInfo& info) { return QueueAttention(info, "forward", parse_forward); }

Napi::Value Poll(const Napi::CallbackInfo& info) {
  const bool more = info.Length() > 0 && info[0].ToBoolean().Value();
  return Napi::Number::New(info.Env(), static_cast<double>(EnvState::of(info.Env())->poll(more)));
}

Napi::Value Backward(const Napi::CallbackInfo& info) { return QueueAttention(info, "backward", parse_backward); }

Napi::Value ForwardFlat(const Napi::CallbackInfo& info) {
  return queue_attention(info, "forward", [&] { return parse_forward_flat(info); });
}

Napi::Promise QueueCopy(Napi::Env env, const char* op, std::shared_ptr<DeviceAllocation> alloc, Napi::Value array,
                        void* host, size_t bytes, bool to_device) {
#if FLASHATTN_WITH_CUDA
  EnvState::free_orphans();
  EnvState* state = EnvState::of(env);
  auto call = std::make_unique<CopyCall>();
  call->op = op;
  call->shared = state->shared();
  call->to_device = to_device;
  call->bytes = bytes;
  call->alloc = std::move(alloc);
  call->core = default_stream(call->alloc->device);
  call->gpu_stream = call->core->cuda_stream();
  state->used_stream(call->core);
  call->host = HostBlock::pinned(bytes);
  if (to_device) {
    if (bytes > 0) std::memcpy(call->host.data(), host, bytes);
    cuda::copy_to_device(call->alloc->device, call->alloc->ptr, call->host.data(), bytes, call->gpu_stream);
  } else {
    napi_ref ref = nullptr;
    if (napi_create_reference(env, array, 1, &ref) != napi_ok) fail(ErrorCode::kInternal, "napi_create_reference failed");
    call->refs.push_back(ref);
    cuda::copy_to_host(call->alloc->device, call->host.data(), call->alloc->ptr, bytes, call->gpu_stream);
  }
  napi_value promise = new_promise(env, call.get());
  CopyCall* raw = call.release();
  raw->on_gpu = true;
  state->begin(raw);
  void* event = nullptr;
  try {
    event = cuda::event_acquire(raw->alloc->device);
    cuda::event_record(raw->alloc->device, event, raw->gpu_stream);
  } catch (...) {
    cuda::event_release(raw->alloc->device, event);
    raw->gpu_failure = "could not record the copy's completion event";
    wait_stream_quietly(raw->gpu_stream);
    state->finish(raw);
    return Napi::Promise(env, promise);
  }
  watch(raw, raw->alloc->device, event, raw->core.get());
  return Napi::Promise(env, promise);
#else
  (void)op, (void)alloc, (void)array, (void)host, (void)bytes, (void)to_device;
  fail(ErrorCode::kNoDevice, kBuiltWithoutCuda);
#endif
}

}  // namespace flashattn::native
