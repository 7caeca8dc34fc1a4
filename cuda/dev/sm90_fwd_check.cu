// sm90_fwd_check.cu — stand-alone dev harness for the sm90 forward (not part of the addon).
// Build with cuda/dev/sm90_build.sh; versions and verdicts are in docs/perf-notes.md,
// "Forward (sm90)".
//
//   sm90_fwd_check [--check] [--variants] [--time] [--small]
//     --check     sm90_forward() against a float64 CPU reference: head dims 64/128/256 (and 32, 96,
//                 192 on the next larger kernel), fp16/bf16, none/causal/windows, GQA/MQA, seqlens
//                 1/17/1000/4097, s_q != s_k both ways, (b, s, h, d) and (b, h, s, d) strides.
//                 Rule (DESIGN): max|ours - ref| <= 2 max|naive in dtype - ref| + 1e-5, no NaN,
//                 outputs poisoned before every run, empty rows O = 0 and LSE = -inf exactly,
//                 |LSE - ref| <= 1e-3.
//     --variants  the candidates of variants() below: checked on two cases, then timed
//     --time      the bench shapes: bf16, batch·seqlen 16k, hidden 2048, d 64/128/256, seqlen
//                 512..16k, causal and not, and window [4096, 0] at 16k; median of 25 runs after
//                 5 warm-ups over 3 rotating input sets; TFLOP/s = 4·b·h·s²·d (halved for causal)
//     --small     a few tiny cases only (for compute-sanitizer)
//     --np        leave out the persistent candidates; --time then runs the shipped tiles with one
//                 block per work tile instead of sm90_forward() (a fallback if persistence fails)
//     --varlen    packed sequences (mixed lengths with 0 and 1, every mask, GQA, 200 sequences) through
//                 one launch vs float64 per sequence, guard rows past the totals; then (without
//                 --small) the bench mix (16 sequences 64..4096, 16k tokens) vs the padded 4 x 4096
//     --one D S C one bench shape (head dim D, seqlen S, causal C = 0/1), 3 launches (for ncu)
//   no flag: --check --variants --time
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <cuda_runtime.h>

#include "api.h"
#include "dev/fwd_reference.h"
#include "params.h"
#include "sm90/api.h"
#include "sm90/fwd_launch.cuh"

namespace {

void launch_sm90(const AttnParams& p, cudaStream_t s) { flashattn::sm90::sm90_forward(p, s); }

// The shipped tiles of each head dim, one block per work tile (bf16; for --time --np).
template <int D>
void launch_shipped_np(const AttnParams& p, cudaStream_t s) {
#if FLASHATTN_DEV_NO_VARIANTS
  flashattn::sm90::sm90_forward(p, s);
  return;
#endif
  using Cfg = flashattn::sm90::FwdConfig<D>;
  if (p.window_left >= 0 || p.window_right >= 0) {
    flashattn::sm90::launch_fwd_tile<typename Cfg::Masked, flashattn::sm80::Bf16>(p, s, false);
  } else {
    flashattn::sm90::launch_fwd_tile<typename Cfg::Full, flashattn::sm80::Bf16>(p, s, false);
  }
}

// ---------------------------------------------------------------------------------------------
// Candidates: FwdTile<D, kBlockN, kStages, pingpong> x persistent grid or one block per tile,
// beside the shipped FwdConfig. --check runs every case through each candidate of its head dim.
using flashattn::sm80::Bf16;
using flashattn::sm80::Fp16;
using flashattn::sm90::FwdTile;
using flashattn::sm90::launch_fwd_tile;
using Launch = void (*)(const AttnParams&, cudaStream_t);
struct Variant {
  const char* name;
  int d;
  int smem;
  bool persistent;
  Launch launch;
};
template <typename Tile, bool kPersistent>
void launch_either(const AttnParams& p, cudaStream_t s) {
  if (p.dtype == DType::kBFloat16) {
    launch_fwd_tile<Tile, Bf16>(p, s, kPersistent);
  } else {
    launch_fwd_tile<Tile, Fp16>(p, s, kPersistent);
  }
}
template <typename Tile, bool kPersistent>
Variant variant(const char* name) {
  return {name, Tile::kHeadDim, Tile::kSmemBytes, kPersistent, launch_either<Tile, kPersistent>};
}
bool g_only_np = false;  // --np: leave out persistent candidates and time the shipped tile one block per tile
std::vector<Variant> variants() {
#if FLASHATTN_DEV_NO_VARIANTS  // a quick build (the varlen device script): the shipped kernels only
  std::vector<Variant> all;
#else
  std::vector<Variant> all = {
      variant<FwdTile<64, 128, 3>, false>("d64  128x128 s3 pp"),
      variant<FwdTile<64, 128, 3>, true>("d64  128x128 s3 pp persist"),
      variant<FwdTile<64, 192, 2>, true>("d64  128x192 s2 pp persist"),
      variant<FwdTile<128, 128, 2>, false>("d128 128x128 s2 pp"),
      variant<FwdTile<128, 128, 3>, false>("d128 128x128 s3 pp"),
      variant<FwdTile<128, 128, 3>, true>("d128 128x128 s3 pp persist"),
      variant<FwdTile<128, 176, 2>, true>("d128 128x176 s2 pp persist"),
      variant<FwdTile<256, 64, 2>, false>("d256 128x64 s2 pp"),
      variant<FwdTile<256, 64, 2>, true>("d256 128x64 s2 pp persist"),
      variant<FwdTile<256, 80, 2>, false>("d256 128x80 s2 pp"),
      variant<FwdTile<256, 80, 2>, true>("d256 128x80 s2 pp persist"),
  };
#endif
  std::vector<Variant> out;
  for (const Variant& v : all) {
    if (!(g_only_np && v.persistent)) out.push_back(v);
  }
  return out;
}

std::vector<Case> sm90_cases(bool small) {
  const DType fp16 = DType::kFloat16, bf16 = DType::kBFloat16;
  std::vector<Case> cs;
  if (small) {
    cs.push_back({1, 130, 77, 4, 2, 64, bf16, -1, 0, false});
    cs.push_back({2, 33, 200, 2, 1, 128, fp16, 20, 3, true});
    cs.push_back({1, 129, 129, 2, 2, 256, bf16, -1, -1, false});
    cs.push_back({2, 1100, 300, 8, 2, 64, bf16, -1, 0, false});  // 144 tiles: blocks take several
    return cs;
  }
  for_each_grid_case(fp16, bf16, [&](const Case& c, int) { cs.push_back(c); });
  // Every head dim and dtype on the length-1000 square with each mask, and longer ones.
  for (int d : {64, 128, 256})
    for (DType dt : {fp16, bf16}) {
      cs.push_back({1, 1000, 1000, 2, 1, d, dt, -1, -1, false});
      cs.push_back({1, 1000, 1000, 2, 2, d, dt, -1, 0, true});
      cs.push_back({2, 1000, 1037, 2, 1, d, dt, 300, 0, false});
    }
  cs.push_back({1, 4097, 4097, 2, 1, 128, bf16, -1, 0, false});
  cs.push_back({1, 4097, 4000, 2, 2, 64, fp16, 1000, 0, true});
  cs.push_back({1, 517, 4097, 8, 2, 128, fp16, 3000, 0, false});
  cs.push_back({1, 2048, 2048, 2, 2, 256, bf16, -1, -1, false});
  cs.push_back({2, 1, 1, 3, 1, 64, fp16, -1, 0, false});
  // More work tiles than SMs, so persistent blocks walk several tiles (some without keys).
  cs.push_back({4, 1000, 1000, 8, 2, 128, bf16, -1, 0, false});
  cs.push_back({2, 2000, 600, 8, 8, 64, fp16, -1, 0, true});
  cs.push_back({3, 700, 1500, 12, 4, 256, bf16, 100, 20, false});
  cs.push_back({2, 1000, 1000, 16, 1, 96, fp16, -1, -1, false});
  return cs;
}

// One case through `launch`, poisoned first; returns the score (exceptions land in *err).
Score run_case(const Case& c, const HostData& hd, float scale, cudaStream_t stream,
               const std::function<void(const AttnParams&, cudaStream_t)>& launch, std::string* err) {
  DeviceCase dc;
  make_device_case(c, scale, hd, dc);
  Score sc;
  try {
    poison(dc, c);
    launch(dc.p, stream);
    CK(cudaStreamSynchronize(stream));
    sc = compare(c, hd, dc);
  } catch (const std::exception& e) {
    *err = e.what();
  }
  return sc;
}

void make_host(std::mt19937_64& rng, const Case& c, HostData& hd) {
  fill_host(rng, c.b * c.s_q * c.h * c.d, c.dt, hd.q, hd.qb);
  fill_host(rng, c.b * c.s_k * c.h_k * c.d, c.dt, hd.k, hd.kb);
  fill_host(rng, c.b * c.s_k * c.h_k * c.d, c.dt, hd.v, hd.vb);
  reference(c, 1.f / std::sqrt(static_cast<float>(c.d)), hd);
}

int run_checks(bool small, std::mt19937_64& rng) {
  std::printf("\n== correctness: sm90_forward() (%s) and every candidate tile of the head dim vs float64\n"
              "   (pass: err <= bound = 2 x naive-in-dtype err + 1e-5, no NaN, empty rows exact, |lse err| <= 1e-3)\n",
              g_only_np ? "skipped: --np" : "shipped");
  std::printf("%-4s %-4s %-13s %2s %5s %5s %5s %-4s | %-9s %-9s %-9s | %s\n", "d", "dt", "mask", "b", "s_q", "s_k", "h/hk",
              "lay", "err", "bound", "lse", "result");
  int fails = 0;
  cudaStream_t stream;
  CK(cudaStreamCreate(&stream));
  for (const Case& c : sm90_cases(small)) {
    HostData hd;
    make_host(rng, c, hd);
    std::string err;
    const float scale = 1.f / std::sqrt(static_cast<float>(c.d));
    Score sc;
    sc.pass = true;
    if (!g_only_np) sc = run_case(c, hd, scale, stream, launch_sm90, &err);
    bool ok = err.empty() && sc.pass;
    for (const Variant& v : variants()) {
      if (v.d != flashattn::sm90::fwd_kernel_head_dim(c.d)) continue;
      std::string verr;
      const Score vs = run_case(c, hd, scale, stream, v.launch, &verr);
      if (!verr.empty() || !vs.pass) {
        std::printf("     candidate %s FAILS: err %.2e, %ld NaN, %ld bad empty %s\n", v.name, vs.err, vs.nan, vs.bad_empty, verr.c_str());
        ok = false;
      }
      if (g_only_np && vs.err >= sc.err) sc = vs;  // report the worst candidate
    }
    fails += !ok;
    char hh[16];
    std::snprintf(hh, sizeof hh, "%d/%d", c.h, c.h_k);
    std::printf("%-4d %-4s %-13s %2d %5d %5d %5s %-4s | %9.2e %9.2e %9.2e | %s%s%s\n", c.d, dt_short(c.dt), c.mask_name().c_str(),
                c.b, c.s_q, c.s_k, hh, c.bhsd ? "bhsd" : "bshd", sc.err, 2 * sc.bound_err + 1e-5, sc.lse_err,
                ok ? "PASS" : "FAIL", err.empty() ? "" : " ", err.c_str());
    if (!ok && (sc.nan || sc.bad_empty)) std::printf("     %ld NaN, %ld wrong empty-row values\n", sc.nan, sc.bad_empty);
    std::fflush(stdout);
  }
  CK(cudaStreamDestroy(stream));
  std::printf("correctness: %d failing case(s)\n", fails);
  return fails;
}

int run_variants(std::mt19937_64& rng) {
  std::printf("\n== tile variants (bf16): check vs float64 on two cases, then TFLOP/s (hidden 2048)\n");
  std::printf("%-28s %6s | %-9s %-9s | %7s %7s %7s %7s %7s %7s\n", "variant", "smemKB", "err", "bound", "16k nc", "16k c", "2k nc",
              "2k c", "512 nc", "512 c");
  int fails = 0;
  cudaStream_t stream;
  CK(cudaStreamCreate(&stream));
  for (const Variant& v : variants()) {
    const Case cases[2] = {{1, 1000, 1037, 4, 2, v.d, DType::kBFloat16, -1, -1, false},
                           {2, 1037, 1000, 2, 1, v.d, DType::kBFloat16, 300, 0, true}};
    double err = 0, bound = 0;
    bool ok = true;
    std::string why;
    for (const Case& c : cases) {
      HostData hd;
      make_host(rng, c, hd);
      const Score sc = run_case(c, hd, 1.f / std::sqrt(static_cast<float>(c.d)), stream, v.launch, &why);
      err = std::max(err, sc.err);
      bound = std::max(bound, 2 * sc.bound_err + 1e-5);
      ok = ok && sc.pass && why.empty();
    }
    fails += !ok;
    float tf[6];
    int k = 0;
    for (int s : {16384, 2048, 512})
      for (int causal = 0; causal < 2; ++causal) {
        const TimeShape t{16384 / s, s, 2048 / v.d, v.d, -1, causal ? 0 : -1};
        Timer tm(t);
        tf[k++] = static_cast<float>(fwd_flops(t) / (tm.median_ms(v.launch) * 1e9));
      }
    std::printf("%-28s %6d | %9.2e %9.2e | %7.1f %7.1f %7.1f %7.1f %7.1f %7.1f %s%s\n", v.name, v.smem / 1024, err, bound, tf[0], tf[1],
                tf[2], tf[3], tf[4], tf[5], ok ? "" : "FAIL ", why.c_str());
    std::fflush(stdout);
  }
  CK(cudaStreamDestroy(stream));
  return fails;
}

// ---------------------------------------------------------------------------------------------
void run_timing() {
  auto launch_for = [](int d) -> void (*)(const AttnParams&, cudaStream_t) {
    if (!g_only_np) return launch_sm90;
    return d == 64 ? launch_shipped_np<64> : d == 128 ? launch_shipped_np<128> : launch_shipped_np<256>;
  };
  std::printf("\n== %s TFLOP/s, bf16, batch*seqlen = 16384, hidden 2048 (median of 25, 3 rotating input sets)\n",
              g_only_np ? "shipped tiles, one block per tile (--np)" : "sm90_forward()");
  std::printf("%-5s %-7s %-7s %8s %8s %10s\n", "d", "seqlen", "causal", "batch", "ms", "TFLOP/s");
  double causal16k[257] = {};
  std::vector<double> all;
  for (int d : {64, 128, 256})
    for (int causal = 0; causal < 2; ++causal)
      for (int s = 512; s <= 16384; s *= 2) {
        const TimeShape t{16384 / s, s, 2048 / d, d, -1, causal ? 0 : -1};
        Timer tm(t);
        const float ms = tm.median_ms(launch_for(d));
        if (causal && s == 16384) causal16k[d] = ms;
        const double tflops = fwd_flops(t) / (ms * 1e9);
        all.push_back(tflops);
        std::printf("%-5d %-7d %-7s %8d %8.3f %10.1f\n", d, s, causal ? "yes" : "no", t.b, ms, tflops);
        std::fflush(stdout);
      }
  std::printf("\n== window [4096, 0] at seqlen 16k vs full causal\n");
  for (int d : {64, 128, 256}) {
    const TimeShape t{1, 16384, 2048 / d, d, 4096, 0};
    Timer tm(t);
    const float ms = tm.median_ms(launch_for(d));
    std::printf("d%-4d window ms %8.3f  causal ms %8.3f  ratio %.3f  %6.1f TFLOP/s\n", d, ms, causal16k[d], ms / causal16k[d],
                fwd_flops(t) / (ms * 1e9));
  }
  {
    const TimeShape t{1, 16384, 16, 128, -1, -1};
    Timer tm(t);
    const float a = tm.median_ms(launch_for(128)), b = tm.median_ms(launch_for(128));
    std::printf("\nrepeat d128 16k non-causal: %.3f ms, %.3f ms (spread %.1f%%)\n", a, b, 100.0 * std::fabs(a - b) / std::min(a, b));
  }
}

// ---------------------------------------------------------------------------------------------
// Varlen (--varlen): packed [total, h, d] q/k/v/o, lse [h, total_q], offsets on the device. Each
// sequence is checked against the float64 reference of a batch of one; rows past the packed
// totals are guard rows that must stay poisoned. Then the issue's bench mix through one launch
// against the padded batch of the same tokens.
struct VarlenCase {
  std::vector<int> sq, sk;
  int h, h_k, d;
  DType dt;
  int wl, wr;
};

struct VarlenDevice {
  AttnParams p;
  std::vector<void*> bufs;
  ~VarlenDevice() {
    for (void* b : bufs) cudaFree(b);
  }
  void* alloc(size_t bytes) {
    void* ptr = nullptr;
    CK(cudaMalloc(&ptr, bytes > 0 ? bytes : 16));
    bufs.push_back(ptr);
    return ptr;
  }
};

constexpr int kGuardRows = 256;

// Device tensors of one varlen call (o and lse with kGuardRows extra rows); cu_q / cu_k host copies.
void make_varlen_device(const VarlenCase& c, const std::vector<int32_t>& cu_q, const std::vector<int32_t>& cu_k,
                        const std::vector<uint16_t>& q, const std::vector<uint16_t>& k, const std::vector<uint16_t>& v,
                        VarlenDevice& dv) {
  const int n = static_cast<int>(c.sq.size()), tq = cu_q[n], tk = cu_k[n];
  AttnParams& p = dv.p;
  p.b = n; p.s_q = tq; p.s_k = tk; p.h = c.h; p.h_k = c.h_k; p.d = c.d;
  p.dtype = c.dt; p.scale = 1.f / std::sqrt(static_cast<float>(c.d)); p.window_left = c.wl; p.window_right = c.wr;
  p.q_stride = p.o_stride = flashattn::contiguous_strides(tq, c.h, c.d);
  p.k_stride = p.v_stride = flashattn::contiguous_strides(tk, c.h_k, c.d);
  void* dq = dv.alloc(q.size() * 2);
  void* dk = dv.alloc(k.size() * 2);
  void* dvv = dv.alloc(v.size() * 2);
  if (!q.empty()) CK(cudaMemcpy(dq, q.data(), q.size() * 2, cudaMemcpyHostToDevice));
  if (!k.empty()) CK(cudaMemcpy(dk, k.data(), k.size() * 2, cudaMemcpyHostToDevice));
  if (!v.empty()) CK(cudaMemcpy(dvv, v.data(), v.size() * 2, cudaMemcpyHostToDevice));
  p.q = dq; p.k = dk; p.v = dvv;
  p.out = dv.alloc(static_cast<size_t>(tq + kGuardRows) * c.h * c.d * 2);
  p.lse = static_cast<float*>(dv.alloc((static_cast<size_t>(c.h) * tq + kGuardRows) * 4));
  auto* cq = static_cast<int32_t*>(dv.alloc((n + 1) * 4));
  auto* ck = static_cast<int32_t*>(dv.alloc((n + 1) * 4));
  CK(cudaMemcpy(cq, cu_q.data(), (n + 1) * 4, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(ck, cu_k.data(), (n + 1) * 4, cudaMemcpyHostToDevice));
  p.cu_seqlens_q = cq; p.cu_seqlens_k = ck;
  p.cu_seqlens_q_host = cu_q.data(); p.cu_seqlens_k_host = cu_k.data();
  for (int i = 0; i < n; ++i) {
    p.max_seqlen_q = std::max(p.max_seqlen_q, c.sq[i]);
    p.max_seqlen_k = std::max(p.max_seqlen_k, c.sk[i]);
  }
}

std::vector<int32_t> offsets(const std::vector<int>& lens) {
  std::vector<int32_t> cu(1, 0);
  for (int l : lens) cu.push_back(cu.back() + l);
  return cu;
}

int run_varlen_checks(std::mt19937_64& rng, bool small) {
  std::printf("\n== varlen correctness: one sm90_forward() over packed sequences vs float64 per sequence\n"
              "   (same rule as above; guard rows past the totals must stay poisoned)\n");
  const DType fp16 = DType::kFloat16, bf16 = DType::kBFloat16;
  const std::vector<int> mix_q = {0, 1, 17, 300, 129, 1000, 0, 64, 128, 255, 2};
  const std::vector<int> mix_k = {5, 1, 17, 300, 0, 1037, 0, 64, 128, 700, 1};
  const std::vector<int> few_q = {1000, 1, 130, 0};
  const std::vector<int> few_k = {600, 1300, 130, 9};
  std::vector<VarlenCase> cs;
  const int wins[][2] = {{-1, -1}, {-1, 0}, {50, 7}, {-1, 30}, {128, 0}};
  int n = 0;
  for (int d : {64, 128, 256})
    for (DType dt : {fp16, bf16})
      for (const auto& w : wins) {
        const bool mix = n % 2 == 0;
        const int hh[][2] = {{4, 4}, {4, 2}, {4, 1}, {6, 3}};
        cs.push_back({mix ? mix_q : few_q, mix ? mix_k : few_k, hh[n % 4][0], hh[n % 4][1], d, dt, w[0], w[1]});
        ++n;
      }
  cs.push_back({{96}, {96}, 2, 1, 96, bf16, -1, 0});        // one sequence, head dim on the next kernel
  cs.push_back({{0, 0}, {3, 0}, 2, 2, 128, bf16, -1, -1});  // no queries at all
  {
    std::vector<int> q, k;  // more sequences than one launch's tiles cover one per SM, in mixed order
    std::uniform_int_distribution<int> len(0, 400);
    for (int i = 0; i < 200; ++i) { q.push_back(len(rng)); k.push_back(len(rng)); }
    cs.push_back({q, k, 8, 2, 128, bf16, -1, -1});
    cs.push_back({q, k, 8, 2, 64, fp16, -1, 0});
  }
  if (small) cs = {cs[0], cs[1], cs[13], cs[cs.size() - 1]};  // for compute-sanitizer
  std::printf("%-4s %-4s %-13s %4s %7s %7s %5s | %-9s %-9s %-9s | %s\n", "d", "dt", "mask", "seqs", "tot_q", "tot_k", "h/hk",
              "err", "bound", "lse", "result");
  int fails = 0;
  for (const VarlenCase& c : cs) {
    const int ns = static_cast<int>(c.sq.size());
    const std::vector<int32_t> cu_q = offsets(c.sq), cu_k = offsets(c.sk);
    std::vector<HostData> hd(ns);
    std::vector<uint16_t> q, k, v;
    for (int i = 0; i < ns; ++i) {
      const Case ci{1, c.sq[i], c.sk[i], c.h, c.h_k, c.d, c.dt, c.wl, c.wr, false};
      make_host(rng, ci, hd[i]);
      q.insert(q.end(), hd[i].qb.begin(), hd[i].qb.end());
      k.insert(k.end(), hd[i].kb.begin(), hd[i].kb.end());
      v.insert(v.end(), hd[i].vb.begin(), hd[i].vb.end());
    }
    VarlenDevice dv;
    make_varlen_device(c, cu_q, cu_k, q, k, v, dv);
    const int tq = cu_q[ns];
    const size_t o_elems = static_cast<size_t>(tq + kGuardRows) * c.h * c.d, lse_elems = static_cast<size_t>(c.h) * tq + kGuardRows;
    CK(cudaMemset(dv.p.out, 0xff, o_elems * 2));
    CK(cudaMemset(dv.p.lse, 0xff, lse_elems * 4));
    std::string err;
    try {
      launch_sm90(dv.p, 0);
      CK(cudaDeviceSynchronize());
    } catch (const std::exception& e) {
      err = e.what();
    }
    std::vector<uint16_t> ob(o_elems);
    std::vector<float> lse(lse_elems);
    CK(cudaMemcpy(ob.data(), dv.p.out, o_elems * 2, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(lse.data(), dv.p.lse, lse_elems * 4, cudaMemcpyDeviceToHost));
    Score sc;
    long guard = 0;
    for (size_t x = static_cast<size_t>(tq) * c.h * c.d; x < o_elems; ++x) guard += ob[x] != 0xffff;
    for (size_t x = static_cast<size_t>(c.h) * tq; x < lse_elems; ++x) guard += !std::isnan(lse[x]);
    for (int i = 0; i < ns; ++i)
      for (int r = 0; r < c.sq[i]; ++r)
        for (int hq = 0; hq < c.h; ++hq) {
          const size_t ref = (static_cast<size_t>(r) * c.h + hq) * c.d;  // packed row cu_q[i] + r, lse [h, total_q]
          score_row(sc, c.dt, c.d, hd[i].lse_ref[static_cast<size_t>(hq) * c.sq[i] + r], lse[static_cast<size_t>(hq) * tq + cu_q[i] + r],
                    &ob[(static_cast<size_t>(cu_q[i] + r) * c.h + hq) * c.d], &hd[i].o_ref[ref], &hd[i].o_naive[ref]);
        }
    const bool ok = err.empty() && guard == 0 && passes(sc);
    fails += !ok;
    const Case named{1, 1, 1, 1, 1, c.d, c.dt, c.wl, c.wr, false};
    char hh[16];
    std::snprintf(hh, sizeof hh, "%d/%d", c.h, c.h_k);
    std::printf("%-4d %-4s %-13s %4d %7d %7d %5s | %9.2e %9.2e %9.2e | %s%s%s\n", c.d, dt_short(c.dt), named.mask_name().c_str(), ns,
                tq, cu_k[ns], hh, sc.err, 2 * sc.bound_err + 1e-5, sc.lse_err, ok ? "PASS" : "FAIL", err.empty() ? "" : " ",
                err.c_str());
    if (!ok) std::printf("     %ld NaN, %ld wrong empty-row values, %ld guard elements written\n", sc.nan, sc.bad_empty, guard);
    std::fflush(stdout);
  }
  std::printf("varlen correctness: %d failing case(s)\n", fails);
  return fails;
}

// Median ms of one varlen launch over `lens` (q = k lengths), bf16, 3 rotating input sets.
float time_varlen(const std::vector<int>& lens, int h, int d, int wr) {
  const std::vector<int32_t> cu = offsets(lens);
  const int total = cu.back();
  const VarlenCase c{lens, lens, h, h, d, DType::kBFloat16, -1, wr};
  std::vector<std::unique_ptr<VarlenDevice>> sets;
  std::vector<uint16_t> empty;
  for (int s = 0; s < 3; ++s) {
    sets.emplace_back(new VarlenDevice);
    VarlenDevice& dv = *sets.back();
    make_varlen_device(c, cu, cu, empty, empty, empty, dv);
    // make_varlen_device allocated 16-byte placeholders for empty host data: real buffers here.
    const size_t n = static_cast<size_t>(total) * h * d;
    void* qkv[3];
    for (int j = 0; j < 3; ++j) {
      qkv[j] = dv.alloc(n * 2);
      fill_normal_bf16<<<4096, 256>>>(static_cast<__nv_bfloat16*>(qkv[j]), n, 101 + 3 * s + j);
      CK(cudaGetLastError());
    }
    dv.p.q = qkv[0]; dv.p.k = qkv[1]; dv.p.v = qkv[2];
  }
  CK(cudaDeviceSynchronize());
  cudaStream_t stream;
  CK(cudaStreamCreate(&stream));
  const float ms = median_ms_of(stream, [&](int i) { launch_sm90(sets[i % 3]->p, stream); });
  CK(cudaStreamDestroy(stream));
  return ms;
}

void run_varlen_timing(std::mt19937_64& rng) {
  const int h = 16, d = 128;
  const std::vector<int> bench = {4096, 3072, 2048, 2048, 1024, 1024, 1024, 512, 512, 320, 256, 128, 128, 64, 64, 64};
  std::vector<int> ascending(bench.rbegin(), bench.rend()), shuffled = bench;
  std::shuffle(shuffled.begin(), shuffled.end(), rng);
  std::vector<int> many;  // 128 short sequences, 16k tokens
  for (int i = 0; i < 128; ++i) many.push_back(128);
  std::printf("\n== varlen timing: one launch vs padded batch of the same tokens (bf16, h%d d%d, useful TFLOP/s)\n", h, d);
  std::printf("%-26s %-7s %9s %9s %9s %9s %7s\n", "mix", "causal", "ms", "TFLOP/s", "pad ms", "pad TF/s", "ratio");
  const struct {
    const char* name;
    const std::vector<int>* lens;
    int pad_b, pad_s;
  } mixes[] = {{"bench (longest first)", &bench, 4, 4096},
               {"bench (ascending)", &ascending, 4, 4096},
               {"bench (shuffled)", &shuffled, 4, 4096},
               {"128 x 128", &many, 128, 128}};
  for (const auto& m : mixes)
    for (int causal = 0; causal < 2; ++causal) {
      double flops = 0;
      for (int l : *m.lens) flops += 4.0 * h * d * static_cast<double>(l) * l * (causal ? 0.5 : 1.0);
      const float ms = time_varlen(*m.lens, h, d, causal ? 0 : -1);
      const TimeShape t{m.pad_b, m.pad_s, h, d, -1, causal ? 0 : -1};
      Timer tm(t);
      const float pms = tm.median_ms(launch_sm90);
      const double tf = flops / (ms * 1e9), ptf = fwd_flops(t) / (pms * 1e9);
      std::printf("%-26s %-7s %9.3f %9.1f %9.3f %9.1f %7.3f\n", m.name, causal ? "yes" : "no", ms, tf, pms, ptf, tf / ptf);
      std::fflush(stdout);
    }
}

}  // namespace

int main(int argc, char** argv) {
  bool check = false, vars = false, timing = false, small = false, varlen = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--one" && i + 3 < argc) {
      const int d = std::atoi(argv[i + 1]), s = std::atoi(argv[i + 2]), causal = std::atoi(argv[i + 3]);
      const TimeShape t{16384 / s, s, 2048 / d, d, -1, causal ? 0 : -1};
      Timer tm(t);
      for (int r = 0; r < 3; ++r) launch_sm90(tm.sets[r], tm.stream);
      CK(cudaStreamSynchronize(tm.stream));
      CK(cudaGetLastError());
      std::printf("--one d%d s%d causal %d: ran\n", d, s, causal);
      return 0;
    }
    if (a == "--check") check = true;
    else if (a == "--np") g_only_np = true;
    else if (a == "--variants") vars = true;
    else if (a == "--time") timing = true;
    else if (a == "--small") small = true;
    else if (a == "--varlen") varlen = true;
    else {
      std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  if (small && !varlen) check = true;
  if (!check && !vars && !timing && !varlen) check = vars = timing = true;
  cudaDeviceProp prop;
  CK(cudaGetDeviceProperties(&prop, 0));
  std::printf("device: %s sm_%d%d, %d SMs, %zu KB smem opt-in, L2 %d MB\n", prop.name, prop.major, prop.minor,
              prop.multiProcessorCount, prop.sharedMemPerBlockOptin / 1024, prop.l2CacheSize >> 20);
  const uint64_t seed = std::random_device{}() ^ (static_cast<uint64_t>(std::random_device{}()) << 32);
  std::printf("seed: %" PRIu64 "\n", seed);
  std::mt19937_64 rng(seed);
  int fails = 0;
  if (check) fails += run_checks(small, rng);
  if (vars) fails += run_variants(rng);
  if (varlen) {
    fails += run_varlen_checks(rng, small);
    if (!small) run_varlen_timing(rng);
  }
  if (timing) run_timing();
  std::printf("\nsm90_fwd_check: %s (%d failing)\n", fails ? "FAIL" : "PASS", fails);
  return fails ? 1 : 0;
}
