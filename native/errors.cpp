// errors.cpp — exception classification and JS Error construction.
#include "errors.h"

#include <exception>
#include <new>

#if FLASHATTN_WITH_CUDA
#include "api.h"
#endif

namespace flashattn::native {

Failure current_failure(const std::string& op) noexcept {
  Failure f;
  try {
    try {
      throw;
    } catch (const AddonError& e) {
      f.code = e.code();
      f.message = op + ": " + e.what();
#if FLASHATTN_WITH_CUDA
    } catch (const cuda::Error& e) {
      f.code = e.out_of_memory() ? ErrorCode::kOom : ErrorCode::kCuda;
      f.message = op + ": " + e.what();
#endif
    } catch (const std::bad_alloc&) {
      f.code = ErrorCode::kOom;
      f.message = op + ": out of host memory";
    } catch (const std::exception& e) {
      f.code = ErrorCode::kInternal;
      f.message = op + ": internal error: " + e.what();
    } catch (...) {
      f.code = ErrorCode::kInternal;
      f.message = op + ": internal error: an exception that is not a std::exception";
    }
  } catch (...) {
    // Building the message itself failed (out of memory): report what we can without allocating more.
    f.code = ErrorCode::kOom;
    f.message.clear();
  }
  return f;
}

Napi::Error make_js_error(Napi::Env env, ErrorCode code, const std::string& message) {
  Napi::Error error = Napi::Error::New(env, message.empty() ? std::string("flashattn: unknown error") : message);
  error.Value().Set("code", Napi::String::New(env, error_code_name(code)));
  return error;
}

Napi::Promise rejected_with_current(Napi::Env env, const std::string& op) {
  Napi::Promise::Deferred deferred = Napi::Promise::Deferred::New(env);
  try {
    throw;
  } catch (const Napi::Error& e) {
    // A JS exception raised while reading the request (a throwing getter, say): pass it on as is.
    deferred.Reject(e.Value());
  } catch (...) {
    deferred.Reject(make_js_error(env, current_failure(op)).Value());
  }
  return deferred.Promise();
}

}  // namespace flashattn::native
