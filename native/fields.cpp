// fields.cpp — request field readers and value descriptions for error messages.
#include "fields.h"

#include <cmath>
#include <cstring>
#include <utility>
#include <vector>

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

std::string FieldPath::str() const {
  std::string s(base_);
  if (member_ != nullptr) s += member_;
  if (index_ >= 0) s += "[" + std::to_string(index_) + "]";
  return s;
}

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

Napi::Object as_object(Napi::Value value, const FieldPath& path) {
  if (!value.IsObject() || value.IsArray() || value.IsFunction()) {
    fail(ErrorCode::kArg, path.str() + " must be an object, but got " + describe(value));
  }
  return value.As<Napi::Object>();
}

OwnFields::OwnFields(const Napi::Object& obj) : obj_(obj) {
  napi_env env = obj.Env();
  // A typed array would list every index: ask it key by key instead (it has no fields of ours).
  listed_ = !obj.IsTypedArray();
  if (!listed_) return;
  napi_value keys = nullptr;
  uint32_t count = 0;
  if (napi_get_all_property_names(env, obj, napi_key_own_only, napi_key_skip_symbols, napi_key_numbers_to_strings,
                                  &keys) != napi_ok ||
      napi_get_array_length(env, keys, &count) != napi_ok) {
    throw Napi::Error::New(env);  // a pending JS exception (a Proxy's ownKeys trap threw, say)
  }
  names_.resize(count);
  for (uint32_t i = 0; i < count; ++i) {
    Name& n = names_[i];
    if (napi_get_element(env, keys, i, &n.key) != napi_ok) throw Napi::Error::New(env);
    // A name too long for the buffer is none of ours (every key asked for is shorter).
    if (napi_get_value_string_utf8(env, n.key, n.text, sizeof n.text, &n.len) != napi_ok || n.len + 1 >= sizeof n.text) {
      n.len = sizeof n.text;
    }
  }
}

Napi::Value OwnFields::get(const char* key) const {
  napi_env env = obj_.Env();
  const size_t len = std::strlen(key);
  if (len + 1 >= sizeof(Name::text)) fail(ErrorCode::kInternal, std::string("field key too long: ") + key);
  napi_value value = nullptr;
  if (!listed_) {
    napi_value name = nullptr;
    bool own = false;
    if (napi_create_string_utf8(env, key, len, &name) != napi_ok || napi_has_own_property(env, obj_, name, &own) != napi_ok) {
      throw Napi::Error::New(env);
    }
    if (!own) return Napi::Env(env).Undefined();
    if (napi_get_property(env, obj_, name, &value) != napi_ok) throw Napi::Error::New(env);
    return Napi::Value(env, value);
  }
  for (const Name& n : names_) {
    if (n.len != len || std::memcmp(n.text, key, len) != 0) continue;
    if (napi_get_property(env, obj_, n.key, &value) != napi_ok) throw Napi::Error::New(env);  // a getter threw
    return Napi::Value(env, value);
  }
  return Napi::Env(env).Undefined();
}

Napi::Value field(const OwnFields& obj, const char* key) { return obj.get(key); }

Napi::Value field(const Napi::Object& obj, const char* key) { return OwnFields(obj).get(key); }

// The readers below ask N-API for the value as the type they want, in one call: anything else
// answers napi_number_expected (or _boolean_, _string_) without a JS exception.

int64_t read_integer(Napi::Value value, const FieldPath& path, int64_t min, int64_t max, const char* expect,
                     ErrorCode code) {
  double d = 0;
  if (napi_get_value_double(value.Env(), value, &d) == napi_ok && std::isfinite(d) && std::floor(d) == d &&
      d >= static_cast<double>(min) && d <= static_cast<double>(max)) {
    return static_cast<int64_t>(d);
  }
  fail(code, path.str() + " must be " + expect + ", but got " + describe(value));
}

double read_finite(Napi::Value value, const FieldPath& path) {
  double d = 0;
  if (napi_get_value_double(value.Env(), value, &d) == napi_ok && std::isfinite(d)) return d;
  fail(ErrorCode::kArg, path.str() + " must be a finite number, but got " + describe(value));
}

bool read_bool(Napi::Value value, const FieldPath& path) {
  bool b = false;
  if (napi_get_value_bool(value.Env(), value, &b) == napi_ok) return b;
  fail(ErrorCode::kArg, path.str() + " must be a boolean, but got " + describe(value));
}

int read_choice(Napi::Value value, const FieldPath& path, std::initializer_list<const char*> choices,
                ErrorCode code) {
  // Into a buffer that holds every choice: a longer string is none of them (a truncated one is
  // compared by its length too, like an embedded NUL, so it never matches a prefix).
  char got[32];
  size_t len = 0;
  if (napi_get_value_string_utf8(value.Env(), value, got, sizeof got, &len) == napi_ok && len + 1 < sizeof got) {
    int i = 0;
    for (const char* c : choices) {
      if (std::strlen(c) == len && std::memcmp(c, got, len) == 0) return i;
      ++i;
    }
  }
  std::string list;
  int i = 0;
  for (const char* c : choices) {
    list += (i == 0 ? "" : i + 1 == static_cast<int>(choices.size()) ? " or " : ", ");
    list += std::string("'") + c + "'";
    ++i;
  }
  fail(code, path.str() + " must be " + (choices.size() > 2 ? "one of " : "") + list + ", but got " + describe(value));
}

}  // namespace flashattn::native
