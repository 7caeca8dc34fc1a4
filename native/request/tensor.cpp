// tensor.cpp — reading and checking one tensor argument.
#include "request/tensor.h"

#include <utility>
#include <climits>
#include <cstring>
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
    case DType::kInt32: return {napi_int32_array, "Int32Array"};
  }
  fail(ErrorCode::kInternal, "unknown dtype " + std::to_string(static_cast<int>(dtype)));
}

}  // namespace

DType read_dtype(Napi::Value value, const FieldPath& path) {
  static_assert(static_cast<int>(DType::kFloat32) == 0 && static_cast<int>(DType::kFloat16) == 1 &&
                    static_cast<int>(DType::kBFloat16) == 2 && static_cast<int>(DType::kFloat8E4M3) == 3 &&
                    static_cast<int>(DType::kInt32) == 4,
                "read_dtype's list follows the DType order");
  return static_cast<DType>(
      read_choice(value, path, {"float32", "float16", "bfloat16", "float8_e4m3", "int32"}, ErrorCode::kDType));
}

std::string shape_text(const TensorArg& t) {
  std::string s = "[";
  for (int i = 0; i < t.rank; ++i) s += (i ? ", " : "") + std::to_string(t.shape[i]);
  return s + "]";
}

size_t element_bytes(napi_typedarray_type type) {
  switch (type) {
    case napi_int8_array:
    case napi_uint8_array:
    case napi_uint8_clamped_array: return 1;
    case napi_int16_array:
    case napi_uint16_array: return 2;
    case napi_int32_array:
    case napi_uint32_array:
    case napi_float32_array: return 4;
    case napi_float64_array:
    case napi_bigint64_array:
    case napi_biguint64_array: return 8;
    default: return 0;
  }
}

HostView host_view(const Napi::TypedArray& array) {
  HostView v;
  napi_value arraybuffer = nullptr;
  size_t byte_offset = 0;
  // `data` already points past byteOffset, at the first element.
  const napi_status status = napi_get_typedarray_info(array.Env(), array, &v.type, &v.length, &v.data, &arraybuffer,
                                                      &byte_offset);
  if (status != napi_ok) fail(ErrorCode::kInternal, "napi_get_typedarray_info failed");
  const size_t per = element_bytes(v.type);
  v.byte_length = per != 0 ? v.length * per : array.ByteLength();
  return v;
}

void set_extent(TensorArg& t) {
  int64_t elements = 1;
  for (int i = 0; i < t.rank; ++i) {
    if (elements > kMaxSafeInteger / t.shape[i]) {
      fail(ErrorCode::kShape, t.name + ".shape " + shape_text(t) + " has more than 2^53 elements");
    }
    elements *= t.shape[i];
  }
  t.bytes = static_cast<size_t>(elements) * static_cast<size_t>(dtype_size(t.dtype));
  // Strides: contiguous unless given.
  int64_t step = 1;
  for (int i = t.rank - 1; i >= 0; --i) {
    t.strides[i] = step;
    step *= t.shape[i];
  }
}

void check_strides(TensorArg& t) {
  const int rank = t.rank;
  if (t.strides[rank - 1] != 1) {
    fail(ErrorCode::kUnsupported, t.name + ".strides[" + std::to_string(rank - 1) + "] (the last dim) must be 1: the " +
                                      "kernels read each row of the last dim as one contiguous run; got " +
                                      std::to_string(t.strides[rank - 1]));
  }
}

void set_span(TensorArg& t) {
  int64_t reach = 0;
  for (int i = 0; i < t.rank; ++i) {
    if (t.strides[i] > 0 && (t.shape[i] - 1) > (kMaxSafeInteger - reach) / t.strides[i]) {
      fail(ErrorCode::kShape, t.name + ".strides reach past 2^53 elements");
    }
    reach += (t.shape[i] - 1) * t.strides[i];
  }
  t.span_bytes = static_cast<size_t>(reach + 1) * static_cast<size_t>(dtype_size(t.dtype));
}

void bind_data(TensorArg& t, Napi::Value data, Napi::Value offset) {
  const std::string& n = t.name;
  const char* name = t.name.c_str();
  const size_t elem = static_cast<size_t>(dtype_size(t.dtype));
  const int64_t reach = static_cast<int64_t>(t.span_bytes / elem) - 1;
  const int64_t elements = static_cast<int64_t>(t.bytes / elem);
  // A typed array is never a DeviceBuffer: asking that first spares host calls the type-tag check.
  const bool typed = data.IsTypedArray();
  DeviceBuffer* buffer = typed ? nullptr : DeviceBuffer::FromValue(data);
  if (buffer != nullptr) {
    t.kind = "DeviceBuffer";
    t.device = buffer->Acquire(FieldPath(name, ".data (a DeviceBuffer)"));
    if (!offset.IsUndefined()) {
      t.offset = read_integer(offset, FieldPath(name, ".offset"), 0, kMaxSafeInteger, "a non-negative integer (elements)");
    }
    const size_t need = static_cast<size_t>(t.offset) * elem + t.span_bytes;
    if (buffer->bytes() < need) {
      fail(ErrorCode::kShape, n + ".data is a DeviceBuffer of " + std::to_string(buffer->bytes()) + " bytes, but " +
                                  n + ".shape " + shape_text(t) + " of " + dtype_name(t.dtype) +
                                  (t.offset != 0 || !t.contiguous() ? " at offset " + std::to_string(t.offset) +
                                                                          " with its strides"
                                                                    : std::string()) +
                                  " needs " + std::to_string(need) + " bytes");
    }
    return;
  }
  if (!offset.IsUndefined()) {
    fail(ErrorCode::kArg, n + ".offset applies to DeviceBuffers only; for a typed array, pass a subarray()");
  }

  const HostArrayKind want = host_array_for(t.dtype);
  const HostView view = typed ? host_view(data.As<Napi::TypedArray>()) : HostView{};
  if (!typed || view.type != want.type) {
    fail(ErrorCode::kDType, n + ".data must be a " + want.name + " for dtype '" + dtype_name(t.dtype) + "'" +
                                (want.type == napi_uint16_array ? " (the bits of each value)" : "") + ", but got " +
                                describe(data));
  }
  if (t.contiguous() ? view.length != static_cast<size_t>(elements) : view.length < static_cast<size_t>(reach + 1)) {
    fail(ErrorCode::kShape, n + ".data has " + std::to_string(view.length) + " elements, but " + n + ".shape " +
                                shape_text(t) + (t.contiguous() ? "" : " with its strides") + " needs " +
                                std::to_string(t.contiguous() ? elements : reach + 1));
  }
  t.array_bytes = view.byte_length;
  t.kind = want.name;
  t.host = view.data;
  t.value = data;
}

TensorArg read_tensor(const OwnFields& req, const char* name, int rank, const char* shape_legend) {
  TensorArg t;
  t.name = name;
  t.rank = rank;
  const std::string& n = t.name;  // for messages
  const OwnFields obj(as_object(field(req, name), name));

  t.dtype = read_dtype(field(obj, "dtype"), FieldPath(name, ".dtype"));

  const Napi::Value shape = field(obj, "shape");
  if (!shape.IsArray() || shape.As<Napi::Array>().Length() != static_cast<uint32_t>(rank)) {
    fail(ErrorCode::kShape, n + ".shape must be an array of " + std::to_string(rank) + " positive integers " +
                                shape_legend + ", but got " + describe(shape));
  }
  const Napi::Array dims = shape.As<Napi::Array>();
  for (int i = 0; i < rank; ++i) {
    t.shape[i] = read_integer(dims.Get(static_cast<uint32_t>(i)), FieldPath(name, ".shape", i), 1, INT_MAX,
                              "a positive integer (at most 2^31-1)", ErrorCode::kShape);
  }
  set_extent(t);
  const Napi::Value strides = field(obj, "strides");
  if (!strides.IsUndefined()) {
    if (!strides.IsArray() || strides.As<Napi::Array>().Length() != static_cast<uint32_t>(rank)) {
      fail(ErrorCode::kArg, n + ".strides must be an array of " + std::to_string(rank) +
                                " non-negative element strides, but got " + describe(strides));
    }
    for (int i = 0; i < rank; ++i) {
      t.strides[i] = read_integer(strides.As<Napi::Array>().Get(static_cast<uint32_t>(i)),
                                  FieldPath(name, ".strides", i), 0, kMaxSafeInteger,
                                  "a non-negative integer (elements)");
    }
    check_strides(t);
  }
  set_span(t);
  const Napi::Value offset = field(obj, "offset");
  bind_data(t, field(obj, "data"), offset);
  return t;
}

bool TensorArg::contiguous() const {
  int64_t step = 1;
  for (int i = rank - 1; i >= 0; --i) {
    if (shape[i] != 1 && strides[i] != step) return false;
    step *= shape[i];
  }
  return true;
}

bool non_overlapping(const TensorArg& t) {
  // Sorted by stride, each dim must step past everything the smaller dims reach.
  int order[4] = {0, 1, 2, 3};
  const int rank = t.rank < 4 ? t.rank : 4;
  for (int i = 1; i < rank; ++i) {  // insertion sort of at most 4 dims by stride
    for (int j = i; j > 0 && t.strides[order[j]] < t.strides[order[j - 1]]; --j) std::swap(order[j], order[j - 1]);
  }
  int64_t reach = 0;  // elements the dims so far span, minus one
  for (int i = 0; i < rank; ++i) {
    const int d = order[i];
    if (t.shape[d] == 1) continue;
    if (t.strides[d] <= reach) return false;
    reach += (t.shape[d] - 1) * t.strides[d];
  }
  return true;
}

namespace {

// Calls fn(element offset of the run, index of the run) for each contiguous last-dim run.
template <typename Fn>
void for_each_row(const TensorArg& t, Fn fn) {
  int64_t idx[4] = {0, 0, 0, 0};
  const int outer = t.rank - 1;
  size_t row = 0;
  while (true) {
    int64_t off = 0;
    for (int i = 0; i < outer; ++i) off += idx[i] * t.strides[i];
    fn(off, row++);
    int i = outer - 1;
    for (; i >= 0; --i) {
      if (++idx[i] < t.shape[i]) break;
      idx[i] = 0;
    }
    if (i < 0) return;
  }
}

}  // namespace

namespace {

// Copies between a strided host view at `strided` and contiguous memory at `packed`.
void copy_view(const TensorArg& t, const void* from, void* to, bool packing) {
  if (t.contiguous()) {
    std::memcpy(to, from, t.bytes);
    return;
  }
  const size_t elem = static_cast<size_t>(dtype_size(t.dtype));
  const size_t run = static_cast<size_t>(t.shape[t.rank - 1]) * elem;
  for_each_row(t, [&](int64_t off, size_t row) {
    const size_t strided = static_cast<size_t>(off) * elem, packed = row * run;
    std::memcpy(static_cast<char*>(to) + (packing ? packed : strided),
                static_cast<const char*>(from) + (packing ? strided : packed), run);
  });
}

}  // namespace

void gather(const TensorArg& t, const void* base, void* dst) { copy_view(t, base, dst, true); }

void scatter(const TensorArg& t, const void* src, void* base) { copy_view(t, src, base, false); }

void check_no_overlap(const std::vector<const TensorArg*>& outputs, const std::vector<const TensorArg*>& inputs) {
  auto overlaps = [](const TensorArg& a, const TensorArg& b) {
    const auto a0 = reinterpret_cast<uintptr_t>(a.data()), b0 = reinterpret_cast<uintptr_t>(b.data());
    return a0 < b0 + b.span_bytes && b0 < a0 + a.span_bytes;
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
