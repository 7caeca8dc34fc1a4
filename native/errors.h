// errors.h — the error codes that cross into JS, and the C++ exception that carries one.
//
// Every failure the addon reports is a JS Error with a `code` property (docs/TEAM-CONTRACTS.md).
// Native code throws AddonError(code, message); whoever talks to JS turns it into an Error with
// make_js_error(). Failures on a worker thread are caught there as a Failure (plain data, no napi
// values) and turned into the Error later, on the JS thread.
#pragma once

#include <napi.h>

#include <stdexcept>
#include <string>

namespace flashattn::native {

enum class ErrorCode {
  kArg,          // E_ARG: an option value is wrong (type, range, combination)
  kShape,        // E_SHAPE: a tensor's shape or length is wrong or inconsistent with another's
  kDType,        // E_DTYPE: a dtype name or a typed array type is wrong
  kUnsupported,  // E_UNSUPPORTED: valid input this build/backend/device cannot run
  kNoDevice,     // E_NO_DEVICE: no usable CUDA device (or a CPU-only build)
  kCuda,         // E_CUDA: a CUDA call failed
  kOom,          // E_OOM: out of device (or host) memory
  kDisposed,     // E_DISPOSED: a DeviceBuffer was used after dispose()
  kInternal,     // E_INTERNAL: a bug in the addon
};

inline const char* error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::kArg: return "E_ARG";
    case ErrorCode::kShape: return "E_SHAPE";
    case ErrorCode::kDType: return "E_DTYPE";
    case ErrorCode::kUnsupported: return "E_UNSUPPORTED";
    case ErrorCode::kNoDevice: return "E_NO_DEVICE";
    case ErrorCode::kCuda: return "E_CUDA";
    case ErrorCode::kOom: return "E_OOM";
    case ErrorCode::kDisposed: return "E_DISPOSED";
    case ErrorCode::kInternal: return "E_INTERNAL";
  }
  return "E_INTERNAL";
}

// A failure with its JS error code. The message does not name the op: the code that catches it
// prefixes "forward: " etc., so one validation helper serves every op.
class AddonError : public std::runtime_error {
 public:
  AddonError(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

[[noreturn]] inline void fail(ErrorCode code, const std::string& message) { throw AddonError(code, message); }

// The message shown when CUDA work is asked of the CPU-only build.
inline constexpr const char* kBuiltWithoutCuda =
    "this flashattn addon was built without CUDA (CPU-only build); rebuild with FLASHATTN_BUILD=cuda and a CUDA "
    "toolkit";

// A failure as plain data, safe to carry from a worker thread to the JS thread.
struct Failure {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;
};

// Classifies the exception being handled. Call only inside a catch block. `op` names what failed
// ("forward", "DeviceBuffer.upload", ...) and prefixes the message:
//   AddonError          -> its code
//   cuda::Error         -> E_OOM when out_of_memory(), else E_CUDA (CUDA build only)
//   std::bad_alloc      -> E_OOM (host memory)
//   other std::exception, or anything else -> E_INTERNAL
Failure current_failure(const std::string& op) noexcept;

// A JS Error with `code` set.
Napi::Error make_js_error(Napi::Env env, ErrorCode code, const std::string& message);
inline Napi::Error make_js_error(Napi::Env env, const Failure& f) { return make_js_error(env, f.code, f.message); }

// A promise already rejected with the exception being handled (call only inside a catch block).
// A Napi::Error (a JS exception thrown while reading the request, e.g. by a getter) rejects with
// the original JS value.
Napi::Promise rejected_with_current(Napi::Env env, const std::string& op);

}  // namespace flashattn::native
