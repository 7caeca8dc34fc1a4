// runner.cpp — the bench behind NativeBinding.bench (forward/backward: exec/calls.cpp).
#include "runner.h"

#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "cpu/cpu_backend.h"
#include "errors.h"

#if FLASHATTN_WITH_CUDA
#include "api.h"
#include "cuda_devices.h"
#endif

namespace flashattn::native {

#if FLASHATTN_WITH_CUDA
namespace {
BenchOutcome outcome_of(cuda::BenchResult&& result) {
  BenchOutcome outcome;
  outcome.ms = std::move(result.ms);
  outcome.peak_extra_bytes = result.peak_extra_bytes;
  outcome.kernel = std::move(result.kernel);
  outcome.host_launch_us = result.host_launch_us;
  return outcome;
}
}  // namespace
#endif

BenchOutcome run_bench(const BenchQuery& query) {
#if FLASHATTN_WITH_CUDA
  const cuda::DeviceInfo& info = device_info(query.device);
  const cuda::Op op = query.backward ? cuda::Op::kBackward : cuda::Op::kForward;
  if (!query.naive) {
    const plan::Plan plan = cuda::plan_for(op, query.params, query.device);
    if (!plan.ok()) {
      fail(ErrorCode::kUnsupported, "no CUDA kernel serves this request on " + device_label(info) + ": " + plan.reason);
    }
  }
  cuda::BenchRequest request;
  request.op = op;
  request.naive = query.naive;
  request.shape = query.params;
  request.warmup = query.warmup;
  request.iters = query.iters;
  return outcome_of(cuda::bench(query.device, request));
#else
  (void)query;
  fail(ErrorCode::kNoDevice, kBuiltWithoutCuda);
#endif
}

BenchOutcome run_decode_bench(const DecodeBenchQuery& query) {
#if FLASHATTN_WITH_CUDA
  (void)device_info(query.device);  // E_NO_DEVICE for an index past the devices
  return outcome_of(cuda::bench_decode(query.device, query.shape));
#else
  (void)query;
  fail(ErrorCode::kNoDevice, kBuiltWithoutCuda);
#endif
}

}  // namespace flashattn::native
