// tensor.cpp — reading and checking one tensor argument.
#include "request/tensor.h"

#include <climits>
#include <cstdint>

#include "errors.h"
#include "fields.h"

namespace flashattn::native {

namespace {

// The host typed array each dtype travels in (binding.ts NativeHostArray).
struct HostArrayKind {
  napi_typedarray_type type;
  const char* name;
};

HostArrayKind host_array_for(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return {napi_float32_array, "Float32Array"};
    case DType::kFloat16: return {napi_uint16_array, "Uint16Array"};
    case DType::kBFloat16: return {napi_uint16_array, "Uint16Array"};
    case DType::kFloat8E4M3: return {napi_uint8_array, "Uint8Array"};
  }
  fail(ErrorCode::kInternal, "unknown dtype " + std::to_string(static_cast<int>(dtype)));
}

}  // namespace

DType read_dtype(Napi::Value value, const std::string& path) {
  static_assert(static_cast<int>(DType::kFloat32) == 0 && static_cast<int>(DType::kFloat16) == 1 &&
                    static_cast<int>(DType::kBFloat16) == 2 && static_cast<int>(DType::kFloat8E4M3) == 3,
                "read_dtype's list follows the DType order");
  return static_cast<DType>(
      read_choice(value, path, {"float32", "float16", "bfloat16", "float8_e4m3"}, ErrorCode::kDType));
}

std::string shape_text(const TensorArg& t) {
  std::string s = "[";
  for (int i = 0; i < t.rank; ++i) s += (i ? ", " : "") + std::to_string(t.shape[i]);
  return s + "]";
}

HostView host_view(const Napi::TypedArray& array) {
  HostView v;
  napi_value arraybuffer = nullptr;
  size_t byte_offset = 0;
  // `data` already points past byteOffset, at the first element.
  const napi_status status = napi_get_typedarray_info(array.Env(), array, &v.type, &v.length, &v.data, &arraybuffer,
                                                      &byte_offset);
  if (status != napi_ok) fail(ErrorCode::kInternal, "napi_get_typedarray_info failed");
  v.byte_length = array.ByteLength();
  return v;
}

TensorArg read_tensor(const Napi::Object& req, const char* name, int rank, const char* shape_legend) {
  TensorArg t;
  t.name = name;
  t.rank = rank;
  const std::string n(name);
  const Napi::Object obj = as_object(field(req, name), n);

  t.dtype = read_dtype(field(obj, "dtype"), n + ".dtype");

  const Napi::Value shape = field(obj, "shape");
  if (!shape.IsArray() || shape.As<Napi::Array>().Length() != static_cast<uint32_t>(rank)) {
    fail(ErrorCode::kShape, n + ".shape must be an array of " + std::to_string(rank) + " positive integers " +
                                shape_legend + ", but got " + describe(shape));
  }
  const Napi::Array dims = shape.As<Napi::Array>();
  for (int i = 0; i < rank; ++i) {
    t.shape[i] = read_integer(dims.Get(static_cast<uint32_t>(i)), n + ".shape[" + std::to_string(i) + "]", 1, INT_MAX,
                              "a positive integer (at most 2^31-1)", ErrorCode::kShape);
  }
  int64_t elements = 1;
  for (int i = 0; i < rank; ++i) {
    if (elements > kMaxSafeInteger / t.shape[i]) {
      fail(ErrorCode::kShape, n + ".shape " + shape_text(t) + " has more than 2^53 elements");
    }
    elements *= t.shape[i];
  }
  t.bytes = static_cast<size_t>(elements) * static_cast<size_t>(dtype_size(t.dtype));

  const Napi::Value data = field(obj, "data");
  if (DeviceBuffer* buffer = DeviceBuffer::FromValue(data)) {
    t.kind = "DeviceBuffer";
    t.device = buffer->Acquire(n + ".data (a DeviceBuffer)");
    if (buffer->bytes() < t.bytes) {
      fail(ErrorCode::kShape, n + ".data is a DeviceBuffer of " + std::to_string(buffer->bytes()) + " bytes, but " + n +
                                  ".shape " + shape_text(t) + " of " + dtype_name(t.dtype) + " needs " +
                                  std::to_string(t.bytes) + " bytes");
    }
    return t;
  }

  const HostArrayKind want = host_array_for(t.dtype);
  if (!data.IsTypedArray() || data.As<Napi::TypedArray>().TypedArrayType() != want.type) {
    fail(ErrorCode::kDType, n + ".data must be a " + want.name + " for dtype '" + dtype_name(t.dtype) + "'" +
                                (want.type == napi_uint16_array ? " (the bits of each value)" : "") + ", but got " +
                                describe(data));
  }
  const HostView view = host_view(data.As<Napi::TypedArray>());
  if (view.length != static_cast<size_t>(elements)) {
    fail(ErrorCode::kShape, n + ".data has " + std::to_string(view.length) + " elements, but " + n + ".shape " +
                                shape_text(t) + " needs " + std::to_string(elements));
  }
  t.kind = want.name;
  t.host = view.data;
  t.value = data;
  return t;
}

void check_no_overlap(const std::vector<const TensorArg*>& outputs, const std::vector<const TensorArg*>& inputs) {
  auto overlaps = [](const TensorArg& a, const TensorArg& b) {
    const auto a0 = reinterpret_cast<uintptr_t>(a.data()), b0 = reinterpret_cast<uintptr_t>(b.data());
    return a0 < b0 + b.bytes && b0 < a0 + a.bytes;
  };
  for (size_t i = 0; i < outputs.size(); ++i) {
    const TensorArg& out = *outputs[i];
    if (out.absent) continue;
    for (const TensorArg* in : inputs) {
      if (overlaps(out, *in)) {
        fail(ErrorCode::kArg, out.name + ".data shares memory with input " + in->name +
                                  ".data; outputs must not overlap inputs or other outputs");
      }
    }
    for (size_t j = 0; j < i; ++j) {
      if (outputs[j]->absent) continue;
      if (overlaps(out, *outputs[j])) {
        fail(ErrorCode::kArg, out.name + ".data shares memory with output " + outputs[j]->name +
                                  ".data; outputs must not overlap inputs or other outputs");
      }
    }
  }
}

}  // namespace flashattn::native
