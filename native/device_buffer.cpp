// device_buffer.cpp — DeviceBuffer, the JS owner of one device allocation.
#include "device_buffer.h"

#include <atomic>

#include <climits>

#include "errors.h"
#include "exec/env_state.h"
#include "fields.h"
#include "request/tensor.h"
#include "workers.h"

#if FLASHATTN_WITH_CUDA
#include "api.h"
#include "cuda_devices.h"
#endif

namespace flashattn::native {

namespace {

// Marks the JS objects this class made, so FromValue() never unwraps anything else.
constexpr napi_type_tag kDeviceBufferTag = {0x6f3c2a91d84b5e17ULL, 0xa25e9c0b7d31f468ULL};
// Marks the external that carries an allocation into the constructor (Adopt), so nothing else
// passed as a third argument is ever taken for one.
constexpr napi_type_tag kAdoptTag = {0xc41d7e05b9a2f836ULL, 0x57e3a0c9d6b41f28ULL};

using AdoptBox = std::shared_ptr<DeviceAllocation>;

}  // namespace

// What a DeviceBuffer reports to V8 as external memory. The memory is the GPU's, not the host
// heap's: reported in full, every 64 MiB output would push V8 past its external-memory limit and
// force a full host GC on every call. So a buffer reports nothing while the live DeviceBuffers of
// its device hold less than an eighth of the device's memory, and its size capped at 4 MiB beyond
// that: buffers dropped without dispose() then weigh on the GC once they hold GPU memory that
// matters (their finalizers free it), and dispose() always frees at once. The amount reported is
// kept per buffer, so the release takes back exactly that. (Measured: the GC count of
// scripts/latency.ts's in-flight runs did not change with this rule, 214 before and 226-257 after
// in three runs; those GCs come from elsewhere.)
namespace {

constexpr int kTrackedDevices = 64;
std::atomic<int64_t> g_live_bytes[kTrackedDevices];

int64_t report_on_adopt(int device, size_t bytes) {
  constexpr int64_t kCap = int64_t{4} << 20;
  const int64_t n = static_cast<int64_t>(bytes);
  const int64_t capped = n < kCap ? n : kCap;
#if FLASHATTN_WITH_CUDA
  if (device < 0 || device >= kTrackedDevices) return capped;
  const int64_t live = g_live_bytes[device].fetch_add(n, std::memory_order_relaxed) + n;
  static std::atomic<int64_t> threshold[kTrackedDevices] = {};
  int64_t t = threshold[device].load(std::memory_order_relaxed);
  if (t == 0) {
    t = static_cast<int64_t>(device_info(device).total_memory / 8);
    threshold[device].store(t, std::memory_order_relaxed);
  }
  return live > t ? capped : 0;
#else
  (void)device;
  return capped;  // no DeviceBuffer is ever made in the CPU-only build
#endif
}

void forget_live(int device, size_t bytes) noexcept {
  if (device >= 0 && device < kTrackedDevices) {
    g_live_bytes[device].fetch_sub(static_cast<int64_t>(bytes), std::memory_order_relaxed);
  }
}

}  // namespace

// ---- DeviceAllocation ------------------------------------------------------------------------

#if FLASHATTN_WITH_CUDA
DeviceAllocation::DeviceAllocation(int device_, size_t bytes_)
    : device(device_), bytes(bytes_), ptr(cuda::device_alloc(device_, bytes_)) {}
DeviceAllocation::DeviceAllocation(int device_, size_t bytes_, void* stream)
    : device(device_), bytes(bytes_), ptr(cuda::device_alloc_async(device_, bytes_, stream)), free_stream(stream) {}
DeviceAllocation::~DeviceAllocation() {
  if (free_stream != nullptr) {
    cuda::device_free_async(device, ptr, free_stream);  // its stream may still be running
  } else {
    cuda::device_release(device, ptr, bytes);  // nothing uses it: kept for the next call's outputs
  }
}
#else
DeviceAllocation::DeviceAllocation(int device_, size_t bytes_) : device(device_), bytes(bytes_), ptr(nullptr) {
  fail(ErrorCode::kNoDevice, kBuiltWithoutCuda);
}
DeviceAllocation::DeviceAllocation(int device_, size_t bytes_, void*) : device(device_), bytes(bytes_), ptr(nullptr) {
  fail(ErrorCode::kNoDevice, kBuiltWithoutCuda);
}
DeviceAllocation::~DeviceAllocation() = default;
#endif

// ---- DeviceBuffer ----------------------------------------------------------------------------

Napi::Function DeviceBuffer::Define(Napi::Env env) {
  return DefineClass(env, "DeviceBuffer",
                     {
                         InstanceAccessor<&DeviceBuffer::GetDevice>("device"),
                         InstanceAccessor<&DeviceBuffer::GetBytes>("bytes"),
                         InstanceAccessor<&DeviceBuffer::GetDisposed>("disposed"),
                         InstanceMethod<&DeviceBuffer::Dispose>("dispose"),
                         InstanceMethod<&DeviceBuffer::Upload>("upload"),
                         InstanceMethod<&DeviceBuffer::Download>("download"),
                     });
}

DeviceBuffer* DeviceBuffer::FromValue(Napi::Value value) {
  if (!value.IsObject()) return nullptr;
  const Napi::Object obj = value.As<Napi::Object>();
  if (!obj.CheckTypeTag(&kDeviceBufferTag)) return nullptr;
  return Unwrap(obj);
}

napi_value DeviceBuffer::Adopt(napi_env env, std::shared_ptr<DeviceAllocation> alloc) {
  EnvState* state = EnvState::of(env);
  napi_value ctor = nullptr, external = nullptr, result = nullptr;
  if (napi_get_reference_value(env, state->device_buffer_ctor, &ctor) != napi_ok || ctor == nullptr) {
    fail(ErrorCode::kInternal, "the DeviceBuffer class is not available");
  }
  auto* box = new AdoptBox(std::move(alloc));
  if (napi_create_external(
          env, box, [](napi_env, void* data, void*) { delete static_cast<AdoptBox*>(data); }, nullptr, &external) !=
      napi_ok) {
    delete box;
    fail(ErrorCode::kInternal, "napi_create_external failed");
  }
  (void)napi_type_tag_object(env, external, &kAdoptTag);
  napi_value args[3];
  napi_create_int32(env, (*box)->device, &args[0]);
  napi_create_double(env, static_cast<double>((*box)->bytes), &args[1]);
  args[2] = external;
  if (napi_new_instance(env, ctor, 3, args, &result) != napi_ok) {
    fail(ErrorCode::kInternal, "could not construct a DeviceBuffer for an output");
  }
  return result;
}

DeviceBuffer::DeviceBuffer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DeviceBuffer>(info) {
  Napi::Env env = info.Env();
  try {
    if (info.Length() >= 3 && info[2].IsExternal()) {
      bool tagged = false;
      if (napi_check_object_type_tag(env, info[2], &kAdoptTag, &tagged) == napi_ok && tagged) {
        AdoptBox* box = info[2].As<Napi::External<AdoptBox>>().Data();
        if (box != nullptr && *box) {
          info.This().As<Napi::Object>().TypeTag(&kDeviceBufferTag);
          alloc_ = std::move(*box);
          device_ = alloc_->device;
          bytes_ = alloc_->bytes;
          disposed_ = false;
          reported_ = report_on_adopt(device_, bytes_);
          if (reported_ > 0) Napi::MemoryManagement::AdjustExternalMemory(env, reported_);
          return;
        }
      }
    }
#if !FLASHATTN_WITH_CUDA
    fail(ErrorCode::kNoDevice, kBuiltWithoutCuda);
#else
    const int device = static_cast<int>(
        read_integer(info[0], "device", 0, INT_MAX, "a non-negative integer (a CUDA device index)"));
    const int64_t bytes = read_integer(info[1], "bytes", 1, kMaxSafeInteger, "a positive integer (a size in bytes)");
    device_info(device);  // E_NO_DEVICE when there is no such device
    info.This().As<Napi::Object>().TypeTag(&kDeviceBufferTag);
    alloc_ = std::make_shared<DeviceAllocation>(device, static_cast<size_t>(bytes));  // E_OOM / E_CUDA
    device_ = device;
    bytes_ = static_cast<size_t>(bytes);
    disposed_ = false;
    reported_ = report_on_adopt(device_, bytes_);
    if (reported_ > 0) Napi::MemoryManagement::AdjustExternalMemory(env, reported_);
#endif
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    throw make_js_error(env, current_failure("new DeviceBuffer"));
  }
}

DeviceBuffer::~DeviceBuffer() { Release(Env()); }

void DeviceBuffer::Release(napi_env env) noexcept {
  if (disposed_) return;
  disposed_ = true;
  // Frees now, or when the last async op that uses the memory lets go of its reference.
  alloc_.reset();
  forget_live(device_, bytes_);
  int64_t adjusted = 0;
  if (reported_ > 0) napi_adjust_external_memory(env, -reported_, &adjusted);  // status ignored: noexcept
}

std::shared_ptr<DeviceAllocation> DeviceBuffer::Acquire(const FieldPath& what) const {
  if (disposed_ || !alloc_) {
    fail(ErrorCode::kDisposed, what.str() + " has been disposed");
  }
  return alloc_;
}

Napi::Value DeviceBuffer::GetDevice(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), device_); }

Napi::Value DeviceBuffer::GetBytes(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(bytes_));
}

Napi::Value DeviceBuffer::GetDisposed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), disposed_);
}

Napi::Value DeviceBuffer::Dispose(const Napi::CallbackInfo& info) {
  Release(info.Env());
  return info.Env().Undefined();
}

Napi::Value DeviceBuffer::Upload(const Napi::CallbackInfo& info) { return Copy(info, true); }

Napi::Value DeviceBuffer::Download(const Napi::CallbackInfo& info) { return Copy(info, false); }

Napi::Value DeviceBuffer::Copy(const Napi::CallbackInfo& info, bool to_device) {
  const char* op = to_device ? "DeviceBuffer.upload" : "DeviceBuffer.download";
  const std::string arg = to_device ? "src" : "dst";
  Napi::Env env = info.Env();
  try {
    std::shared_ptr<DeviceAllocation> alloc = Acquire("the DeviceBuffer");
    const Napi::Value value = info[0];
    const bool ok_type =
        value.IsTypedArray() && (value.As<Napi::TypedArray>().TypedArrayType() == napi_float32_array ||
                                 value.As<Napi::TypedArray>().TypedArrayType() == napi_uint16_array ||
                                 value.As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array ||
                                 value.As<Napi::TypedArray>().TypedArrayType() == napi_int32_array);
    if (!ok_type) {
      fail(ErrorCode::kDType, arg + " must be a Float32Array, Uint16Array, Uint8Array or Int32Array, but got " + describe(value));
    }
    const HostView view = host_view(value.As<Napi::TypedArray>());
    if (view.byte_length > bytes_) {
      fail(ErrorCode::kShape, arg + " has " + std::to_string(view.byte_length) + " bytes, but the DeviceBuffer holds " +
                                  std::to_string(bytes_) + "; " + arg + ".byteLength must be at most bytes");
    }
    return QueueCopy(env, op, std::move(alloc), value, view.data, view.byte_length, to_device);
  } catch (...) {
    return rejected_with_current(env, op);
  }
}

}  // namespace flashattn::native
