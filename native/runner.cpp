// runner.cpp — the backend calls behind forward/backward/bench and DeviceBuffer copies.
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

namespace {

// Points params at the tensors' data, wherever `where` says each one lives.
template <typename Where>
void bind_pointers(AttnParams& p, AttentionJob& job, Where where) {
  p.q = where(job.q);
  p.k = where(job.k);
  p.v = where(job.v);
  p.out = where(job.out);
  p.lse = static_cast<float*>(where(job.lse));
  if (job.backward) {
    p.dout = where(job.dout);
    p.dq = where(job.dq);
    p.dk = where(job.dk);
    p.dv = where(job.dv);
  }
}

void run_cpu(AttentionJob& job) {
  AttnParams p = job.params;
  bind_pointers(p, job, [](const TensorArg& t) { return t.host; });
  const int threads = job.threads > 0 ? job.threads : cpu::default_threads();
  try {
    if (job.backward) {
      cpu::backward(p, threads);
    } else if (job.naive) {
      cpu::naive_forward(p, threads);
    } else {
      cpu::forward(p, threads);
    }
  } catch (const std::bad_alloc&) {
    throw;
  } catch (const std::invalid_argument& e) {
    // The CPU backend's word for "this request cannot be served here".
    fail(ErrorCode::kUnsupported, std::string("cpu backend: ") + e.what());
  } catch (const std::exception& e) {
    fail(ErrorCode::kInternal, std::string("cpu backend failed: ") + e.what());
  }
}

#if FLASHATTN_WITH_CUDA

std::string device_label(const cuda::DeviceInfo& info) {
  return "device " + std::to_string(info.index) + " (" + info.name + ", sm_" + std::to_string(info.major) +
         std::to_string(info.minor) + ")";
}

// The kernel dispatch asks select_kernel first: kNone is E_UNSUPPORTED with its reason.
void require_kernel(cuda::Op op, const AttnParams& params, const cuda::DeviceInfo& info) {
  const cuda::Selection sel = cuda::select_kernel(op, params, info);
  if (sel.path == cuda::KernelPath::kNone) {
    fail(ErrorCode::kUnsupported, "no CUDA kernel serves this request on " + device_label(info) + ": " +
                                      (sel.reason.empty() ? std::string("no reason given") : sel.reason));
  }
}

// Waits for whatever is already enqueued, ignoring errors: used on the way out of a failure so
// that no enqueued work still reads or writes memory that is about to be freed.
void drain(cuda::Stream stream) noexcept {
  try {
    cuda::stream_synchronize(stream);
  } catch (...) {
  }
}

void run_cuda(AttentionJob& job) {
  const int device = job.device;
  const cuda::DeviceInfo& info = device_info(device);  // E_NO_DEVICE
  // The naive baseline is not a flash kernel: select_kernel does not speak for it.
  if (!job.naive) require_kernel(job.backward ? cuda::Op::kBackward : cuda::Op::kForward, job.params, info);

  StreamLease lease(device);
  const cuda::Stream stream = lease.get();
  AttnParams p = job.params;
  auto launch = [&] {
    if (job.backward) {
      cuda::backward(device, p, stream);
    } else if (job.naive) {
      cuda::naive_forward(device, p, stream);
    } else {
      cuda::forward(device, p, stream);
    }
  };

  if (job.on_device) {
    bind_pointers(p, job, [](const TensorArg& t) { return t.data(); });
    try {
      launch();
      cuda::stream_synchronize(stream);
    } catch (...) {
      drain(stream);
      throw;
    }
    return;
  }

  // Host arrays: stage every tensor on the device. Declared before the try so the staging
  // memory is freed only after drain() below.
  const std::vector<TensorArg*> inputs = job.inputs();
  const std::vector<TensorArg*> outputs = job.outputs();
  std::vector<std::unique_ptr<DeviceMemory>> staging;
  std::vector<std::pair<const TensorArg*, void*>> staged;
  auto where = [&staged](const TensorArg& t) -> void* {
    for (const auto& [arg, ptr] : staged) {
      if (arg == &t) return ptr;
    }
    fail(ErrorCode::kInternal, t.name + " was not staged on the device");
  };
  try {
    for (const std::vector<TensorArg*>* group : {&inputs, &outputs}) {
      for (TensorArg* t : *group) {
        staging.push_back(std::make_unique<DeviceMemory>(device, t->bytes));
        staged.emplace_back(t, staging.back()->get());
      }
    }
    bind_pointers(p, job, where);
    for (TensorArg* t : inputs) cuda::copy_to_device(device, where(*t), t->host, t->bytes, stream);
    launch();
    for (TensorArg* t : outputs) cuda::copy_to_host(device, t->host, where(*t), t->bytes, stream);
    cuda::stream_synchronize(stream);
  } catch (...) {
    drain(stream);
    throw;
  }
}

#endif  // FLASHATTN_WITH_CUDA

}  // namespace

void run_attention(AttentionJob& job) {
  if (job.backend == Backend::kCpu) {
    run_cpu(job);
    return;
  }
#if FLASHATTN_WITH_CUDA
  run_cuda(job);
#else
  fail(ErrorCode::kNoDevice, kBuiltWithoutCuda);
#endif
}

BenchOutcome run_bench(const BenchQuery& query) {
#if FLASHATTN_WITH_CUDA
  const cuda::DeviceInfo& info = device_info(query.device);
  const cuda::Op op = query.backward ? cuda::Op::kBackward : cuda::Op::kForward;
  if (!query.naive) require_kernel(op, query.params, info);
  cuda::BenchRequest request;
  request.op = op;
  request.naive = query.naive;
  request.shape = query.params;
  request.warmup = query.warmup;
  request.iters = query.iters;
  cuda::BenchResult result = cuda::bench(query.device, request);
  BenchOutcome outcome;
  outcome.ms = std::move(result.ms);
  outcome.peak_extra_bytes = result.peak_extra_bytes;
  outcome.kernel = std::move(result.kernel);
  return outcome;
#else
  (void)query;
  fail(ErrorCode::kNoDevice, kBuiltWithoutCuda);
#endif
}

void copy_host_device(int device, void* device_ptr, void* host_ptr, size_t bytes, bool to_device) {
#if FLASHATTN_WITH_CUDA
  if (bytes == 0) return;
  device_info(device);  // E_NO_DEVICE
  StreamLease lease(device);
  try {
    if (to_device) {
      cuda::copy_to_device(device, device_ptr, host_ptr, bytes, lease.get());
    } else {
      cuda::copy_to_host(device, host_ptr, device_ptr, bytes, lease.get());
    }
    cuda::stream_synchronize(lease.get());
  } catch (...) {
    drain(lease.get());
    throw;
  }
#else
  (void)device, (void)device_ptr, (void)host_ptr, (void)bytes, (void)to_device;
  fail(ErrorCode::kNoDevice, kBuiltWithoutCuda);
#endif
}

}  // namespace flashattn::native
