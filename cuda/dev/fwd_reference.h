// fwd_reference.h — the pieces the forward dev harnesses share (cuda/dev/fwd_check.cu for sm80,
// cuda/dev/sm90_fwd_check.cu for sm90): random cases, the float64 reference and "naive in dtype"
// bound, device copies in (b, s, h, d) or (b, h, s, d) layout, poisoning, the comparison rule, and
// the CUDA-event timer over rotating input sets. Included by exactly one translation unit per
// harness binary, so its definitions live in an unnamed namespace.
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "dev/harness.h"
#include "params.h"

#define CK(call)                                                                                    \
  do {                                                                                              \
    cudaError_t e_ = (call);                                                                        \
    if (e_ != cudaSuccess) {                                                                        \
      std::fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_)); \
      std::exit(2);                                                                                 \
    }                                                                                               \
  } while (0)

namespace {

using flashattn::AttnParams;
using flashattn::DType;
using flashattn::Strides;

// ---------------------------------------------------------------------------------------------
// dtype helpers (host)
using flashattn::dev::from_bits;
using flashattn::dev::round_to;
using flashattn::dev::to_bits;
const char* dt_short(DType dt) { return dt == DType::kFloat16 ? "fp16" : "bf16"; }

Strides layout_strides(bool bhsd, int s, int heads, int d) {
  if (!bhsd) return flashattn::contiguous_strides(s, heads, d);
  Strides st;
  st.row = d;
  st.head = static_cast<int64_t>(s) * d;
  st.batch = static_cast<int64_t>(heads) * s * d;
  return st;
}

// ---------------------------------------------------------------------------------------------
// One correctness case.
struct Case {
  int b, s_q, s_k, h, h_k, d;
  DType dt;
  int wl, wr;  // window; causal = (-1, 0); none = (-1, -1)
  bool bhsd;
  std::string mask_name() const {
    if (wl < 0 && wr < 0) return "none";
    if (wl < 0 && wr == 0) return "causal";
    return "win[" + std::to_string(wl) + "," + std::to_string(wr) + "]";
  }
};

// The grid of correctness cases the sm90 harnesses walk: head dims 64, 128, 256, 32, 96, 192; two
// dtypes (in the order given); no mask, causal, a window; with {s_q, s_k} pairs (tails of one row,
// of a block, odd lengths, s_q > s_k, which leaves rows empty under a causal mask, and s_q < s_k),
// head ratios (MHA, GQA, MQA) and windows rotating over the cases. f(case, n) gets each with its
// index n.
template <typename F>
void for_each_grid_case(DType first, DType second, F&& f) {
  const int pairs[][2] = {{1, 1}, {17, 17}, {1000, 1000}, {17, 1000}, {1000, 17}, {129, 300}, {300, 129}, {1, 1000}};
  const int heads[][2] = {{4, 4}, {4, 2}, {4, 1}, {6, 3}};
  const int wins[][2] = {{50, 7}, {0, 0}, {200, -1}, {-1, 30}, {128, 0}, {3, 100}};
  int n = 0;
  for (int d : {64, 128, 256, 32, 96, 192})
    for (DType dt : {first, second})
      for (int m = 0; m < 3; ++m) {
        const int* sp = pairs[n % 8];
        const int* hh = heads[n % 4];
        Case c{1 + n % 2, sp[0], sp[1], hh[0], hh[1], d, dt, -1, -1, n % 3 == 2};
        if (m == 1) { c.wl = -1; c.wr = 0; }
        if (m == 2) { c.wl = wins[n % 6][0]; c.wr = wins[n % 6][1]; }
        f(c, n);
        ++n;
      }
}

struct HostData {
  std::vector<double> q, k, v;          // logical (b, s, heads, d), values exactly representable in dt
  std::vector<uint16_t> qb, kb, vb;     // same, as dtype bits
  std::vector<double> o_ref, o_naive;   // (b, s_q, h, d)
  std::vector<double> lse_ref;          // (b, h, s_q)
};

void fill_host(std::mt19937_64& rng, int n, DType dt, std::vector<double>& val, std::vector<uint16_t>& bits) {
  std::normal_distribution<float> nd(0.f, 1.f);
  val.resize(n);
  bits.resize(n);
  for (int i = 0; i < n; ++i) {
    bits[i] = to_bits(nd(rng), dt);
    val[i] = from_bits(bits[i], dt);
  }
}

// float64 reference and "naive in dtype" (P rounded to dt before P·V, O rounded to dt).
// round_p, if given, rounds P instead (the e4m3 harness: P as the fp8 kernel stores it).
void reference(const Case& c, float scale, HostData& hd, double (*round_p)(double) = nullptr) {
  const int64_t rows = static_cast<int64_t>(c.b) * c.h * c.s_q;
  hd.o_ref.assign(static_cast<size_t>(c.b) * c.s_q * c.h * c.d, 0.0);
  hd.o_naive.assign(hd.o_ref.size(), 0.0);
  hd.lse_ref.assign(rows, 0.0);
  std::atomic<int64_t> next{0};
  auto worker = [&]() {
    std::vector<double> s(c.s_k), p(c.s_k), acc(c.d), accn(c.d);
    for (;;) {
      const int64_t r = next.fetch_add(1);
      if (r >= rows) break;
      const int i = static_cast<int>(r % c.s_q);
      const int hq = static_cast<int>((r / c.s_q) % c.h);
      const int b = static_cast<int>(r / (static_cast<int64_t>(c.s_q) * c.h));
      const int hk = hq / (c.h / c.h_k);
      int lo, hi;
      flashattn::key_range(i, c.s_q, c.s_k, c.wl, c.wr, &lo, &hi);
      const size_t o_off = ((static_cast<size_t>(b) * c.s_q + i) * c.h + hq) * c.d;
      const size_t lse_off = (static_cast<size_t>(b) * c.h + hq) * c.s_q + i;
      if (lo >= hi) {
        hd.lse_ref[lse_off] = -INFINITY;
        continue;  // o stays 0
      }
      const double* qr = &hd.q[o_off];
      double mx = -INFINITY;
      for (int j = lo; j < hi; ++j) {
        const double* kr = &hd.k[((static_cast<size_t>(b) * c.s_k + j) * c.h_k + hk) * c.d];
        double dot = 0;
        for (int x = 0; x < c.d; ++x) dot += qr[x] * kr[x];
        s[j] = dot * scale;
        mx = std::max(mx, s[j]);
      }
      double sum = 0;
      for (int j = lo; j < hi; ++j) {
        p[j] = std::exp(s[j] - mx);
        sum += p[j];
      }
      hd.lse_ref[lse_off] = mx + std::log(sum);
      std::fill(acc.begin(), acc.end(), 0.0);
      std::fill(accn.begin(), accn.end(), 0.0);
      for (int j = lo; j < hi; ++j) {
        const double* vr = &hd.v[((static_cast<size_t>(b) * c.s_k + j) * c.h_k + hk) * c.d];
        const double pj = p[j] / sum;
        const double pn = round_p ? round_p(pj) : round_to(pj, c.dt);
        for (int x = 0; x < c.d; ++x) {
          acc[x] += pj * vr[x];
          accn[x] += pn * vr[x];
        }
      }
      for (int x = 0; x < c.d; ++x) {
        hd.o_ref[o_off + x] = acc[x];
        hd.o_naive[o_off + x] = round_to(accn[x], c.dt);
      }
    }
  };
  const int nt = std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::thread> ts;
  for (int t = 0; t < nt; ++t) ts.emplace_back(worker);
  for (auto& t : ts) t.join();
}

// Device copies of one case's tensors in its layout.
struct DeviceCase {
  AttnParams p;
  void *q = nullptr, *k = nullptr, *v = nullptr, *o = nullptr;
  float* lse = nullptr;
  size_t nq = 0, nk = 0;
  ~DeviceCase() {
    cudaFree(q); cudaFree(k); cudaFree(v); cudaFree(o); cudaFree(lse);
  }
};

// Element bits (uint16_t, or uint8_t for e4m3) from logical (b, s, heads, d) into the layout `st`.
template <typename Bits>
void upload(const std::vector<Bits>& bits, int b, int s, int heads, int d, const Strides& st, void* dst) {
  std::vector<Bits> stage(static_cast<size_t>(b) * s * heads * d);
  for (int bi = 0; bi < b; ++bi)
    for (int si = 0; si < s; ++si)
      for (int hi = 0; hi < heads; ++hi)
        for (int x = 0; x < d; ++x)
          stage[bi * st.batch + si * st.row + hi * st.head + x] = bits[((static_cast<size_t>(bi) * s + si) * heads + hi) * d + x];
  CK(cudaMemcpy(dst, stage.data(), stage.size() * sizeof(Bits), cudaMemcpyHostToDevice));
}

// Sizes, mask and strides of case c in dc.p, and device buffers for q, k, v (`in_bytes` per
// element) and o (2 bytes), lse; nothing uploaded yet.
void alloc_device_case(const Case& c, float scale, int in_bytes, DeviceCase& dc) {
  AttnParams& p = dc.p;
  p.b = c.b; p.s_q = c.s_q; p.s_k = c.s_k; p.h = c.h; p.h_k = c.h_k; p.d = c.d;
  p.dtype = c.dt; p.scale = scale; p.window_left = c.wl; p.window_right = c.wr;
  p.q_stride = layout_strides(c.bhsd, c.s_q, c.h, c.d);
  p.o_stride = p.q_stride;
  p.k_stride = layout_strides(c.bhsd, c.s_k, c.h_k, c.d);
  p.v_stride = p.k_stride;
  dc.nq = static_cast<size_t>(c.b) * c.s_q * c.h * c.d;
  dc.nk = static_cast<size_t>(c.b) * c.s_k * c.h_k * c.d;
  CK(cudaMalloc(&dc.q, dc.nq * in_bytes));
  CK(cudaMalloc(&dc.k, dc.nk * in_bytes));
  CK(cudaMalloc(&dc.v, dc.nk * in_bytes));
  CK(cudaMalloc(&dc.o, dc.nq * 2));
  CK(cudaMalloc(&dc.lse, sizeof(float) * c.b * c.h * c.s_q));
  p.q = dc.q; p.k = dc.k; p.v = dc.v; p.out = dc.o; p.lse = dc.lse;
}

void make_device_case(const Case& c, float scale, const HostData& hd, DeviceCase& dc) {
  alloc_device_case(c, scale, 2, dc);
  const AttnParams& p = dc.p;
  upload(hd.qb, c.b, c.s_q, c.h, c.d, p.q_stride, dc.q);
  upload(hd.kb, c.b, c.s_k, c.h_k, c.d, p.k_stride, dc.k);
  upload(hd.vb, c.b, c.s_k, c.h_k, c.d, p.v_stride, dc.v);
}

void poison(DeviceCase& dc, const Case& c) {
  CK(cudaMemset(dc.o, 0xff, dc.nq * 2));  // 0xffff is NaN in fp16 and bf16
  CK(cudaMemset(dc.lse, 0xff, sizeof(float) * c.b * c.h * c.s_q));  // NaN
}

struct Score {
  double err = 0, bound_err = 0, lse_err = 0;
  long nan = 0, bad_empty = 0;
  bool pass = false;
};

// One (row, head) into the score: its LSE (`lr` reference, `lo` ours) and its d outputs (`out`
// ours as dtype bits, `ref` / `naive` the reference rows).
void score_row(Score& sc, DType dt, int d, double lr, float lo, const uint16_t* out, const double* ref, const double* naive) {
  const bool empty = std::isinf(lr);
  if (std::isnan(lo)) ++sc.nan;
  if (empty) {
    if (!(std::isinf(lo) && lo < 0)) ++sc.bad_empty;
  } else {
    sc.lse_err = std::max(sc.lse_err, std::fabs(lo - lr));
  }
  for (int x = 0; x < d; ++x) {
    const float got = from_bits(out[x], dt);
    if (std::isnan(got)) { ++sc.nan; continue; }
    if (empty && got != 0.f) ++sc.bad_empty;
    sc.err = std::max(sc.err, std::fabs(got - ref[x]));
    sc.bound_err = std::max(sc.bound_err, std::fabs(naive[x] - ref[x]));
  }
}

bool passes(const Score& sc) {
  return sc.nan == 0 && sc.bad_empty == 0 && sc.err <= 2 * sc.bound_err + 1e-5 && sc.lse_err <= 1e-3;
}

Score compare(const Case& c, const HostData& hd, const DeviceCase& dc) {
  Score sc;
  std::vector<uint16_t> ob(dc.nq);
  std::vector<float> lse(static_cast<size_t>(c.b) * c.h * c.s_q);
  CK(cudaMemcpy(ob.data(), dc.o, dc.nq * 2, cudaMemcpyDeviceToHost));
  CK(cudaMemcpy(lse.data(), dc.lse, lse.size() * 4, cudaMemcpyDeviceToHost));
  const Strides& st = dc.p.o_stride;
  for (int b = 0; b < c.b; ++b)
    for (int i = 0; i < c.s_q; ++i)
      for (int hq = 0; hq < c.h; ++hq) {
        const size_t ref_off = ((static_cast<size_t>(b) * c.s_q + i) * c.h + hq) * c.d;
        const size_t lse_off = (static_cast<size_t>(b) * c.h + hq) * c.s_q + i;
        score_row(sc, c.dt, c.d, hd.lse_ref[lse_off], lse[lse_off], &ob[b * st.batch + i * st.row + hq * st.head],
                  &hd.o_ref[ref_off], &hd.o_naive[ref_off]);
      }
  sc.pass = passes(sc);
  return sc;
}

// ---------------------------------------------------------------------------------------------
// Timing
__global__ void fill_normal_bf16(__nv_bfloat16* p, size_t n, uint64_t seed) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n; i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    uint64_t z = seed * 0x9e3779b97f4a7c15ull + i;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    const float u1 = (static_cast<float>(z >> 40) + 1.f) * (1.f / 16777216.f);
    const float u2 = static_cast<float>((z >> 8) & 0xffffff) * (1.f / 16777216.f);
    p[i] = __float2bfloat16_rn(sqrtf(-2.f * logf(u1)) * cospif(2.f * u2));
  }
}

struct TimeShape {
  int b, s, h, d;
  int wl, wr;
};

// Exact count of visible (query, key) pairs per (b, h), for the window's effective FLOP/s.
double visible_pairs(int s_q, int s_k, int wl, int wr) {
  double n = 0;
  for (int i = 0; i < s_q; ++i) {
    int lo, hi;
    flashattn::key_range(i, s_q, s_k, wl, wr, &lo, &hi);
    n += hi - lo;
  }
  return n;
}

// Median ms of `iters` runs after `warmup`; run(i) enqueues run i on `stream`.
template <typename F>
float median_ms_of(cudaStream_t stream, F&& run, int warmup = 5, int iters = 25) {
  for (int i = 0; i < warmup; ++i) run(i);
  std::vector<cudaEvent_t> ev(2 * iters);
  for (auto& e : ev) CK(cudaEventCreate(&e));
  for (int i = 0; i < iters; ++i) {
    CK(cudaEventRecord(ev[2 * i], stream));
    run(i);
    CK(cudaEventRecord(ev[2 * i + 1], stream));
  }
  CK(cudaStreamSynchronize(stream));
  CK(cudaGetLastError());
  std::vector<float> ms(iters);
  for (int i = 0; i < iters; ++i) CK(cudaEventElapsedTime(&ms[i], ev[2 * i], ev[2 * i + 1]));
  for (auto& e : ev) CK(cudaEventDestroy(e));
  std::sort(ms.begin(), ms.end());
  return ms[iters / 2];
}

struct Timer {
  static constexpr int kSets = 3;
  std::vector<void*> bufs;
  AttnParams sets[kSets];
  cudaStream_t stream;
  explicit Timer(const TimeShape& t) {
    CK(cudaStreamCreate(&stream));
    const size_t n = static_cast<size_t>(t.b) * t.s * t.h * t.d;
    void* out;
    float* lse;
    CK(cudaMalloc(&out, n * 2));
    CK(cudaMalloc(reinterpret_cast<void**>(&lse), sizeof(float) * t.b * t.h * t.s));
    bufs.push_back(out);
    bufs.push_back(lse);
    for (int s = 0; s < kSets; ++s) {
      AttnParams& p = sets[s];
      p.b = t.b; p.s_q = p.s_k = t.s; p.h = p.h_k = t.h; p.d = t.d;
      p.dtype = DType::kBFloat16;
      p.scale = 1.f / std::sqrt(static_cast<float>(t.d));
      p.window_left = t.wl; p.window_right = t.wr;
      p.q_stride = p.k_stride = p.v_stride = p.o_stride = flashattn::contiguous_strides(t.s, t.h, t.d);
      void* qkv[3];
      for (int j = 0; j < 3; ++j) {
        CK(cudaMalloc(&qkv[j], n * 2));
        bufs.push_back(qkv[j]);
        fill_normal_bf16<<<4096, 256, 0, stream>>>(static_cast<__nv_bfloat16*>(qkv[j]), n, 17 + 3 * s + j);
        CK(cudaGetLastError());
      }
      p.q = qkv[0]; p.k = qkv[1]; p.v = qkv[2]; p.out = out; p.lse = lse;
    }
    CK(cudaStreamSynchronize(stream));
  }
  ~Timer() {
    for (void* b : bufs) cudaFree(b);
    cudaStreamDestroy(stream);
  }
  // Median ms of `iters` runs after `warmup`, rotating the input sets.
  template <typename F>
  float median_ms(F&& launch, int warmup = 5, int iters = 25) {
    return median_ms_of(stream, [&](int i) { launch(sets[i % kSets], stream); }, warmup, iters);
  }
};

double fwd_flops(const TimeShape& t) {
  const double full = 4.0 * t.b * t.h * static_cast<double>(t.s) * t.s * t.d;
  if (t.wl < 0 && t.wr < 0) return full;
  if (t.wl < 0 && t.wr == 0) return full / 2;  // the papers' convention for causal
  return 4.0 * t.b * t.h * t.d * visible_pairs(t.s, t.s, t.wl, t.wr);
}

}  // namespace
