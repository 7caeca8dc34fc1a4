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
#include "dev/fwd_reference.h"
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
