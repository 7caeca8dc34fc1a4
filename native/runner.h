// runner.h — runs a checked attention request on its backend. Called on a worker thread (inside
// AsyncWorker::Execute), never on the JS thread; plain C++, no napi values.
//
//   backend 'cpu'                 flashattn::cpu::{forward, naive_forward, backward} on the host arrays
//   backend 'cuda', host arrays   device staging copies: allocate, copy in, run, copy out, free
//   backend 'cuda', DeviceBuffers the kernels read and write the buffers in place
// CUDA work is enqueued on a leased stream and waited for (stream_synchronize) before returning.
#pragma once

#include "request/request.h"

namespace flashattn::native {

// Throws AddonError (E_UNSUPPORTED when no kernel serves the request, E_NO_DEVICE, ...),
// cuda::Error, or whatever the CPU backend throws, translated to AddonError.

// BenchQuery -> cuda::bench, on the worker thread (CUDA build; E_NO_DEVICE otherwise).
struct BenchOutcome {
  std::vector<float> ms;
  size_t peak_extra_bytes = 0;
  std::string kernel;
  float host_launch_us = 0;
};
BenchOutcome run_bench(const BenchQuery& query);

// One decode shape for cuda::bench_decode (binding.ts benchDecode).
struct DecodeBenchQuery {
  int device = 0;
  DecodeBenchRequest shape;
};
BenchOutcome run_decode_bench(const DecodeBenchQuery& query);

// Copies between a host range and a device allocation, waiting for the copy to finish.

}  // namespace flashattn::native
