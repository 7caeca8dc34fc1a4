// stream.cpp — see stream.h.
#include "exec/stream.h"

#include <atomic>
#include <climits>
#include <vector>

#include "errors.h"
#include "fields.h"

#if FLASHATTN_WITH_CUDA
#include "api.h"
#endif

namespace flashattn::native {

namespace {

constexpr napi_type_tag kStreamTag = {0x3e81c5d0a7f24b69ULL, 0x9d06b2f4c1e8a357ULL};

// Default streams per device: enough for unrelated calls to overlap.
constexpr int kDefaultStreams = 4;

void start_cpu(napi_env env, CpuTask* task);

void cpu_execute(napi_env /*env*/, void* data) { static_cast<CpuTask*>(data)->execute(); }

void cpu_complete(napi_env env, napi_status status, void* data) {
  auto* task = static_cast<CpuTask*>(data);
  const napi_async_work async = task->async;
  std::shared_ptr<StreamCore> stream = task->stream;
  EnvState* state = task->state;
  bool alive = false;
  {
    std::lock_guard<std::mutex> lock(state->shared()->mu);
    alive = state->shared()->alive;
  }
  if (alive && status == napi_ok) {
    state->finish(task);
  } else {
    EnvState::discard(task);
  }
  (void)napi_delete_async_work(env, async);
  if (!stream) return;
  stream->cpu_busy = false;
  while (!stream->cpu_pending.empty()) {
    CpuTask* next = stream->cpu_pending.front();
    stream->cpu_pending.pop_front();
    if (alive) {
      start_cpu(env, next);
      return;
    }
    EnvState::discard(next);
  }
}

void start_cpu(napi_env env, CpuTask* task) {
  if (task->stream) task->stream->cpu_busy = true;
  if (napi_queue_async_work(env, task->async) != napi_ok) {
    // Cannot run it: settle it as failed now, and let the stream move on.
    Failure f{ErrorCode::kInternal, task->op + ": napi_queue_async_work failed"};
    reject(env, task->deferred, f);
    cpu_complete(env, napi_cancelled, task);
  }
}

}  // namespace

#if FLASHATTN_WITH_CUDA
TimingMark::TimingMark(int device_, void* cuda_stream) : device(device_) {
  event = cuda::timing_event_record(device, cuda_stream);
}

TimingMark::~TimingMark() { cuda::timing_event_release(device, event); }

double TimingMark::since(const TimingMark* from) const noexcept {
  return from ? cuda::timing_elapsed_us(from->event, event) : 0;
}
#endif

StreamCore::~StreamCore() {
#if FLASHATTN_WITH_CUDA
  // cudaStreamDestroy returns at once; work still on the stream completes first.
  if (owned && cuda_ != nullptr) cuda::stream_destroy(cuda_);
#endif
}

void* StreamCore::cuda_stream() {
  std::lock_guard<std::mutex> lock(mu_);
#if FLASHATTN_WITH_CUDA
  if (cuda_ == nullptr) cuda_ = cuda::stream_create(device);
#else
  fail(ErrorCode::kNoDevice, kBuiltWithoutCuda);
#endif
  return cuda_;
}

void* StreamCore::cuda_if_created() {
  std::lock_guard<std::mutex> lock(mu_);
  return cuda_;
}

std::shared_ptr<StreamCore> default_stream(int device) {
  struct Pool {
    std::mutex mu;
    std::vector<std::vector<std::shared_ptr<StreamCore>>> per_device;
    std::atomic<unsigned> next{0};
  };
  static auto* pool = new Pool();  // never destroyed, like the streams in it
  const unsigned slot = pool->next.fetch_add(1, std::memory_order_relaxed) % kDefaultStreams;
  std::lock_guard<std::mutex> lock(pool->mu);
  if (device >= static_cast<int>(pool->per_device.size())) pool->per_device.resize(device + 1);
  auto& streams = pool->per_device[device];
  if (streams.empty()) {
    for (int i = 0; i < kDefaultStreams; ++i) {
      streams.push_back(std::make_shared<StreamCore>(device));
      streams.back()->owned = false;
    }
  }
  return streams[slot];
}

void wait_stream_quietly(void* cuda_stream) noexcept {
#if FLASHATTN_WITH_CUDA
  if (cuda_stream == nullptr) return;
  try {
    cuda::stream_synchronize(cuda_stream);
  } catch (...) {
  }
#else
  (void)cuda_stream;
#endif
}

void queue_cpu(napi_env env, CpuTask* task) {
  napi_value name;
  napi_status s = napi_create_string_utf8(env, task->op.c_str(), task->op.size(), &name);
  if (s == napi_ok) s = napi_create_async_work(env, nullptr, name, cpu_execute, cpu_complete, task, &task->async);
  if (s != napi_ok) fail(ErrorCode::kInternal, "napi_create_async_work failed");  // the caller still owns task
  task->state->begin(task);
  if (task->stream && task->stream->cpu_busy) {
    task->stream->cpu_pending.push_back(task);
    return;
  }
  start_cpu(env, task);
}

// ---- the JS class ------------------------------------------------------------------------------

Napi::Function Stream::Define(Napi::Env env) {
  return DefineClass(env, "Stream",
                     {
                         InstanceAccessor<&Stream::GetDevice>("device"),
                         InstanceAccessor<&Stream::GetDisposed>("disposed"),
                         InstanceMethod<&Stream::Dispose>("dispose"),
                     });
}

Stream* Stream::FromValue(Napi::Value value) {
  if (!value.IsObject()) return nullptr;
  const Napi::Object obj = value.As<Napi::Object>();
  if (!obj.CheckTypeTag(&kStreamTag)) return nullptr;
  return Unwrap(obj);
}

Stream::Stream(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Stream>(info) {
  Napi::Env env = info.Env();
  try {
    device_ = static_cast<int>(
        read_integer(info[0], "device", 0, INT_MAX, "a non-negative integer (a CUDA device index)"));
    info.This().As<Napi::Object>().TypeTag(&kStreamTag);
    core_ = std::make_shared<StreamCore>(device_);
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    throw make_js_error(env, current_failure("new Stream"));
  }
}

std::shared_ptr<StreamCore> Stream::Acquire(const std::string& what) const {
  if (!core_) fail(ErrorCode::kDisposed, what + " has been disposed");
  return core_;
}

Napi::Value Stream::GetDevice(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), device_); }

Napi::Value Stream::GetDisposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !core_); }

Napi::Value Stream::Dispose(const Napi::CallbackInfo& info) {
  core_.reset();  // in-flight work holds its own reference
  return info.Env().Undefined();
}

}  // namespace flashattn::native
