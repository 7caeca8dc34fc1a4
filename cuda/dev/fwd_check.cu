// fwd_check.cu — stand-alone dev harness for the sm80 forward (not part of the addon; CMake
// excludes cuda/dev/). Build with cuda/dev/fwd_build.sh; history and verdicts of every kernel
// version are in docs/perf-notes.md, "Forward (sm80)".
//
//   fwd_check [--check] [--variants] [--time] [--bench] [--small]
//     --check     forward() and naive_forward() against a float64 CPU reference over head dims
//                 32..256 (and 40, 80), fp16/bf16, none/causal/window, GQA, seqlens 1..4097,
//                 contiguous and (b, h, s, d) strides. Rule: max|ours - ref| <= 2 max|naive in
//                 dtype - ref| + 1e-5, no NaN, outputs poisoned (NaN) before every run, empty
//                 rows O = 0 and LSE = -inf exactly, |LSE - ref| <= 1e-3.
//     --variants  check, then time, the tile shapes of dev/fwd_variants.cu (bf16)
//     --time      the bench shapes through forward(): batch·seqlen 16k, hidden 2048, d 64/128/256,
//                 seqlen 512..16k, causal and not, bf16, and window [4096, 0] at 16k; median of 25
//                 runs after 5 warm-ups, rotating 3 input sets; prints TFLOP/s
//     --bench     cuda::bench() on two shapes (forward and the naive baseline)
//     --ceilings  mma.sync throughput with operands in registers / B from shared memory
//     --small     tiny cases only (for compute-sanitizer)
//   no flag: --ceilings --check --time --bench
#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "api.h"
#include "sm80/mma.h"
#include "dev/fwd_variants.h"
#include "dev/harness.h"
#include "params.h"
#include "sm80/fwd_launch.cuh"
#include "sm80/launch.h"

using flashattn::AttnParams;
using flashattn::DType;
using flashattn::Strides;

// The harness links without the backward engineer's files; these weak stand-ins make select.cu
// and bench.cu link, and a real backward, when linked, replaces them.
namespace flashattn::sm80 {
__attribute__((weak)) size_t bwd_smem_bytes(int) { return 0; }
__attribute__((weak)) void run_bwd(const AttnParams&, int, cudaStream_t) {}
}  // namespace flashattn::sm80
namespace flashattn::cuda {
__attribute__((weak)) void backward(int, const AttnParams&, Stream) {
  throw Error("backward is not linked into fwd_check", -1, false);
}
}  // namespace flashattn::cuda

#define CK(call)                                                                                    \
  do {                                                                                              \
    cudaError_t e_ = (call);                                                                        \
    if (e_ != cudaSuccess) {                                                                        \
      std::fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_)); \
      std::exit(2);                                                                                 \
    }                                                                                               \
  } while (0)

namespace {

using flashattn::sm80::FwdConfig;
using flashattn::sm80::FwdTier;

// ---------------------------------------------------------------------------------------------
// The distinct tiles of each compiled head dim (FwdConfig's Full / Masked / Compact), by name.
template <typename Tile>
std::string tile_name() {
  char buf[96];
  std::snprintf(buf, sizeof buf, "%dx%d w%d %s s%d %s (%d KB)", Tile::kBlockM, Tile::kBlockN, Tile::kNWarps,
                Tile::kQInRegs ? "qreg" : "qsmem", Tile::kStages, Tile::kSchedule == flashattn::sm80::kMbar ? "mbar" : "plain",
                Tile::kSmemBytes / 1024);
  return buf;
}
struct TierInfo {
  FwdTier tier;
  const char* label;
  std::string name;
};
template <int D>
std::vector<TierInfo> tiers_of() {
  using C = FwdConfig<D>;
  std::vector<TierInfo> t{{FwdTier::kFull, "full", tile_name<typename C::Full>()}};
  if (!std::is_same_v<typename C::Masked, typename C::Full>) t.push_back({FwdTier::kMasked, "masked", tile_name<typename C::Masked>()});
  if (!std::is_same_v<typename C::Compact, typename C::Full> && !std::is_same_v<typename C::Compact, typename C::Masked>) {
    t.push_back({FwdTier::kCompact, "compact", tile_name<typename C::Compact>()});
  }
  return t;
}
std::vector<TierInfo> tiers_for(int khd) {
  switch (khd) {
    case 32: return tiers_of<32>();
    case 64: return tiers_of<64>();
    case 96: return tiers_of<96>();
    case 128: return tiers_of<128>();
    case 192: return tiers_of<192>();
    case 256: return tiers_of<256>();
  }
  return {};
}

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
void reference(const Case& c, float scale, HostData& hd) {
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
        const double pn = round_to(pj, c.dt);
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

void upload(const std::vector<uint16_t>& bits, int b, int s, int heads, int d, const Strides& st, void* dst) {
  std::vector<uint16_t> stage(static_cast<size_t>(b) * s * heads * d);
  for (int bi = 0; bi < b; ++bi)
    for (int si = 0; si < s; ++si)
      for (int hi = 0; hi < heads; ++hi)
        for (int x = 0; x < d; ++x)
          stage[bi * st.batch + si * st.row + hi * st.head + x] = bits[((static_cast<size_t>(bi) * s + si) * heads + hi) * d + x];
  CK(cudaMemcpy(dst, stage.data(), stage.size() * 2, cudaMemcpyHostToDevice));
}

void make_device_case(const Case& c, float scale, const HostData& hd, DeviceCase& dc) {
  AttnParams& p = dc.p;
  p.b = c.b; p.s_q = c.s_q; p.s_k = c.s_k; p.h = c.h; p.h_k = c.h_k; p.d = c.d;
  p.dtype = c.dt; p.scale = scale; p.window_left = c.wl; p.window_right = c.wr;
  p.q_stride = layout_strides(c.bhsd, c.s_q, c.h, c.d);
  p.o_stride = p.q_stride;
  p.k_stride = layout_strides(c.bhsd, c.s_k, c.h_k, c.d);
  p.v_stride = p.k_stride;
  dc.nq = static_cast<size_t>(c.b) * c.s_q * c.h * c.d;
  dc.nk = static_cast<size_t>(c.b) * c.s_k * c.h_k * c.d;
  CK(cudaMalloc(&dc.q, dc.nq * 2));
  CK(cudaMalloc(&dc.k, dc.nk * 2));
  CK(cudaMalloc(&dc.v, dc.nk * 2));
  CK(cudaMalloc(&dc.o, dc.nq * 2));
  CK(cudaMalloc(&dc.lse, sizeof(float) * c.b * c.h * c.s_q));
  upload(hd.qb, c.b, c.s_q, c.h, c.d, p.q_stride, dc.q);
  upload(hd.kb, c.b, c.s_k, c.h_k, c.d, p.k_stride, dc.k);
  upload(hd.vb, c.b, c.s_k, c.h_k, c.d, p.v_stride, dc.v);
  p.q = dc.q; p.k = dc.k; p.v = dc.v; p.out = dc.o; p.lse = dc.lse;
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
        const double lr = hd.lse_ref[(static_cast<size_t>(b) * c.h + hq) * c.s_q + i];
        const float lo = lse[(static_cast<size_t>(b) * c.h + hq) * c.s_q + i];
        const bool empty = std::isinf(lr);
        if (std::isnan(lo)) ++sc.nan;
        if (empty) {
          if (!(std::isinf(lo) && lo < 0)) ++sc.bad_empty;
        } else {
          sc.lse_err = std::max(sc.lse_err, std::fabs(lo - lr));
        }
        for (int x = 0; x < c.d; ++x) {
          const float got = from_bits(ob[b * st.batch + i * st.row + hq * st.head + x], c.dt);
          if (std::isnan(got)) { ++sc.nan; continue; }
          if (empty && got != 0.f) ++sc.bad_empty;
          sc.err = std::max(sc.err, std::fabs(got - hd.o_ref[ref_off + x]));
          sc.bound_err = std::max(sc.bound_err, std::fabs(hd.o_naive[ref_off + x] - hd.o_ref[ref_off + x]));
        }
      }
  sc.pass = sc.nan == 0 && sc.bad_empty == 0 && sc.err <= 2 * sc.bound_err + 1e-5 && sc.lse_err <= 1e-3;
  return sc;
}

std::vector<Case> check_cases(bool small) {
  std::vector<Case> cs;
  const DType dts[2] = {DType::kFloat16, DType::kBFloat16};
  if (small) {
    // Tiny: one per instantiation plus masks, GQA, tails, strides (compute-sanitizer runs these).
    const int dims[] = {32, 40, 64, 96, 128, 192, 256};
    int n = 0;
    for (int d : dims)
      for (DType dt : dts) {
        const int wl[3] = {-1, -1, 20}, wr[3] = {-1, 0, 3};
        const int m = n % 3;
        cs.push_back({1 + n % 2, 33 + n % 5, 77 - n % 7, 4, n % 2 ? 2 : 4, d, dt, wl[m], wr[m], n % 3 == 2});
        ++n;
      }
    cs.push_back({1, 1, 1, 2, 1, 128, DType::kBFloat16, -1, 0, false});
    cs.push_back({1, 70, 5, 2, 2, 64, DType::kFloat16, -1, 0, false});  // empty rows
    return cs;
  }
  const int dims[] = {32, 40, 64, 80, 96, 128, 192, 256};
  const int pairs[][2] = {{1, 17}, {17, 1}, {17, 1000}, {1000, 17}, {1000, 4097}, {4097, 1000}, {1, 4097}, {4097, 17}};
  const int heads[][2] = {{4, 4}, {4, 2}, {6, 1}, {2, 2}};
  const int wins[][2] = {{100, 0}, {37, 5}, {256, -1}, {-1, 64}, {0, 0}, {500, 20}};
  int n = 0;
  for (int d : dims)
    for (DType dt : dts)
      for (int m = 0; m < 3; ++m) {
        const int* sp = pairs[n % 8];
        const int* hh = heads[n % 4];
        const bool long_case = sp[0] > 1000 || sp[1] > 1000;
        Case c{long_case ? 1 : 2, sp[0], sp[1], long_case ? std::min(hh[0], 4) : hh[0], hh[1], d, dt, -1, -1, n % 3 == 2};
        if (long_case && c.h % c.h_k) c.h_k = 1;
        if (m == 1) { c.wl = -1; c.wr = 0; }
        if (m == 2) { c.wl = wins[n % 6][0]; c.wr = wins[n % 6][1]; }
        cs.push_back(c);
        ++n;
      }
  // Long square-ish ones and the single-element edge.
  cs.push_back({1, 4097, 4097, 2, 1, 128, DType::kBFloat16, -1, 0, false});
  cs.push_back({1, 4097, 4000, 2, 2, 64, DType::kFloat16, 1000, 0, true});
  cs.push_back({1, 1000, 1000, 2, 2, 256, DType::kBFloat16, -1, -1, false});
  cs.push_back({2, 1, 1, 3, 1, 32, DType::kFloat16, -1, 0, false});
  cs.push_back({1, 517, 4097, 8, 2, 128, DType::kFloat16, 3000, 0, false});
  return cs;
}

int run_checks(bool small, std::mt19937_64& rng) {
  std::printf("\n== correctness: forward(), every tile of the head dim (\"tiles\": worst), naive_forward() vs float64\n"
              "   (pass: err <= bound = 2 x naive-in-dtype err + 1e-5, no NaN, empty rows exact, |lse err| <= 1e-3)\n");
  std::printf("%-4s %-4s %-13s %2s %5s %5s %5s %-4s | %-9s %-9s %-9s %-9s | %-9s %-4s | %s\n", "d", "dt", "mask", "b", "s_q", "s_k",
              "h/hk", "lay", "flash", "tiles", "bound", "lse", "naive", "", "result");
  int fails = 0;
  cudaStream_t stream;
  CK(cudaStreamCreate(&stream));
  for (const Case& c : check_cases(small)) {
    const float scale = 1.f / std::sqrt(static_cast<float>(c.d));
    HostData hd;
    fill_host(rng, c.b * c.s_q * c.h * c.d, c.dt, hd.q, hd.qb);
    fill_host(rng, c.b * c.s_k * c.h_k * c.d, c.dt, hd.k, hd.kb);
    fill_host(rng, c.b * c.s_k * c.h_k * c.d, c.dt, hd.v, hd.vb);
    reference(c, scale, hd);
    DeviceCase dc;
    make_device_case(c, scale, hd, dc);
    Score fs, ns, ts;  // forward(), naive_forward(), worst forced tier
    ts.pass = true;
    std::string err;
    try {
      poison(dc, c);
      flashattn::cuda::forward(0, dc.p, stream);
      CK(cudaStreamSynchronize(stream));
      fs = compare(c, hd, dc);
      poison(dc, c);
      flashattn::cuda::naive_forward(0, dc.p, stream);
      CK(cudaStreamSynchronize(stream));
      ns = compare(c, hd, dc);
      // Every tile of this head dim, not only the one forward() picks on this GPU.
      for (const TierInfo& t : tiers_for(flashattn::sm80::kernel_head_dim(c.d))) {
        poison(dc, c);
        flashattn::sm80::run_fwd_tier(dc.p, flashattn::sm80::kernel_head_dim(c.d), t.tier, stream);
        CK(cudaStreamSynchronize(stream));
        const Score one = compare(c, hd, dc);
        if (!one.pass) std::printf("     tier %s (%s) FAILS: err %.2e, %ld NaN\n", t.label, t.name.c_str(), one.err, one.nan);
        ts.pass = ts.pass && one.pass;
        ts.err = std::max(ts.err, one.err);
      }
    } catch (const std::exception& e) {
      err = e.what();
    }
    const bool ok = err.empty() && fs.pass && ns.pass && ts.pass;
    fails += !ok;
    char hh[16];
    std::snprintf(hh, sizeof hh, "%d/%d", c.h, c.h_k);
    std::printf("%-4d %-4s %-13s %2d %5d %5d %5s %-4s | %9.2e %9.2e %9.2e %9.2e | %9.2e %-4s | %s%s%s\n", c.d, dt_short(c.dt),
                c.mask_name().c_str(), c.b, c.s_q, c.s_k, hh, c.bhsd ? "bhsd" : "bshd", fs.err, ts.err, 2 * fs.bound_err + 1e-5,
                fs.lse_err, ns.err, ns.pass ? "ok" : "FAIL", ok ? "PASS" : "FAIL", err.empty() ? "" : " ", err.c_str());
    if (!ok && (fs.nan || fs.bad_empty)) std::printf("     flash: %ld NaN, %ld wrong empty-row values\n", fs.nan, fs.bad_empty);
    if (!ok && (ns.nan || ns.bad_empty)) std::printf("     naive: %ld NaN, %ld wrong empty-row values\n", ns.nan, ns.bad_empty);
    std::fflush(stdout);
  }
  CK(cudaStreamDestroy(stream));
  std::printf("correctness: %d failing case(s)\n", fails);
  return fails;
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
    for (int i = 0; i < warmup; ++i) launch(sets[i % kSets], stream);
    std::vector<cudaEvent_t> ev(2 * iters);
    for (auto& e : ev) CK(cudaEventCreate(&e));
    for (int i = 0; i < iters; ++i) {
      CK(cudaEventRecord(ev[2 * i], stream));
      launch(sets[i % kSets], stream);
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
};

double fwd_flops(const TimeShape& t) {
  const double full = 4.0 * t.b * t.h * static_cast<double>(t.s) * t.s * t.d;
  if (t.wl < 0 && t.wr < 0) return full;
  if (t.wl < 0 && t.wr == 0) return full / 2;  // the papers' convention for causal
  return 4.0 * t.b * t.h * t.d * visible_pairs(t.s, t.s, t.wl, t.wr);
}

void launch_forward(const AttnParams& p, cudaStream_t s) { flashattn::cuda::forward(0, p, s); }

void run_timing() {
  std::printf("\n== forward() TFLOP/s, bf16, batch*seqlen = 16384, hidden 2048 (median of 25, 3 rotating input sets)\n");
  std::printf("%-5s %-7s %-7s %8s %8s %10s\n", "d", "seqlen", "causal", "batch", "ms", "TFLOP/s");
  double causal16k[257] = {};
  for (int d : {64, 128, 256}) {
    for (int causal = 0; causal < 2; ++causal) {
      for (int s = 512; s <= 16384; s *= 2) {
        const TimeShape t{16384 / s, s, 2048 / d, d, -1, causal ? 0 : -1};
        Timer tm(t);
        const float ms = tm.median_ms(launch_forward);
        if (causal && s == 16384) causal16k[d] = ms;
        std::printf("%-5d %-7d %-7s %8d %8.3f %10.1f\n", d, s, causal ? "yes" : "no", t.b, ms, fwd_flops(t) / (ms * 1e9));
        std::fflush(stdout);
      }
    }
  }
  std::printf("\n== every tile at seqlen 16k (batch 1, hidden 2048): TFLOP/s non-causal / causal\n");
  for (int d : {32, 64, 96, 128, 192, 256}) {
    const int h = std::max(1, 2048 / d);
    for (const TierInfo& ti : tiers_for(d)) {
      float tf[2];
      for (int causal = 0; causal < 2; ++causal) {
        const TimeShape t{1, 16384, h, d, -1, causal ? 0 : -1};
        Timer tm(t);
        const float ms = tm.median_ms([&](const AttnParams& p, cudaStream_t st) { flashattn::sm80::run_fwd_tier(p, d, ti.tier, st); });
        tf[causal] = static_cast<float>(fwd_flops(t) / (ms * 1e9));
      }
      std::printf("d%-4d %-8s %-34s %7.1f %7.1f\n", d, ti.label, ti.name.c_str(), tf[0], tf[1]);
      std::fflush(stdout);
    }
  }

  std::printf("\n== window [4096, 0] at seqlen 16k vs full causal (TFLOP/s over the visible pairs)\n");
  for (int d : {64, 128, 256}) {
    const TimeShape t{1, 16384, 2048 / d, d, 4096, 0};
    Timer tm(t);
    const float ms = tm.median_ms(launch_forward);
    std::printf("d%-4d window ms %8.3f  causal ms %8.3f  ratio %.3f  %6.1f TFLOP/s\n", d, ms, causal16k[d], ms / causal16k[d],
                fwd_flops(t) / (ms * 1e9));
  }
  std::printf("\n== other compiled head dims, seqlen 16k non-causal, hidden 2048 where divisible\n");
  for (int d : {32, 96, 192}) {
    const int h = std::max(1, 2048 / d);
    const TimeShape t{1, 16384, h, d, -1, -1};
    Timer tm(t);
    const float ms = tm.median_ms(launch_forward);
    std::printf("d%-4d h %3d  ms %8.3f  %6.1f TFLOP/s\n", d, h, ms, fwd_flops(t) / (ms * 1e9));
  }
  // Same version twice: the run-to-run spread that any difference between versions must beat.
  {
    const TimeShape t{1, 16384, 16, 128, -1, -1};
    Timer tm(t);
    const float a = tm.median_ms(launch_forward), b = tm.median_ms(launch_forward);
    std::printf("\nrepeat d128 16k non-causal: %.3f ms, %.3f ms (spread %.1f%%)\n", a, b, 100.0 * std::fabs(a - b) / std::min(a, b));
  }
}

// ---------------------------------------------------------------------------------------------
// Variants: each checked on two cases (vs float64), then timed at seqlen 16k and 2k.
int run_variants(std::mt19937_64& rng) {
  std::printf("\n== tile variants (bf16): check vs float64, then ms / TFLOP/s (hidden 2048)\n");
  int fails = 0;
  const auto vars = fwd_variants();
  int smem_optin = 0;
  CK(cudaDeviceGetAttribute(&smem_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, 0));
  cudaStream_t stream;
  CK(cudaStreamCreate(&stream));
  for (int d : {32, 64, 96, 128, 192, 256}) {
    if (std::none_of(vars.begin(), vars.end(), [d](const FwdVariant& v) { return v.head_dim == d; })) continue;
    const Case cases[2] = {{1, 1000, 1037, 4, 2, d, DType::kBFloat16, -1, -1, false},
                           {2, 1037, 1000, 2, 1, d, DType::kBFloat16, 300, 0, true}};
    HostData hds[2];
    for (int i = 0; i < 2; ++i) {
      const Case& c = cases[i];
      fill_host(rng, c.b * c.s_q * c.h * c.d, c.dt, hds[i].q, hds[i].qb);
      fill_host(rng, c.b * c.s_k * c.h_k * c.d, c.dt, hds[i].k, hds[i].kb);
      fill_host(rng, c.b * c.s_k * c.h_k * c.d, c.dt, hds[i].v, hds[i].vb);
      reference(c, 1.f / std::sqrt(static_cast<float>(d)), hds[i]);
    }
    std::printf("%-36s %6s | %-9s %-9s | %9s %9s %9s %9s\n", "variant", "smemKB", "err", "bound", "16k nc", "16k c", "2k nc", "2k c");
    for (const auto& v : vars) {
      if (v.head_dim != d) continue;
      if (v.smem_bytes > smem_optin) {
        std::printf("%-36s %6d | skipped: needs more shared memory than %d\n", v.name, v.smem_bytes / 1024, smem_optin);
        continue;
      }
      double err = 0, bound = 0;
      bool ok = true;
      for (int i = 0; i < 2; ++i) {
        DeviceCase dc;
        make_device_case(cases[i], 1.f / std::sqrt(static_cast<float>(d)), hds[i], dc);
        poison(dc, cases[i]);
        v.launch(dc.p, stream);
        CK(cudaStreamSynchronize(stream));
        const Score sc = compare(cases[i], hds[i], dc);
        err = std::max(err, sc.err);
        bound = std::max(bound, 2 * sc.bound_err + 1e-5);
        ok = ok && sc.pass;
      }
      fails += !ok;
      float tf[4];
      int k = 0;
      for (int s : {16384, 2048})
        for (int causal = 0; causal < 2; ++causal) {
          const TimeShape t{16384 / s, s, 2048 / d, d, -1, causal ? 0 : -1};
          Timer tm(t);
          const float ms = tm.median_ms(v.launch);
          tf[k++] = static_cast<float>(fwd_flops(t) / (ms * 1e9));
        }
      std::printf("%-36s %6d | %9.2e %9.2e | %9.1f %9.1f %9.1f %9.1f %s\n", v.name, v.smem_bytes / 1024, err, bound, tf[0], tf[1],
                  tf[2], tf[3], ok ? "" : "FAIL");
      std::fflush(stdout);
    }
  }
  CK(cudaStreamDestroy(stream));
  return fails;
}

// ---------------------------------------------------------------------------------------------
// Ceilings: what mma.sync m16n8k16 (bf16, fp32 accumulate) reaches on this GPU with operands in
// registers, and with the B operand read by ldmatrix from shared memory the way Q Kᵀ reads K
// (16 or 32 query rows per warp). 8 warps per block, one block per SM, several waves.
__global__ void __launch_bounds__(256, 1) ceil_hmma(float* out, int iters) {
  using flashattn::sm80::Bf16;
  const uint32_t seed = 0x3c003c00u + threadIdx.x;  // small nonzero bf16 pairs
  uint32_t a[4] = {seed, seed ^ 1u, seed ^ 2u, seed ^ 3u};
  uint32_t b[2] = {seed ^ 4u, seed ^ 5u};
  float acc[8][4] = {};
  for (int i = 0; i < iters; ++i) {
#pragma unroll
    for (int j = 0; j < 8; ++j) flashattn::sm80::mma_16x8x16<Bf16>(acc[j], a, b);
  }
  float t = 0;
#pragma unroll
  for (int j = 0; j < 8; ++j) t += acc[j][0] + acc[j][1] + acc[j][2] + acc[j][3];
  if (t == 1234.5f) out[0] = t;
}

template <int kMTiles>
__global__ void __launch_bounds__(256, 1) ceil_ldsm_hmma(float* out, int iters) {
  using namespace flashattn::sm80;
  __shared__ __align__(128) uint16_t tile[64 * 128];  // (64 keys, 128 d) swizzled, like one K tile
  for (int i = threadIdx.x; i < 64 * 128; i += 256) tile[i] = static_cast<uint16_t>(0x3c00 + (i & 63));
  __syncthreads();
  const int lane = threadIdx.x % 32, lq = lane / 8, lr = lane % 8;
  const uint32_t base = smem_u32(tile) + ((lq >> 1) * 8 + lr) * 256;
  const int x = (lq & 1) ^ lr;
  uint32_t qa[kMTiles][8][4];
#pragma unroll
  for (int m = 0; m < kMTiles; ++m)
#pragma unroll
    for (int kk = 0; kk < 8; ++kk)
#pragma unroll
      for (int e = 0; e < 4; ++e) qa[m][kk][e] = 0x3c003c00u + threadIdx.x + kk + e + m;
  float acc[kMTiles][8][4] = {};
  for (int i = 0; i < iters; ++i) {
#pragma unroll
    for (int kk = 0; kk < 8; ++kk) {
#pragma unroll
      for (int p = 0; p < 4; ++p) {
        uint32_t kb[4];
        ldmatrix_x4(kb, base + p * 16 * 256 + ((((2 * kk) & ~7) | (((2 * kk) & 7) ^ x)) * 16));
        const uint32_t b0[2] = {kb[0], kb[1]}, b1[2] = {kb[2], kb[3]};
#pragma unroll
        for (int m = 0; m < kMTiles; ++m) {
          mma_16x8x16<Bf16>(acc[m][2 * p], qa[m][kk], b0);
          mma_16x8x16<Bf16>(acc[m][2 * p + 1], qa[m][kk], b1);
        }
      }
    }
  }
  float t = 0;
#pragma unroll
  for (int m = 0; m < kMTiles; ++m)
#pragma unroll
    for (int j = 0; j < 8; ++j) t += acc[m][j][0] + acc[m][j][3];
  if (t == 1234.5f) out[0] = t;
}

void run_ceilings() {
  std::printf("\n== ceilings: mma.sync m16n8k16 bf16 (8 warps/SM, 1 block/SM, 8 waves)\n");
  int sms = 0;
  CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  float* out;
  CK(cudaMalloc(&out, 4));
  cudaEvent_t e0, e1;
  CK(cudaEventCreate(&e0));
  CK(cudaEventCreate(&e1));
  const int blocks = sms * 8;
  auto time = [&](auto&& launch, double flops, const char* what) {
    launch();  // warm-up
    CK(cudaDeviceSynchronize());
    std::vector<float> ms(5);
    for (auto& m : ms) {
      CK(cudaEventRecord(e0));
      launch();
      CK(cudaEventRecord(e1));
      CK(cudaEventSynchronize(e1));
      CK(cudaEventElapsedTime(&m, e0, e1));
    }
    CK(cudaGetLastError());
    std::sort(ms.begin(), ms.end());
    std::printf("%-52s %8.1f TFLOP/s\n", what, flops / (ms[2] * 1e9));
  };
  const int iters = 4096;
  time([&] { ceil_hmma<<<blocks, 256>>>(out, iters); }, 2.0 * 16 * 8 * 16 * 8.0 * iters * 8 * blocks,
       "HMMA only, operands in registers");
  time([&] { ceil_ldsm_hmma<1><<<blocks, 256>>>(out, iters / 8); }, 2.0 * 16 * 8 * 16 * 64.0 * (iters / 8) * 8 * blocks,
       "ldmatrix B + HMMA, 16 rows/warp (Q Kt, d128 x 64 keys)");
  time([&] { ceil_ldsm_hmma<2><<<blocks, 256>>>(out, iters / 8); }, 2.0 * 16 * 8 * 16 * 128.0 * (iters / 8) * 8 * blocks,
       "ldmatrix B + HMMA, 32 rows/warp");
  CK(cudaFree(out));
}

// ---------------------------------------------------------------------------------------------
void run_bench() {
  std::printf("\n== cuda::bench()\n");
  flashattn::cuda::BenchRequest req;
  req.shape.b = 4; req.shape.s_q = req.shape.s_k = 4096; req.shape.h = req.shape.h_k = 16; req.shape.d = 128;
  req.shape.dtype = DType::kBFloat16;
  req.shape.window_left = -1; req.shape.window_right = -1;
  for (int naive = 0; naive < 2; ++naive) {
    req.naive = naive;
    try {
      const auto r = flashattn::cuda::bench(0, req);
      std::vector<float> ms = r.ms;
      std::sort(ms.begin(), ms.end());
      const double flops = 4.0 * 4 * 16 * 4096.0 * 4096 * 128;
      std::printf("%-22s median %8.3f ms  %7.1f TFLOP/s  peak extra %zu bytes\n", r.kernel.c_str(), ms[ms.size() / 2],
                  flops / (ms[ms.size() / 2] * 1e9), r.peak_extra_bytes);
    } catch (const std::exception& e) {
      std::printf("bench failed: %s\n", e.what());
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  bool check = false, variants = false, timing = false, bench = false, small = false, ceilings = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--check") check = true;
    else if (a == "--variants") variants = true;
    else if (a == "--time") timing = true;
    else if (a == "--bench") bench = true;
    else if (a == "--ceilings") ceilings = true;
    else if (a == "--small") small = check = true;
    else {
      std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  if (!check && !variants && !timing && !bench && !ceilings) check = timing = bench = ceilings = true;

  cudaDeviceProp prop;
  CK(cudaGetDeviceProperties(&prop, 0));
  std::printf("device: %s sm_%d%d, %d SMs, %zu KB smem opt-in, L2 %d MB\n", prop.name, prop.major, prop.minor,
              prop.multiProcessorCount, prop.sharedMemPerBlockOptin / 1024, prop.l2CacheSize >> 20);
  const uint64_t seed = std::random_device{}() ^ (static_cast<uint64_t>(std::random_device{}()) << 32);
  std::printf("seed: %" PRIu64 "\n", seed);
  std::mt19937_64 rng(seed);
  int fails = 0;
  if (ceilings) run_ceilings();
  if (check) fails += run_checks(small, rng);
  if (variants) fails += run_variants(rng);
  if (timing) run_timing();
  if (bench) run_bench();
  std::printf("\nfwd_check: %s (%d failing)\n", fails ? "FAIL" : "PASS", fails);
  return fails ? 1 : 0;
}
