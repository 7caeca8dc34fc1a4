// naive.cu — "standard attention", the FlashAttention paper's baseline: materialize
//   S = scale · Q Kᵀ          (b, h, s_q, s_k) float32 in device memory (masked entries -inf)
//   P = softmax(S) row-wise    in place, plus LSE
//   O = P V
// with plain tiled SIMT kernels. Same semantics and outputs as forward(). S is allocated
// stream-ordered (cudaMallocAsync) so the bench sees it as the peak extra memory.
#include <cmath>
#include <string>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "api.h"
#include "sm80/mma.h"
#include "common/check.h"
#include "common/reduce.h"

namespace flashattn::cuda {
namespace {

constexpr int kTile = 64;     // output tile edge
constexpr int kDepth = 16;    // reduction chunk
constexpr int kThreads = 256; // 16 x 16 threads, 4 x 4 outputs each

struct NaiveArgs {
  const void* q;  // (b, s_q, h,   d)
  const void* k;  // (b, s_k, h_k, d)
  const void* v;  // (b, s_k, h_k, d)
  void* o;        // (b, s_q, h,   d)
  float* lse;     // (b, h, s_q)
  float* s;       // (b, h, s_q, s_k) workspace
  Strides qs, ks, vs, os;
  int s_q, s_k, h, group, d;
  int window_left, window_right;
  float scale;
};

template <typename T> __device__ __forceinline__ float to_f(T x);
template <> __device__ __forceinline__ float to_f<__half>(__half x) { return __half2float(x); }
template <> __device__ __forceinline__ float to_f<__nv_bfloat16>(__nv_bfloat16 x) { return __bfloat162float(x); }
template <typename T> __device__ __forceinline__ T from_f(float x);
template <> __device__ __forceinline__ __half from_f<__half>(float x) { return __float2half_rn(x); }
template <> __device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }

// S[bh, i, j] = scale · q_i · k_j inside the window, -inf outside. Grid (s_k tiles, s_q tiles, b·h).
template <typename T>
__global__ void __launch_bounds__(kThreads) naive_scores(const NaiveArgs a) {
  const int bh = blockIdx.z, b = bh / a.h, hq = bh % a.h, hk = hq / a.group;
  const int i0 = blockIdx.y * kTile, j0 = blockIdx.x * kTile;
  const T* q = static_cast<const T*>(a.q) + b * a.qs.batch + hq * a.qs.head;
  const T* k = static_cast<const T*>(a.k) + b * a.ks.batch + hk * a.ks.head;
  __shared__ float sq[kDepth][kTile + 4];
  __shared__ float sk[kDepth][kTile + 4];
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  float acc[4][4] = {};
  for (int c0 = 0; c0 < a.d; c0 += kDepth) {
    for (int e = threadIdx.x; e < kTile * kDepth; e += kThreads) {
      const int r = e / kDepth, c = e % kDepth;
      const int i = i0 + r, j = j0 + r, col = c0 + c;
      sq[c][r] = (i < a.s_q && col < a.d) ? to_f(q[i * a.qs.row + col]) : 0.f;
      sk[c][r] = (j < a.s_k && col < a.d) ? to_f(k[j * a.ks.row + col]) : 0.f;
    }
    __syncthreads();
#pragma unroll
    for (int c = 0; c < kDepth; ++c) {
      float qa[4], kb[4];
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        qa[r] = sq[c][ty * 4 + r];
        kb[r] = sk[c][tx * 4 + r];
      }
#pragma unroll
      for (int r = 0; r < 4; ++r) {
#pragma unroll
        for (int x = 0; x < 4; ++x) acc[r][x] = fmaf(qa[r], kb[x], acc[r][x]);
      }
    }
    __syncthreads();
  }
  float* s = a.s + static_cast<int64_t>(bh) * a.s_q * a.s_k;
#pragma unroll
  for (int r = 0; r < 4; ++r) {
    const int i = i0 + ty * 4 + r;
    if (i >= a.s_q) continue;
    int lo, hi;
    key_range(i, a.s_q, a.s_k, a.window_left, a.window_right, &lo, &hi);
#pragma unroll
    for (int x = 0; x < 4; ++x) {
      const int j = j0 + tx * 4 + x;
      if (j < a.s_k) s[static_cast<int64_t>(i) * a.s_k + j] = (j >= lo && j < hi) ? a.scale * acc[r][x] : -INFINITY;
    }
  }
}

__device__ float block_reduce(float x, bool is_max, float* red) {
  x = is_max ? warp_max(x) : warp_sum(x);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  __syncthreads();  // red[] may still be read by the previous reduction
  if (lane == 0) red[warp] = x;
  __syncthreads();
  x = red[0];
  for (int w = 1; w < kThreads / 32; ++w) x = is_max ? fmaxf(x, red[w]) : x + red[w];
  return x;
}

// P = softmax(S) in place and LSE, one block per (b, h, i) row. A row with no visible key gets
// P = 0 and LSE = -inf.
__global__ void __launch_bounds__(kThreads) naive_softmax(const NaiveArgs a) {
  __shared__ float red[kThreads / 32];
  const int64_t row = blockIdx.x;  // (b·h)·s_q + i
  float* s = a.s + row * a.s_k;
  float mx = -INFINITY;
  for (int j = threadIdx.x; j < a.s_k; j += kThreads) mx = fmaxf(mx, s[j]);
  mx = block_reduce(mx, true, red);
  float sum = 0.f;
  if (mx != -INFINITY) {
    for (int j = threadIdx.x; j < a.s_k; j += kThreads) sum += expf(s[j] - mx);
  }
  sum = block_reduce(sum, false, red);
  const float inv = sum > 0.f ? 1.f / sum : 0.f;
  for (int j = threadIdx.x; j < a.s_k; j += kThreads) s[j] = mx == -INFINITY ? 0.f : expf(s[j] - mx) * inv;
  if (threadIdx.x == 0) a.lse[row] = sum > 0.f ? mx + logf(sum) : -INFINITY;
}

// O[b, i, h, :] = Σ_j P[bh, i, j] V[b, j, h_k, :]. Grid (d tiles, s_q tiles, b·h).
template <typename T>
__global__ void __launch_bounds__(kThreads) naive_pv(const NaiveArgs a) {
  const int bh = blockIdx.z, b = bh / a.h, hq = bh % a.h, hk = hq / a.group;
  const int i0 = blockIdx.y * kTile, c0 = blockIdx.x * kTile;
  const float* p = a.s + static_cast<int64_t>(bh) * a.s_q * a.s_k;
  const T* v = static_cast<const T*>(a.v) + b * a.vs.batch + hk * a.vs.head;
  T* o = static_cast<T*>(a.o) + b * a.os.batch + hq * a.os.head;
  __shared__ float sp[kDepth][kTile + 4];  // [j][i]
  __shared__ float sv[kDepth][kTile + 4];  // [j][c]
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  float acc[4][4] = {};
  for (int j0 = 0; j0 < a.s_k; j0 += kDepth) {
    for (int e = threadIdx.x; e < kTile * kDepth; e += kThreads) {
      const int r = e / kDepth, jj = e % kDepth;  // P: row r, key jj (coalesced along keys)
      const int i = i0 + r, j = j0 + jj;
      sp[jj][r] = (i < a.s_q && j < a.s_k) ? p[static_cast<int64_t>(i) * a.s_k + j] : 0.f;
      const int cj = e / kTile, cc = e % kTile;  // V: key cj, column cc (coalesced along d)
      const int vj = j0 + cj, col = c0 + cc;
      sv[cj][cc] = (vj < a.s_k && col < a.d) ? to_f(v[vj * a.vs.row + col]) : 0.f;
    }
    __syncthreads();
#pragma unroll
    for (int jj = 0; jj < kDepth; ++jj) {
      float pa[4], vb[4];
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        pa[r] = sp[jj][ty * 4 + r];
        vb[r] = sv[jj][tx * 4 + r];
      }
#pragma unroll
      for (int r = 0; r < 4; ++r) {
#pragma unroll
        for (int x = 0; x < 4; ++x) acc[r][x] = fmaf(pa[r], vb[x], acc[r][x]);
      }
    }
    __syncthreads();
  }
#pragma unroll
  for (int r = 0; r < 4; ++r) {
    const int i = i0 + ty * 4 + r;
    if (i >= a.s_q) continue;
#pragma unroll
    for (int x = 0; x < 4; ++x) {
      const int col = c0 + tx * 4 + x;
      if (col < a.d) o[i * a.os.row + col] = from_f<T>(acc[r][x]);
    }
  }
}

template <typename T>
void run_naive(const NaiveArgs& a, int b, cudaStream_t stream) {
  const int bh = b * a.h;
  const dim3 grid_s((a.s_k + kTile - 1) / kTile, (a.s_q + kTile - 1) / kTile, bh);
  if (a.s_k > 0) {  // with no keys every row is empty: softmax writes LSE -inf, P·V writes zeros
    naive_scores<T><<<grid_s, kThreads, 0, stream>>>(a);
    check(cudaGetLastError(), "naive_forward scores kernel launch");
  }
  naive_softmax<<<static_cast<unsigned>(static_cast<int64_t>(bh) * a.s_q), kThreads, 0, stream>>>(a);
  check(cudaGetLastError(), "naive_forward softmax kernel launch");
  const dim3 grid_o((a.d + kTile - 1) / kTile, (a.s_q + kTile - 1) / kTile, bh);
  naive_pv<T><<<grid_o, kThreads, 0, stream>>>(a);
  check(cudaGetLastError(), "naive_forward P·V kernel launch");
}

}  // namespace

void naive_forward(int device, const AttnParams& p, Stream stream_handle) {
  check(cudaSetDevice(device), "cudaSetDevice");
  const cudaStream_t stream = static_cast<cudaStream_t>(stream_handle);
  if (p.dtype != DType::kFloat16 && p.dtype != DType::kBFloat16) {
    fail(std::string("naive_forward takes float16 or bfloat16 on CUDA, got ") + dtype_name(p.dtype));
  }
  if (p.b < 0 || p.s_q < 0 || p.s_k < 0 || p.h <= 0 || p.h_k <= 0 || p.h % p.h_k != 0 || p.d <= 0) {
    fail("naive_forward: bad sizes");
  }
  if (p.b == 0 || p.s_q == 0) return;
  if (static_cast<int64_t>(p.b) * p.h > 65535 || p.s_q > 65535 * kTile) {
    fail("naive_forward: b·h must be at most 65535 and s_q at most " + std::to_string(65535 * kTile));
  }
  NaiveArgs a;
  a.q = p.q; a.k = p.k; a.v = p.v; a.o = p.out; a.lse = p.lse;
  a.qs = p.q_stride; a.ks = p.k_stride; a.vs = p.v_stride; a.os = p.o_stride;
  a.s_q = p.s_q; a.s_k = p.s_k; a.h = p.h; a.group = p.h / p.h_k; a.d = p.d;
  a.window_left = p.window_left; a.window_right = p.window_right;
  a.scale = p.scale;
  const size_t bytes = sizeof(float) * static_cast<size_t>(p.b) * p.h * p.s_q * (p.s_k > 0 ? p.s_k : 1);
  check(cudaMallocAsync(reinterpret_cast<void**>(&a.s), bytes, stream),
            ("cudaMallocAsync(" + std::to_string(bytes) + " bytes for the naive score matrix)").c_str());
  try {
    if (p.dtype == DType::kFloat16) {
      run_naive<__half>(a, p.b, stream);
    } else {
      run_naive<__nv_bfloat16>(a, p.b, stream);
    }
  } catch (...) {
    (void)cudaFreeAsync(a.s, stream);
    throw;
  }
  check(cudaFreeAsync(a.s, stream), "cudaFreeAsync(naive score matrix)");
}

}  // namespace flashattn::cuda
