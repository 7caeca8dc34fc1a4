// bench.cu — api.h's bench(): time forward, naive_forward or backward on random device data.
//
// Inputs are filled by a hash-based normal generator (never zeros: zeros hide unwritten outputs
// and run faster than real data). Each timed run gets its own cudaEvent pair. The peak extra
// memory is the default memory pool's high-water mark over the timed runs: every workspace in
// forward/backward/naive is allocated stream-ordered from that pool, while the tensors here come
// from cudaMalloc and so do not count.
#include <algorithm>
#include <cmath>
#include <chrono>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include "api.h"
#include "common/check.h"
#include "decode/api.h"
#include "sm80/launch.h"

namespace flashattn::cuda {
namespace {

__device__ __forceinline__ uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Standard normal values (Box-Muller on two 24-bit uniforms) stored in T.
template <typename T>
__global__ void fill_normal(T* __restrict__ p, size_t n, uint64_t seed) {
  const size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
  for (size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const uint64_t z = splitmix64(seed * 0x2545f4914f6cdd1dull + i);
    const float u1 = (static_cast<float>(z >> 40) + 1.f) * (1.f / 16777216.f);  // (0, 1]
    const float u2 = static_cast<float>((z >> 8) & 0xffffff) * (1.f / 16777216.f);
    const float x = sqrtf(-2.f * logf(u1)) * cospif(2.f * u2);
    if constexpr (std::is_same_v<T, __half>) {
      p[i] = __float2half_rn(x);
    } else if constexpr (std::is_same_v<T, __nv_fp8_storage_t>) {
      p[i] = __nv_cvt_float_to_fp8(x, __NV_SATFINITE, __NV_E4M3);
    } else {
      p[i] = __float2bfloat16_rn(x);
    }
  }
}

void fill_random(void* p, size_t n, DType dt, uint64_t seed, cudaStream_t stream) {
  const int threads = 256;
  const unsigned blocks = static_cast<unsigned>(std::min<size_t>((n + threads - 1) / threads, 65536));
  if (n == 0) return;
  if (dt == DType::kFloat16) {
    fill_normal<__half><<<blocks, threads, 0, stream>>>(static_cast<__half*>(p), n, seed);
  } else if (dt == DType::kFloat8E4M3) {
    fill_normal<__nv_fp8_storage_t><<<blocks, threads, 0, stream>>>(static_cast<__nv_fp8_storage_t*>(p), n, seed);
  } else {
    fill_normal<__nv_bfloat16><<<blocks, threads, 0, stream>>>(static_cast<__nv_bfloat16*>(p), n, seed);
  }
  check(cudaGetLastError(), "bench fill kernel launch");
}

// Owns the bench's device allocations and events; releases them on every exit path.
struct BenchResources {
  int device = 0;
  std::vector<void*> buffers;
  std::vector<cudaEvent_t> events;
  cudaStream_t stream = nullptr;

  void* alloc(size_t bytes, const char* what) {
    void* p = nullptr;
    check(cudaMalloc(&p, bytes > 0 ? bytes : 16), (std::string("cudaMalloc(bench ") + what + ")").c_str());
    buffers.push_back(p);
    return p;
  }
  cudaEvent_t event() {
    cudaEvent_t e = nullptr;
    check(cudaEventCreate(&e), "cudaEventCreate");
    events.push_back(e);
    return e;
  }
  ~BenchResources() {
    if (stream) (void)cudaStreamSynchronize(stream);
    for (cudaEvent_t e : events) (void)cudaEventDestroy(e);
    for (void* p : buffers) (void)cudaFree(p);
    if (stream) (void)cudaStreamDestroy(stream);
  }
};

// Warm-up, then `iters` runs each between its own event pair on res.stream; fills result.ms and
// result.peak_extra_bytes (the default pool's high-water mark over the timed runs).
template <typename Run>
void time_runs(BenchResources& res, int warmup, int iters, const Run& run_once, BenchResult& result) {
  const int device = res.device;
  for (int i = 0; i < warmup; ++i) run_once();
  check(cudaStreamSynchronize(res.stream), "bench warm-up");

  cudaMemPool_t pool = nullptr;
  check(cudaDeviceGetDefaultMemPool(&pool, device), "cudaDeviceGetDefaultMemPool");
  // DeviceBuffers also come from this pool (cuda/runtime.cu): count only what the runs add.
  uint64_t zero = 0, in_use = 0;
  check(cudaMemPoolGetAttribute(pool, cudaMemPoolAttrUsedMemCurrent, &in_use), "cudaMemPoolGetAttribute(UsedMemCurrent)");
  check(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrUsedMemHigh, &zero), "cudaMemPoolSetAttribute(UsedMemHigh)");

  std::vector<cudaEvent_t> start(iters), stop(iters);
  for (int i = 0; i < iters; ++i) {
    start[i] = res.event();
    stop[i] = res.event();
  }
  std::vector<float> host_us(iters);
  for (int i = 0; i < iters; ++i) {
    check(cudaEventRecord(start[i], res.stream), "cudaEventRecord");
    const auto t0 = std::chrono::steady_clock::now();
    run_once();
    host_us[i] = std::chrono::duration<float, std::micro>(std::chrono::steady_clock::now() - t0).count();
    check(cudaEventRecord(stop[i], res.stream), "cudaEventRecord");
  }
  std::nth_element(host_us.begin(), host_us.begin() + iters / 2, host_us.end());
  result.host_launch_us = host_us[iters / 2];
  check(cudaStreamSynchronize(res.stream), "bench timed runs");
  result.ms.resize(iters);
  for (int i = 0; i < iters; ++i) {
    check(cudaEventElapsedTime(&result.ms[i], start[i], stop[i]), "cudaEventElapsedTime");
  }
  uint64_t high = 0;
  check(cudaMemPoolGetAttribute(pool, cudaMemPoolAttrUsedMemHigh, &high), "cudaMemPoolGetAttribute(UsedMemHigh)");
  result.peak_extra_bytes = static_cast<size_t>(high > in_use ? high - in_use : 0);
}

}  // namespace

BenchResult bench(int device, const BenchRequest& req) {
  check(cudaSetDevice(device), "cudaSetDevice");
  AttnParams p = req.shape;
  const bool fp8 = p.dtype == DType::kFloat8E4M3;  // e4m3 forward, bf16 output, descales 1
  if (p.dtype != DType::kFloat16 && p.dtype != DType::kBFloat16 && !fp8) {
    fail(std::string("bench: the CUDA kernels take float16, bfloat16 or float8_e4m3, got ") + dtype_name(p.dtype));
  }
  if (fp8 && (req.op != Op::kForward || req.naive)) fail("bench: float8_e4m3 times the (non-naive) forward only");
  p.out_dtype = fp8 ? DType::kBFloat16 : p.dtype;
  if (p.h_k <= 0) p.h_k = p.h;
  if (p.b <= 0 || p.s_q <= 0 || p.s_k <= 0 || p.h <= 0 || p.d <= 0 || p.h % p.h_k != 0) {
    fail("bench: sizes must be positive and heads a multiple of KV heads");
  }
  if (req.iters <= 0 || req.warmup < 0) fail("bench: iters must be positive and warmup non-negative");
  if (req.naive && req.op != Op::kForward) fail("bench: the naive baseline is forward only");
  if (!(p.scale > 0.f)) p.scale = 1.f / std::sqrt(static_cast<float>(p.d));
  set_contiguous_strides(p);

  // Say what runs before allocating anything, so an unsupported request fails fast.
  BenchResult result;
  const char* dt = fp8 ? "fp8" : p.dtype == DType::kFloat16 ? "fp16" : "bf16";
  const plan::Plan sel = plan_for(req.op, p, device);
  if (req.naive) {
    result.kernel = "naive fwd d" + std::to_string(p.d) + " " + dt;
  } else if (sel.path == KernelPath::kNone) {
    fail("bench: " + sel.reason);
  } else {
    result.kernel = sel.decode ? "decode fwd d" + std::to_string(p.d) + " " + dt + " splits " + std::to_string(sel.splits)
                               : std::string(kernel_path_name(sel.path)) + (req.op == Op::kForward ? " fwd d" : " bwd d") +
                                     std::to_string(sel.kernel_head_dim) + " " + dt;
  }

  BenchResources res;
  res.device = device;
  check(cudaStreamCreateWithFlags(&res.stream, cudaStreamNonBlocking), "cudaStreamCreate");
  const size_t elem = dtype_size(p.dtype);
  const size_t nq = static_cast<size_t>(p.b) * p.s_q * p.h * p.d;
  const size_t nk = static_cast<size_t>(p.b) * p.s_k * p.h_k * p.d;
  p.q = res.alloc(nq * elem, "q");
  p.k = res.alloc(nk * elem, "k");
  p.v = res.alloc(nk * elem, "v");
  p.out = res.alloc(nq * (fp8 ? dtype_size(p.out_dtype) : elem), "out");
  p.lse = static_cast<float*>(res.alloc(sizeof(float) * static_cast<size_t>(p.b) * p.h * p.s_q, "lse"));
  fill_random(const_cast<void*>(p.q), nq, p.dtype, 1, res.stream);
  fill_random(const_cast<void*>(p.k), nk, p.dtype, 2, res.stream);
  fill_random(const_cast<void*>(p.v), nk, p.dtype, 3, res.stream);
  if (req.op == Op::kBackward) {
    p.dout = res.alloc(nq * elem, "dout");
    p.dq = res.alloc(nq * elem, "dq");
    p.dk = res.alloc(nk * elem, "dk");
    p.dv = res.alloc(nk * elem, "dv");
    fill_random(const_cast<void*>(p.dout), nq, p.dtype, 4, res.stream);
    forward(device, p, plan_for(Op::kForward, p, device), res.stream);  // the backward reads the real out and lse
  }

  auto run_once = [&]() {
    if (req.naive) {
      naive_forward(device, p, res.stream);
    } else if (req.op == Op::kForward) {
      forward(device, p, sel, res.stream);
    } else {
      backward(device, p, sel, res.stream);
    }
  };
  time_runs(res, req.warmup, req.iters, run_once, result);
  return result;
}

BenchResult bench_decode(int device, const DecodeBenchRequest& req) {
  check(cudaSetDevice(device), "cudaSetDevice");
  if (req.dtype != DType::kFloat16 && req.dtype != DType::kBFloat16) {
    fail(std::string("bench: the decode kernels take float16 or bfloat16, got ") + dtype_name(req.dtype));
  }
  if (req.b <= 0 || req.s_q <= 0 || req.h <= 0 || req.h_k <= 0 || req.d <= 0 || req.context <= 0 ||
      req.page_size < 0 || req.h % req.h_k != 0) {
    fail("bench: decode sizes must be positive and heads a multiple of KV heads");
  }
  if (req.iters <= 0 || req.warmup < 0) fail("bench: iters must be positive and warmup non-negative");
  decode::DecodeParams p;
  p.dtype = req.dtype;
  p.b = req.b;
  p.s_q = req.s_q;
  p.h = req.h;
  p.h_k = req.h_k;
  p.d = req.d;
  p.scale = 1.f / std::sqrt(static_cast<float>(p.d));
  const bool paged = req.page_size > 0;
  // Keys per cache row (contiguous) or block (paged), and rows or blocks in the cache.
  const int rows_per = paged ? req.page_size : req.context;
  const int blocks_per_seq = paged ? (req.context + req.page_size - 1) / req.page_size : 1;
  const size_t units = static_cast<size_t>(p.b) * blocks_per_seq;
  if (paged) {
    p.page_size = req.page_size;
    p.max_blocks_per_seq = blocks_per_seq;
    p.num_blocks = static_cast<int>(units);
    p.block_table_batch_stride = blocks_per_seq;
  } else {
    p.max_seqlen = req.context;
    p.batch_cache = p.b;
  }
  p.q_stride = contiguous_strides(p.s_q, p.h, p.d);
  p.o_stride = p.q_stride;
  p.k_stride = contiguous_strides(rows_per, p.h_k, p.d);
  p.v_stride = p.k_stride;

  BenchResources res;
  res.device = device;
  check(cudaStreamCreateWithFlags(&res.stream, cudaStreamNonBlocking), "cudaStreamCreate");
  const size_t elem = dtype_size(p.dtype);
  const size_t nq = static_cast<size_t>(p.b) * p.s_q * p.h * p.d;
  const size_t nk = units * rows_per * p.h_k * p.d;
  p.q = res.alloc(nq * elem, "q");
  // Runs cycle through enough copies of the cache that each one reads K/V from memory, not from
  // the L2 left warm by the run before (a server reads every layer's cache in turn between two
  // calls for one layer): copies until they span four times the L2, at most 16.
  int l2 = 0;
  check(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, device), "cudaDeviceGetAttribute(L2CacheSize)");
  const size_t kv_bytes = 2 * nk * elem;
  const int copies =
      req.cold_l2 ? static_cast<int>(std::clamp<size_t>((4 * static_cast<size_t>(l2) + kv_bytes - 1) / kv_bytes, 1, 16)) : 1;
  std::vector<void*> k_copies(copies), v_copies(copies);
  for (int c = 0; c < copies; ++c) {
    k_copies[c] = res.alloc(nk * elem, "k cache");
    v_copies[c] = res.alloc(nk * elem, "v cache");
    fill_random(k_copies[c], nk, p.dtype, 2 + 2 * c, res.stream);
    fill_random(v_copies[c], nk, p.dtype, 3 + 2 * c, res.stream);
  }
  p.k_cache = k_copies[0];
  p.v_cache = v_copies[0];
  p.out = res.alloc(nq * elem, "out");
  p.lse = static_cast<float*>(res.alloc(sizeof(float) * static_cast<size_t>(p.b) * p.h * p.s_q, "lse"));
  fill_random(const_cast<void*>(p.q), nq, p.dtype, 1, res.stream);

  // Every row at full length; a paged cache's blocks in a fixed shuffled order, as a server's
  // allocator leaves them after a while (neighbouring logical blocks are not neighbours in memory).
  std::vector<int32_t> lengths(p.b, req.context);
  std::vector<int32_t> table(paged ? units : 0);
  for (size_t i = 0; i < table.size(); ++i) table[i] = static_cast<int32_t>(i);
  uint64_t state = 0x2545f4914f6cdd1dull;
  for (size_t i = table.size(); i > 1; --i) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    std::swap(table[i - 1], table[(state >> 33) % i]);
  }
  auto* seqlens = static_cast<int32_t*>(res.alloc(lengths.size() * sizeof(int32_t), "cache seqlens"));
  check(cudaMemcpyAsync(seqlens, lengths.data(), lengths.size() * sizeof(int32_t), cudaMemcpyHostToDevice, res.stream),
        "cudaMemcpyAsync(cache seqlens)");
  p.cache_seqlens = seqlens;
  if (paged) {
    auto* bt = static_cast<int32_t*>(res.alloc(table.size() * sizeof(int32_t), "block table"));
    check(cudaMemcpyAsync(bt, table.data(), table.size() * sizeof(int32_t), cudaMemcpyHostToDevice, res.stream),
          "cudaMemcpyAsync(block table)");
    p.block_table = bt;
  }
  // The host vectors must outlive the copies.
  check(cudaStreamSynchronize(res.stream), "bench decode set-up");

  int sms = 0;
  check(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device), "cudaDeviceGetAttribute");
  p.num_splits = req.num_splits > 0 ? req.num_splits : decode::decode_num_splits(p, sms);
  p.workspace_bytes = decode::decode_workspace_bytes(p, sms);
  void* workspace = p.workspace_bytes > 0 ? res.alloc(p.workspace_bytes, "decode workspace") : nullptr;
  if (const char* why = decode::decode_unsupported(p)) fail(std::string("bench: decode: ") + why);
  // One workspace reused on one stream, as a server keeps one per stream: zeroed once, its split
  // counters stay zero between calls, so no call needs a memset (decode/api.h).
  if (workspace != nullptr) check(cudaMemsetAsync(workspace, 0, p.workspace_bytes, res.stream), "cudaMemsetAsync(decode workspace)");

  BenchResult result;
  result.kernel = decode::decode_kernel_name(p, sms);
  int run = 0;
  time_runs(res, req.warmup, req.iters, [&]() {
    p.k_cache = k_copies[run % copies];
    p.v_cache = v_copies[run % copies];
    ++run;
    decode::decode_forward_reusing(p, workspace, res.stream);
  }, result);
  // The workspace comes from cudaMalloc here (the pool saw nothing); the API takes it from the
  // pool per call.
  result.peak_extra_bytes = p.workspace_bytes;
  return result;
}

}  // namespace flashattn::cuda
