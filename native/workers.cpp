// workers.cpp — the bench as an AsyncWorker (forward, backward and copies: exec/calls.cpp).
#include "workers.h"

#include <cstdint>
#include <string>
#include <utility>

#include "fields.h"
#include "request/request.h"
#include "request/tensor.h"
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

// Runs `Query` through `run` (cuda::bench or cuda::bench_decode) on the worker thread.
template <typename Query, BenchOutcome (*run)(const Query&)>
class BenchWorker final : public PromiseWorker {
 public:
  BenchWorker(Napi::Env env, const char* op, Query query) : PromiseWorker(env, op), query_(std::move(query)) {}

 protected:
  void Run() override { outcome_ = run(query_); }

  Napi::Value Result(Napi::Env env) override {
    Napi::Array ms = Napi::Array::New(env, outcome_.ms.size());
    for (size_t i = 0; i < outcome_.ms.size(); ++i) {
      ms.Set(static_cast<uint32_t>(i), Napi::Number::New(env, outcome_.ms[i]));
    }
    Napi::Object result = Napi::Object::New(env);
    result.Set("ms", ms);
    result.Set("peakExtraBytes", Napi::Number::New(env, static_cast<double>(outcome_.peak_extra_bytes)));
    result.Set("kernel", Napi::String::New(env, outcome_.kernel));
    result.Set("hostLaunchUs", Napi::Number::New(env, outcome_.host_launch_us));
    return result;
  }

 private:
  Query query_;
  BenchOutcome outcome_;
};

DecodeBenchQuery parse_decode_bench(Napi::Value request) {
  const OwnFields req(as_object(request, "the request"));
  DecodeBenchQuery q;
  q.device = read_device(req);
  DecodeBenchRequest& s = q.shape;
  s.dtype = read_dtype(field(req, "dtype"), "dtype");
  s.b = read_count(req, "batch", 65535);
  s.s_q = read_count(req, "seqlenQ", 4096);
  s.h = read_count(req, "headsQ", 65535);
  s.h_k = read_count(req, "headsKV", 65535);
  s.d = read_count(req, "headDim", 4096);
  s.context = read_count(req, "context", int64_t{1} << 30);
  s.page_size = static_cast<int>(
      read_integer(field(req, "pageSize"), "pageSize", 0, int64_t{1} << 20, "an integer >= 0 (0 = contiguous)"));
  s.cold_l2 = read_bool(field(req, "coldL2"), "coldL2");
  s.num_splits = static_cast<int>(
      read_integer(field(req, "numSplits"), "numSplits", 0, 256, "an integer from 0 to 256 (0 = the heuristic's)"));
  s.warmup = static_cast<int>(read_integer(field(req, "warmup"), "warmup", 0, 1000000, "an integer from 0 to 1000000"));
  s.iters = static_cast<int>(read_integer(field(req, "iters"), "iters", 1, 1000000, "an integer from 1 to 1000000"));
  if (s.h % s.h_k != 0) {
    fail(ErrorCode::kShape, "headsQ = " + std::to_string(s.h) + " must be a multiple of headsKV = " + std::to_string(s.h_k));
  }
  return q;
}

}  // namespace

Napi::Value Bench(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
#if !FLASHATTN_WITH_CUDA
    fail(ErrorCode::kNoDevice, kBuiltWithoutCuda);
#else
    return (new BenchWorker<BenchQuery, run_bench>(env, "bench", parse_bench(info[0])))->QueuePromise();
#endif
  } catch (...) {
    return rejected_with_current(env, "bench");
  }
}

Napi::Value BenchDecode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
#if !FLASHATTN_WITH_CUDA
    fail(ErrorCode::kNoDevice, kBuiltWithoutCuda);
#else
    return (new BenchWorker<DecodeBenchQuery, run_decode_bench>(env, "benchDecode", parse_decode_bench(info[0])))
        ->QueuePromise();
#endif
  } catch (...) {
    return rejected_with_current(env, "benchDecode");
  }
}

}  // namespace flashattn::native
