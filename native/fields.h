// fields.h — reading request fields from JS objects, with messages that name the field and say
// what was expected and what was got ("windowLeft must be an integer >= -1, but got 1.5").
//
// Every reader throws AddonError (E_ARG unless it says otherwise); the caller prefixes the op.
// `path` is the field's name as the user sees it, e.g. "q.shape[2]" or "windowLeft".
//
// These run for every field of every call, so the valid path is kept cheap: an object's own
// names are listed once (OwnFields), a value is read with one N-API call where one will do, and
// no std::string is built unless a message needs it (FieldPath).
#pragma once

#include <napi.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "errors.h"

namespace flashattn::native {

// A field's path as the user sees it, for messages: "windowLeft", "q.dtype", "q.shape[2]". Built
// into a string only when a message needs one. A view: what it points at must outlive the call
// it is passed to (a literal, a name, or a std::string argument of that call).
class FieldPath {
 public:
  FieldPath(const char* name) : base_(name) {}                 // NOLINT(google-explicit-constructor)
  FieldPath(const std::string& name) : base_(name.c_str()) {}  // NOLINT(google-explicit-constructor)
  // base + member, then "[index]" when index >= 0: ("q", ".shape", 2) is "q.shape[2]".
  FieldPath(const char* base, const char* member, int index = -1) : base_(base), member_(member), index_(index) {}

  std::string str() const;

 private:
  const char* base_;
  const char* member_ = nullptr;
  int index_ = -1;
};

// What a value is, for "but got ...": "undefined", "null", "number 1.5", "string 'abc'",
// "Float32Array", "Array", "DeviceBuffer", "object", ...
std::string describe(Napi::Value value);

// The value is an object (not null, not an array unless allow_array), else E_ARG.
Napi::Object as_object(Napi::Value value, const FieldPath& path);

// The own string-keyed properties of one object (the prototype chain is never read:
// Object.prototype.causal = true, or a tensor made with Object.create(), must not change what a
// request says). The names are listed once, so a field the object does not have costs no further
// call into JS, and one it has is read with the key JS listed. Getters run when a field is read
// (and may throw a JS exception, which propagates as Napi::Error), each time it is read. Use it
// within the handle scope that made it (it holds napi_values): the synchronous part of a call.
class OwnFields {
 public:
  explicit OwnFields(const Napi::Object& obj);
  // obj[key] when key is an own property, else undefined. Keys are shorter than 32 bytes.
  Napi::Value get(const char* key) const;
  const Napi::Object& object() const { return obj_; }

 private:
  struct Name {
    char text[32];
    size_t len = 0;  // sizeof text: a name no key matches
    napi_value key = nullptr;
  };
  Napi::Object obj_;
  bool listed_ = false;  // false for a typed array: each key is asked for instead
  std::vector<Name> names_;
};

// obj[key] when key is an OWN property of obj, else undefined (OwnFields::get). The first form
// lists obj's names for this one read; read an object of several fields through one OwnFields.
Napi::Value field(const Napi::Object& obj, const char* key);
Napi::Value field(const OwnFields& obj, const char* key);

// A number that is an integer in [min, max]; `expect` says so in words ("an integer >= -1").
int64_t read_integer(Napi::Value value, const FieldPath& path, int64_t min, int64_t max, const char* expect,
                     ErrorCode code = ErrorCode::kArg);
// A finite number.
double read_finite(Napi::Value value, const FieldPath& path);
bool read_bool(Napi::Value value, const FieldPath& path);
// One of `choices` (short ASCII names); returns its index.
int read_choice(Napi::Value value, const FieldPath& path, std::initializer_list<const char*> choices,
                ErrorCode code = ErrorCode::kArg);

// Largest integer a JS number holds exactly.
inline constexpr int64_t kMaxSafeInteger = (int64_t{1} << 53) - 1;

}  // namespace flashattn::native
