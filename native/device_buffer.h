// device_buffer.h — DeviceBuffer: one cudaMalloc'd allocation on one device, owned by a JS object.
//
//   new DeviceBuffer(device, bytes)   allocates (sync); throws E_ARG / E_NO_DEVICE / E_OOM / E_CUDA
//   .device .bytes .disposed          read-only
//   .dispose()                        idempotent; the finalizer runs the same release
//   .upload(src) .download(dst)       async copies (AsyncWorker); resolve when the copy is done
//
// The memory itself lives in a DeviceAllocation held by shared_ptr. The buffer holds one
// reference until it is disposed; every async op that uses the memory holds another (and a Ref
// on the JS object). So dispose() during a copy or a kernel makes the buffer unusable at once
// (E_DISPOSED for new work) but frees the memory only when the last op using it has finished.
// Its size (capped at 4 MiB) is reported to V8 with AdjustExternalMemory once the device's live
// DeviceBuffers hold an eighth of its memory, and taken back on release (device_buffer.cpp says why).
#pragma once

#include <napi.h>

#include <cstddef>
#include <memory>
#include <string>

#include "fields.h"

namespace flashattn::native {

// One device allocation; frees itself when the last owner lets go. (Nothing to free in the
// CPU-only build, where no DeviceBuffer can be constructed.)
struct DeviceAllocation {
  DeviceAllocation(int device, size_t bytes);  // throws (cuda::Error) when the allocation fails
  // Stream-ordered on `stream` (no host wait): usable by work enqueued on that stream from now on,
  // by other streams once that work has completed. Until complete() it is freed on `stream`.
  DeviceAllocation(int device, size_t bytes, void* stream);
  ~DeviceAllocation();
  // The work that first used the memory has completed: free it like any other allocation.
  void complete() { free_stream = nullptr; }
  DeviceAllocation(const DeviceAllocation&) = delete;
  DeviceAllocation& operator=(const DeviceAllocation&) = delete;

  int device;
  size_t bytes;
  void* ptr;
  void* free_stream = nullptr;  // the stream to free on, while the allocating stream may still run
};

class DeviceBuffer : public Napi::ObjectWrap<DeviceBuffer> {
 public:
  static Napi::Function Define(Napi::Env env);

  // The DeviceBuffer behind a JS value, or nullptr when the value is not one (checked by type
  // tag, so a plain object that merely looks like one is never unwrapped).
  static DeviceBuffer* FromValue(Napi::Value value);

  // A new JS DeviceBuffer that owns `alloc` (JS thread; reports its size to V8).
  static napi_value Adopt(napi_env env, std::shared_ptr<DeviceAllocation> alloc);

  explicit DeviceBuffer(const Napi::CallbackInfo& info);
  ~DeviceBuffer() override;

  // The allocation, for a request that uses this buffer; E_DISPOSED after dispose(). `what`
  // names the buffer in that message, e.g. "q.data (a DeviceBuffer)".
  std::shared_ptr<DeviceAllocation> Acquire(const FieldPath& what) const;

  int device() const { return device_; }
  size_t bytes() const { return bytes_; }
  bool disposed() const { return disposed_; }

 private:
  Napi::Value GetDevice(const Napi::CallbackInfo& info);
  Napi::Value GetBytes(const Napi::CallbackInfo& info);
  Napi::Value GetDisposed(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value Upload(const Napi::CallbackInfo& info);
  Napi::Value Download(const Napi::CallbackInfo& info);
  Napi::Value Copy(const Napi::CallbackInfo& info, bool to_device);

  // The one release path, used by dispose() and by the destructor (the GC finalizer).
  void Release(napi_env env) noexcept;

  int device_ = 0;
  size_t bytes_ = 0;
  bool disposed_ = true;  // until the allocation has succeeded
  int64_t reported_ = 0;  // external memory reported to V8 for this buffer (device_buffer.cpp)
  std::shared_ptr<DeviceAllocation> alloc_;
};

}  // namespace flashattn::native
