// fields.h — reading request fields from JS objects, with messages that name the field and say
// what was expected and what was got ("windowLeft must be an integer >= -1, but got 1.5").
//
// Every reader throws AddonError (E_ARG unless it says otherwise); the caller prefixes the op.
// `path` is the field's name as the user sees it, e.g. "q.shape[2]" or "windowLeft".
#pragma once

#include <napi.h>

#include <cstdint>
#include <initializer_list>
#include <string>

#include "errors.h"

namespace flashattn::native {

// What a value is, for "but got ...": "undefined", "null", "number 1.5", "string 'abc'",
// "Float32Array", "Array", "DeviceBuffer", "object", ...
std::string describe(Napi::Value value);

// The value is an object (not null, not an array unless allow_array), else E_ARG.
Napi::Object as_object(Napi::Value value, const std::string& path);

// obj[key] when key is an OWN property of obj, else undefined (the prototype chain is never
// read). Getters run (and may throw a JS exception, which propagates as Napi::Error).
Napi::Value field(const Napi::Object& obj, const char* key);

// A number that is an integer in [min, max]; `expect` says so in words ("an integer >= -1").
int64_t read_integer(Napi::Value value, const std::string& path, int64_t min, int64_t max, const char* expect,
                     ErrorCode code = ErrorCode::kArg);
// A finite number.
double read_finite(Napi::Value value, const std::string& path);
bool read_bool(Napi::Value value, const std::string& path);
// One of `choices`; returns its index.
int read_choice(Napi::Value value, const std::string& path, std::initializer_list<const char*> choices,
                ErrorCode code = ErrorCode::kArg);

// Largest integer a JS number holds exactly.
inline constexpr int64_t kMaxSafeInteger = (int64_t{1} << 53) - 1;

}  // namespace flashattn::native
