// kv_call.cpp — the KV-cache call kind: validate, take what the call needs, run or enqueue, and
// settle on the JS thread (native/exec/env_state.h). The pieces every call kind shares come from
// native/exec/call_support.h.
#include <napi.h>

#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "cpu/cpu_backend.h"
#include "cpu/kvcache.h"
#include "errors.h"
#include "exec/call_support.h"
#include "exec/completion.h"
#include "exec/env_state.h"
#include "exec/host_memory.h"
#include "exec/stream.h"
#include "kvcache/kv_request.h"
#include "kvcache/kvcache.h"

#if FLASHATTN_WITH_CUDA
#include "api.h"
#include "cuda_devices.h"
#include "decode/api.h"
#endif

namespace flashattn::native {

namespace {

constexpr const char* kOp = "kvcache";

class KvCacheCall final : public CpuTask {
 public:
  explicit KvCacheCall(KvCacheJob j) : job(std::move(j)) {}

  void execute() noexcept override {
    try {
      decode::DecodeParams p = job.params;
      bind(p);
      const int threads = job.threads > 0 ? job.threads : cpu::default_threads();
      try {
        cpu::kvcache_forward(p, threads);
      } catch (const std::bad_alloc&) {
        throw;
      } catch (const std::invalid_argument& e) {
        fail(ErrorCode::kUnsupported, std::string("cpu backend: ") + e.what());
      } catch (const AddonError&) {
        throw;
      } catch (const std::exception& e) {
        fail(ErrorCode::kInternal, std::string("cpu backend failed: ") + e.what());
      }
    } catch (...) {
      failure = current_failure(op);
      failed = true;
    }
    t_done_ns = now_ns();
  }

  void settle(napi_env env) override {
    complete_owned({&inputs, &caches, &outputs});
    if (workspace) workspace->complete();
    if (reject_if_failed(env, this, failed, failure)) return;
    // Every caller array this call writes must still be there before any of them is written.
    std::vector<void*> dst(refs.size(), nullptr);
    for (std::vector<Bound>* group : {&caches, &outputs}) {
      for (Bound& b : *group) {
        if (b.ref < 0) continue;
        dst[static_cast<size_t>(b.ref)] = live_array_data(env, refs[static_cast<size_t>(b.ref)], b.arg->array_bytes);
        if (dst[static_cast<size_t>(b.ref)] == nullptr) {
          reject(env, deferred,
                 Failure{ErrorCode::kArg, op + ": " + b.arg->name +
                                              ".data was detached, transferred or resized while the call ran; nothing "
                                              "was written (keep the arrays alive and unchanged until the promise settles)"});
          return;
        }
      }
    }
    for (Bound& b : caches) {
      if (b.ref >= 0) write_appended(b, dst[static_cast<size_t>(b.ref)]);
    }
    napi_value result = nullptr;
    if (napi_create_object(env, &result) != napi_ok) fail(ErrorCode::kInternal, "napi_create_object failed");
    for (Bound& b : outputs) {
      const TensorArg& t = *b.arg;
      napi_value value = nullptr;
      if (t.absent && b.dev) {
        value = DeviceBuffer::Adopt(env, b.dev);
      } else if (t.absent) {
        value = new_host_array(env, b.host, t.dtype);
      } else if (b.ref >= 0) {
        scatter(t, b.host.data(), dst[static_cast<size_t>(b.ref)]);
        (void)napi_get_reference_value(env, refs[static_cast<size_t>(b.ref)], &value);
      }
      if (value == nullptr) (void)napi_get_undefined(env, &value);
      (void)napi_set_named_property(env, result, t.name.c_str(), value);
    }
    (void)napi_resolve_deferred(env, deferred, result);
  }

  // Points the params at the bound tensors.
  void bind(decode::DecodeParams& p) {
    auto at = [this](const TensorArg& t) { return bound_ptr({&inputs, &caches, &outputs}, t); };
    p.q = at(job.q);
    p.k_cache = at(job.k_cache);
    p.v_cache = at(job.v_cache);
    p.k_new = at(job.k_new);
    p.v_new = at(job.v_new);
    p.out = at(job.out);
    p.lse = static_cast<float*>(at(job.lse));
    p.cache_seqlens = static_cast<const int32_t*>(at(job.cache_seqlens));
    p.block_table = static_cast<const int32_t*>(at(job.block_table));
    p.cache_batch_idx = static_cast<const int32_t*>(at(job.cache_batch_idx));
    p.rotary_cos = at(job.rotary_cos);
    p.rotary_sin = at(job.rotary_sin);
  }

  KvCacheJob job;
  Failure failure;
  bool failed = false;
  // Declared before the tensors so that it is destroyed after them (their stream-ordered frees).
  std::shared_ptr<StreamCore> gpu_core;
  void* gpu_stream = nullptr;
  std::vector<Bound> inputs, caches, outputs;
  std::shared_ptr<DeviceAllocation> workspace;  // the split-KV partial results (CUDA, splits > 1)

 private:
  // Copies the positions this call appended from the call's dense copy of a cache into the
  // caller's (possibly strided) array.
  void write_appended(const Bound& b, void* dst) const {
    const TensorArg& t = *b.arg;
    const size_t es = static_cast<size_t>(dtype_size(t.dtype));
    const size_t row = static_cast<size_t>(t.shape[3]) * es;
    const char* src = static_cast<const char*>(b.host.data());
    for (const KvCacheJob::Slot& s : job.appended) {
      for (int64_t hk = 0; hk < t.shape[2]; ++hk) {
        const int64_t dense = ((s.outer * t.shape[1] + s.inner) * t.shape[2] + hk) * t.shape[3];
        const int64_t strided = s.outer * t.strides[0] + s.inner * t.strides[1] + hk * t.strides[2];
        std::memcpy(static_cast<char*>(dst) + static_cast<size_t>(strided) * es, src + static_cast<size_t>(dense) * es, row);
      }
    }
  }
};

void start_cpu_call(napi_env env, EnvState* state, KvCacheCall* call) {
  for (std::vector<Bound>* group : {&call->inputs, &call->caches}) {
    for (Bound& b : *group) {
      copy_in(b, HostBlock::plain(b.arg->bytes));
      b.ptr = b.host.data();
    }
  }
  // An appending call writes its new positions back into the caller's cache arrays at settle.
  if (call->job.appends()) {
    for (Bound& b : call->caches) keep_output(env, call, b);
  }
  queue_cpu_call(env, state, call);
}

#if FLASHATTN_WITH_CUDA

// Enqueues the whole call on the split-KV decode kernels: the DeviceBuffers are read and the caches
// appended to in place. Throws before anything is enqueued, or sets *enqueued_any.
void enqueue_cuda(napi_env env, KvCacheCall* call, bool* enqueued_any) {
  KvCacheJob& job = call->job;
  const int device = job.device;
  const cuda::DeviceInfo& info = device_info(device);  // E_NO_DEVICE
  void* stream = take_stream(env, call, job.stream, device);
  // Every given tensor is a DeviceBuffer here (check_placement); absent outputs are allocated.
  for (std::vector<Bound>* group : {&call->inputs, &call->caches, &call->outputs}) {
    for (Bound& b : *group) bind_device(b, device, stream);
  }
  decode::DecodeParams p = job.params;
  call->bind(p);
  if (const char* why = decode::decode_unsupported(p)) {
    fail(ErrorCode::kUnsupported, "no CUDA decode kernel serves this request on " + device_label(info) + ": " + why);
  }
  p.num_splits = decode::decode_num_splits(p, info.sm_count);
  p.workspace_bytes = decode::decode_workspace_bytes(p, info.sm_count);
  if (p.workspace_bytes > 0) call->workspace = std::make_shared<DeviceAllocation>(device, p.workspace_bytes, stream);
  for (Bound& b : call->outputs) {
    if (job.poison) {
      *enqueued_any = true;
      cuda::fill_bytes(device, b.ptr, 0xff, b.arg->bytes, stream);
    }
  }
  *enqueued_any = true;
  decode::decode_forward_on(device, p, call->workspace ? call->workspace->ptr : nullptr, static_cast<cudaStream_t>(stream));
}

void start_cuda_call(napi_env env, EnvState* state, KvCacheCall* call) {
  start_on_stream(state, call, [&](bool* enqueued_any) { enqueue_cuda(env, call, enqueued_any); });
}

#else

void start_cuda_call(napi_env, EnvState*, KvCacheCall*) { fail(ErrorCode::kNoDevice, kBuiltWithoutCuda); }

#endif  // FLASHATTN_WITH_CUDA

}  // namespace

Napi::Value KvCache(const Napi::CallbackInfo& info) {
  return queue_call(
      info, kOp,
      [&] {
        auto* call = new KvCacheCall(parse_kvcache(info[0]));
        auto bind_all = [](std::vector<Bound>& group, const std::vector<TensorArg*>& args) {
          for (TensorArg* t : args) {
            group.emplace_back();
            group.back().arg = t;
          }
        };
        bind_all(call->inputs, call->job.inputs());
        bind_all(call->caches, call->job.caches());
        bind_all(call->outputs, call->job.outputs());
        return call;
      },
      [](napi_env env, EnvState* state, KvCacheCall* call) {
        if (call->job.backend == Backend::kCpu) {
          start_cpu_call(env, state, call);
        } else {
          start_cuda_call(env, state, call);
        }
      });
}

}  // namespace flashattn::native
