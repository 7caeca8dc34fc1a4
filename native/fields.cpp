// fields.cpp — request field readers and value descriptions for error messages.
#include "fields.h"

#include <cmath>

#include "device_buffer.h"

namespace flashattn::native {

namespace {

const char* typed_array_name(napi_typedarray_type type) {
  switch (type) {
    case napi_int8_array: return "Int8Array";
    case napi_uint8_array: return "Uint8Array";
    case napi_uint8_clamped_array: return "Uint8ClampedArray";
    case napi_int16_array: return "Int16Array";
    case napi_uint16_array: return "Uint16Array";
    case napi_int32_array: return "Int32Array";
    case napi_uint32_array: return "Uint32Array";
    case napi_float32_array: return "Float32Array";
    case napi_float64_array: return "Float64Array";
    case napi_bigint64_array: return "BigInt64Array";
    case napi_biguint64_array: return "BigUint64Array";
    default: return "TypedArray";  // e.g. a Float16Array on a Node newer than these headers
  }
}

std::string quoted(const std::string& s) {
  constexpr size_t kMax = 40;
  return "'" + (s.size() > kMax ? s.substr(0, kMax) + "..." : s) + "'";
}

std::string number_text(Napi::Value value) {
  // JS's own formatting (1.5, NaN, Infinity, 1e+21), so the message shows what the user wrote.
  return value.ToString().Utf8Value();
}

}  // namespace

std::string describe(Napi::Value value) {
  switch (value.Type()) {
    case napi_undefined: return "undefined";
    case napi_null: return "null";
    case napi_boolean: return value.As<Napi::Boolean>().Value() ? "boolean true" : "boolean false";
    case napi_number: return "number " + number_text(value);
    case napi_string: return "string " + quoted(value.As<Napi::String>().Utf8Value());
    case napi_symbol: return "symbol";
    case napi_bigint: return "bigint " + number_text(value);
    case napi_function: return "function";
    case napi_external: return "external";
    case napi_object: break;
  }
  if (value.IsTypedArray()) return typed_array_name(value.As<Napi::TypedArray>().TypedArrayType());
  if (value.IsArray()) return "Array of length " + std::to_string(value.As<Napi::Array>().Length());
  if (value.IsArrayBuffer()) return "ArrayBuffer";
  if (value.IsDataView()) return "DataView";
  if (value.IsPromise()) return "Promise";
  if (DeviceBuffer::FromValue(value) != nullptr) return "DeviceBuffer";
  return "object";
}

Napi::Object as_object(Napi::Value value, const std::string& path) {
  if (!value.IsObject() || value.IsArray() || value.IsFunction()) {
    fail(ErrorCode::kArg, path + " must be an object, but got " + describe(value));
  }
  return value.As<Napi::Object>();
}

Napi::Value field(const Napi::Object& obj, const char* key) {
  // Own properties only: Object.prototype.causal = true, or a tensor made with Object.create(),
  // must not change what a request says.
  napi_env env = obj.Env();
  napi_value name = nullptr, value = nullptr;
  bool own = false;
  if (napi_create_string_utf8(env, key, NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_has_own_property(env, obj, name, &own) != napi_ok) {
    throw Napi::Error::New(env);  // a pending JS exception (a Proxy trap threw, say)
  }
  if (!own) return Napi::Env(env).Undefined();
  if (napi_get_property(env, obj, name, &value) != napi_ok) throw Napi::Error::New(env);
  return Napi::Value(env, value);
}

int64_t read_integer(Napi::Value value, const std::string& path, int64_t min, int64_t max, const char* expect,
                     ErrorCode code) {
  if (value.IsNumber()) {
    const double d = value.As<Napi::Number>().DoubleValue();
    if (std::isfinite(d) && std::floor(d) == d && d >= static_cast<double>(min) && d <= static_cast<double>(max)) {
      return static_cast<int64_t>(d);
    }
  }
  fail(code, path + " must be " + expect + ", but got " + describe(value));
}

double read_finite(Napi::Value value, const std::string& path) {
  if (value.IsNumber()) {
    const double d = value.As<Napi::Number>().DoubleValue();
    if (std::isfinite(d)) return d;
  }
  fail(ErrorCode::kArg, path + " must be a finite number, but got " + describe(value));
}

bool read_bool(Napi::Value value, const std::string& path) {
  if (value.IsBoolean()) return value.As<Napi::Boolean>().Value();
  fail(ErrorCode::kArg, path + " must be a boolean, but got " + describe(value));
}

int read_choice(Napi::Value value, const std::string& path, std::initializer_list<const char*> choices,
                ErrorCode code) {
  std::string list;
  int i = 0;
  const std::string got = value.IsString() ? value.As<Napi::String>().Utf8Value() : std::string();
  for (const char* c : choices) {
    if (value.IsString() && got == c) return i;
    list += (i == 0 ? "" : i + 1 == static_cast<int>(choices.size()) ? " or " : ", ");
    list += std::string("'") + c + "'";
    ++i;
  }
  fail(code, path + " must be " + (choices.size() > 2 ? "one of " : "") + list + ", but got " + describe(value));
}

}  // namespace flashattn::native
