// call_support.cpp — see call_support.h.
#include "exec/call_support.h"

#include <cstdlib>
#include <cstring>
#include <new>

#include "errors.h"

namespace flashattn::native {

namespace {

napi_typedarray_type array_type(DType t) {
  switch (t) {
    case DType::kFloat32: return napi_float32_array;
    case DType::kFloat16:
    case DType::kBFloat16: return napi_uint16_array;
    case DType::kFloat8E4M3: return napi_uint8_array;
    case DType::kInt32: return napi_int32_array;
  }
  return napi_uint8_array;
}

}  // namespace

void* live_array_data(napi_env env, napi_ref ref, size_t bytes) {
  napi_value value = nullptr;
  if (napi_get_reference_value(env, ref, &value) != napi_ok || value == nullptr) return nullptr;
  napi_typedarray_type type;
  size_t length = 0, offset = 0;
  void* data = nullptr;
  napi_value ab = nullptr;
  if (napi_get_typedarray_info(env, value, &type, &length, &data, &ab, &offset) != napi_ok) return nullptr;
  bool detached = false;
  if (napi_is_detached_arraybuffer(env, ab, &detached) != napi_ok || detached) return nullptr;
  if (length * element_bytes(type) != bytes || (bytes > 0 && data == nullptr)) return nullptr;
  return data;
}

napi_value new_host_array(napi_env env, HostBlock& block, DType dtype) {
  const size_t bytes = block.size();
  napi_value ab = nullptr;
  bool made = false;
  if (!block.is_pinned() && bytes > 0) {
    void* p = block.data();
    if (napi_create_external_arraybuffer(env, p, bytes, [](napi_env, void* data, void*) { std::free(data); }, nullptr,
                                         &ab) == napi_ok) {
      block.release_plain();
      made = true;
    }
  }
  if (!made) {
    void* dst = nullptr;
    if (napi_create_arraybuffer(env, bytes, &dst, &ab) != napi_ok) throw std::bad_alloc();
    if (bytes > 0) std::memcpy(dst, block.data(), bytes);
  }
  napi_value array = nullptr;
  if (napi_create_typedarray(env, array_type(dtype), bytes / static_cast<size_t>(dtype_size(dtype)), ab, 0, &array) !=
      napi_ok) {
    fail(ErrorCode::kInternal, "napi_create_typedarray failed");
  }
  return array;
}

void copy_in(Bound& b, HostBlock block) {
  b.host = std::move(block);
  if (b.arg->bytes > 0) gather(*b.arg, b.arg->host, b.host.data());
}

void keep_output(napi_env env, Work* work, Bound& b) {
  if (b.arg->absent || b.arg->on_device()) return;
  napi_ref ref = nullptr;
  if (napi_create_reference(env, b.arg->value, 1, &ref) != napi_ok) fail(ErrorCode::kInternal, "napi_create_reference failed");
  work->refs.push_back(ref);
  b.ref = static_cast<int>(work->refs.size()) - 1;
}

void* bound_ptr(std::initializer_list<std::vector<Bound>*> groups, const TensorArg& t) {
  for (std::vector<Bound>* group : groups) {
    for (Bound& b : *group) {
      if (b.arg == &t) return b.ptr;
    }
  }
  return nullptr;
}

void complete_owned(std::initializer_list<std::vector<Bound>*> groups) {
  for (std::vector<Bound>* group : groups) {
    for (Bound& b : *group) {
      if (b.dev && (b.arg->absent || !b.arg->on_device())) b.dev->complete();
    }
  }
}

bool reject_if_failed(napi_env env, Work* work, bool failed, const Failure& failure) {
  if (failed) {
    reject(env, work->deferred, failure);
    return true;
  }
  if (!work->gpu_failure.empty()) {
    reject(env, work->deferred, Failure{ErrorCode::kCuda, work->op + ": " + work->gpu_failure});
    return true;
  }
  return false;
}

#if FLASHATTN_WITH_CUDA
void bind_device(Bound& b, int device, void* stream) {
  if (!b.arg->absent && b.arg->on_device()) {
    b.dev = b.arg->device;
    b.ptr = b.arg->data();
  } else {
    b.dev = std::make_shared<DeviceAllocation>(device, b.arg->bytes, stream);
    b.ptr = b.dev->ptr;
  }
}
#endif

void bind_cpu_outputs(napi_env env, Work* work, std::vector<Bound>& outputs, bool poison) {
  for (Bound& b : outputs) {
    b.host = HostBlock::plain(b.arg->bytes);
    b.ptr = b.host.data();
    if (poison) std::memset(b.ptr, 0xff, b.arg->bytes);
    keep_output(env, work, b);
  }
}

}  // namespace flashattn::native
