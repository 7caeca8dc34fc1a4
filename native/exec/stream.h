// stream.h — Stream: an ordered queue of calls on one device (a CUDA stream underneath), and the
// default per-device stream pool for calls that name none.
//
//   new Stream(device)   device index (recorded in the CPU-only build too: CPU calls on one Stream
//                        also complete in issue order)
//   .device .disposed    read-only
//   .dispose()           idempotent; work already enqueued still runs and settles
//
// CUDA calls on one Stream are enqueued on its cudaStream_t in issue order, with no host wait
// between them; calls on different Streams may overlap. CPU calls on one Stream run one at a time
// in issue order (the next starts when the previous completes).
#pragma once

#include <napi.h>

#include <deque>
#include <memory>
#include <mutex>
#include <string>

#include "exec/env_state.h"

namespace flashattn::native {

class CpuTask;

// FLASHATTN_TRACE=gpu: a GPU timing event recorded on a stream, given back to its pool when the
// last holder lets go. CUDA build only.
struct TimingMark {
  TimingMark(int device, void* cuda_stream);
  ~TimingMark();
  TimingMark(const TimingMark&) = delete;
  TimingMark& operator=(const TimingMark&) = delete;
  // GPU µs from `from` to this mark (both completed), 0 when unknown.
  double since(const TimingMark* from) const noexcept;

  const int device;
  void* event = nullptr;
};

struct StreamCore {
  explicit StreamCore(int device_) : device(device_) {}
  ~StreamCore();
  StreamCore(const StreamCore&) = delete;
  StreamCore& operator=(const StreamCore&) = delete;

  // The CUDA stream, created on first use (throws cuda::Error). CUDA build only.
  void* cuda_stream();
  // The CUDA stream if it exists, else nullptr.
  void* cuda_if_created();

  const int device;
  bool owned = true;  // false for the never-destroyed default streams

  // CPU ordering; touched only on the owning environment's JS thread.
  bool cpu_busy = false;
  std::deque<CpuTask*> cpu_pending;
  // FLASHATTN_TRACE=gpu: the end of the last traced call's kernel on this stream (JS thread only).
  std::shared_ptr<TimingMark> last_mark;

 private:
  std::mutex mu_;
  void* cuda_ = nullptr;
};

// One of the device's default streams (round robin over a few, so unrelated calls overlap).
std::shared_ptr<StreamCore> default_stream(int device);

// cudaStreamSynchronize, errors ignored (teardown only). No-op in the CPU-only build.
void wait_stream_quietly(void* cuda_stream) noexcept;

// A CPU call: execute() runs on a libuv pool thread; settle() on the JS thread.
class CpuTask : public Work {
 public:
  // Pool thread. Must not throw: store the failure and report it from settle().
  virtual void execute() noexcept = 0;

  std::shared_ptr<StreamCore> stream;  // set: ordered behind the stream's previous CPU call
  napi_async_work async = nullptr;
  EnvState* state = nullptr;
};

// Starts `task` now, or after the stream's previous CPU task. Takes ownership (throws before
// taking it only when the async work cannot be created).
void queue_cpu(napi_env env, CpuTask* task);

class Stream : public Napi::ObjectWrap<Stream> {
 public:
  static Napi::Function Define(Napi::Env env);
  // The Stream behind a JS value (by type tag), or nullptr when it is not one.
  static Stream* FromValue(Napi::Value value);

  explicit Stream(const Napi::CallbackInfo& info);

  // The stream for a call; E_DISPOSED after dispose(). `what` names it in that message.
  std::shared_ptr<StreamCore> Acquire(const std::string& what) const;

 private:
  Napi::Value GetDevice(const Napi::CallbackInfo& info);
  Napi::Value GetDisposed(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);

  int device_ = 0;
  std::shared_ptr<StreamCore> core_;
};

}  // namespace flashattn::native
