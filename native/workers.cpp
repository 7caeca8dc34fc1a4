// workers.cpp — the bench as an AsyncWorker (forward, backward and copies: exec/calls.cpp).
#include "workers.h"

#include <utility>

#include "request/request.h"
#include "runner.h"

namespace flashattn::native {

// ---- PromiseWorker ---------------------------------------------------------------------------

PromiseWorker::PromiseWorker(Napi::Env env, const char* op)
    : Napi::AsyncWorker(env, op), op_(op), deferred_(Napi::Promise::Deferred::New(env)) {}

Napi::Promise PromiseWorker::QueuePromise() {
  Napi::Promise promise = deferred_.Promise();
  Queue();
  return promise;
}

Napi::Value PromiseWorker::Result(Napi::Env env) { return env.Undefined(); }

void PromiseWorker::Execute() {
  try {
    Run();
  } catch (...) {
    failure_ = current_failure(op_);
    // AsyncWorker takes the error path only for a non-empty message.
    SetError(failure_.message.empty() ? op_ + ": failed" : failure_.message);
  }
}

void PromiseWorker::OnOK() {
  // Nothing may escape into the event loop from here (it would be an uncaught exception).
  try {
    deferred_.Resolve(Result(Env()));
  } catch (const Napi::Error& e) {
    try {
      deferred_.Reject(e.Value());
    } catch (...) {
    }
  } catch (...) {
    try {
      deferred_.Reject(make_js_error(Env(), current_failure(op_)).Value());
    } catch (...) {
    }
  }
}

void PromiseWorker::OnError(const Napi::Error& /*error*/) {
  try {
    deferred_.Reject(make_js_error(Env(), failure_).Value());
  } catch (...) {
    // The environment is going away (a worker_thread terminating): nobody is left to tell.
  }
}

namespace {

// ---- bench -----------------------------------------------------------------------------------

class BenchWorker final : public PromiseWorker {
 public:
  BenchWorker(Napi::Env env, BenchQuery query) : PromiseWorker(env, "bench"), query_(std::move(query)) {}

 protected:
  void Run() override { outcome_ = run_bench(query_); }

  Napi::Value Result(Napi::Env env) override {
    Napi::Array ms = Napi::Array::New(env, outcome_.ms.size());
    for (size_t i = 0; i < outcome_.ms.size(); ++i) {
      ms.Set(static_cast<uint32_t>(i), Napi::Number::New(env, outcome_.ms[i]));
    }
    Napi::Object result = Napi::Object::New(env);
    result.Set("ms", ms);
    result.Set("peakExtraBytes", Napi::Number::New(env, static_cast<double>(outcome_.peak_extra_bytes)));
    result.Set("kernel", Napi::String::New(env, outcome_.kernel));
    return result;
  }

 private:
  BenchQuery query_;
  BenchOutcome outcome_;
};

}  // namespace

Napi::Value Bench(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
#if !FLASHATTN_WITH_CUDA
    fail(ErrorCode::kNoDevice, kBuiltWithoutCuda);
#else
    return (new BenchWorker(env, parse_bench(info[0])))->QueuePromise();
#endif
  } catch (...) {
    return rejected_with_current(env, "bench");
  }
}

}  // namespace flashattn::native
