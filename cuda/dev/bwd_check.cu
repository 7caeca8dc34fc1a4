// bwd_check.cu — stand-alone dev harness for the sm80 backward (not part of the addon; CMake
// excludes cuda/dev/). Build with cuda/dev/bwd_build.sh. History and verdicts of each version are
// in docs/perf-notes.md, "Backward (sm80)".
//
//   bwd_check [--selftest] [--check] [--sanitize] [--variants] [--time]
//     --selftest  the float64 CPU reference against central finite differences of
//                 L = sum(out * dO) (CPU only; validates the reference itself)
//     --check     run_bwd against the float64 reference: head dims 32..256 and 40, 80; fp16/bf16;
//                 none/causal/window (one window leaves rows with no key); GQA 1, 2, 8 and MQA;
//                 seqlens 1, 17, 1000, 4097 with s_q != s_k both ways; normal and deterministic.
//                 Rule per gradient: max|ours - ref| <= 2 max|naive - ref| + 1e-4 max|ref| + 1e-5, where
//                 naive = the textbook backward with operands, P and dS rounded to the dtype; no
//                 NaN; outputs NaN-poisoned before every run; deterministic mode bit-identical
//                 over 3 runs.
//     --sanitize  one small case per kernel head dim and per dev/bwd_variants.cu shape, both modes
//                 (for compute-sanitizer)
//     --cpu-cost  build the --check references only (sizes the CPU time of --check)
//     --variants  check, then time, the block shapes of dev/bwd_variants.cu (bf16)
//     --time      the bench shapes: batch*seqlen 16k, hidden 2048, d 64/128/256, seqlen 512..16k,
//                 causal and not, bf16; CUDA events, median of 10 after 3 warm-ups; TFLOP/s with
//                 bwd FLOPs = 2.5 * 4 b h s_q s_k d (halved for causal); plus deterministic mode
//     --profile   d128 (atomic and deterministic) and d256 at seqlen 4096, one run each (for ncu)
//   no flag: --check --variants --time
#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include <cuda_runtime.h>

#include "dev/bwd_reference.h"
#include "dev/bwd_variants.h"
#include "sm80/launch.h"

namespace {

void run_check(std::mt19937_64& rng) {
  std::printf("\n== correctness: run_bwd vs float64 reference\n");
  print_header();
  const int dims[] = {32, 40, 64, 80, 96, 128, 192, 256};
  int rot = 0;
  for (int d : dims) {
    for (DType dt : {DType::kFloat16, DType::kBFloat16}) {
      const int khd = flashattn::sm80::kernel_head_dim(d);
      for (const Case& c : check_cases(d, dt, rot)) {
        Inputs in;
        in.c = c;
        in.dt = dt;
        make_inputs(in, rng);
        if (g_cpu_only) continue;
        check_case(in, khd, [khd](const AttnParams& p, cudaStream_t s) { flashattn::sm80::run_bwd(p, khd, s); });
      }
    }
  }
}

void run_sanitize(std::mt19937_64& rng) {
  std::printf("\n== small cases (one per kernel head dim) for compute-sanitizer\n");
  print_header();
  for (int d : {32, 64, 96, 128, 192, 256}) {
    Inputs in;
    in.c = {1, 70, 130, 2, 1, d, -1, 0};
    in.dt = d % 64 == 0 ? DType::kBFloat16 : DType::kFloat16;
    make_inputs(in, rng);
    check_case(in, d, [d](const AttnParams& p, cudaStream_t s) { flashattn::sm80::run_bwd(p, d, s); });
  }
  // The shapes this device does not pick (the <= 99 KB / sm80 fallbacks), through the variant list.
  for (const auto& v : flashattn::sm80::bwd::dev::variants()) {
    std::printf("-- %s\n", v.name);
    Inputs in;
    in.c = {1, 70, 130, 2, 1, v.kernel_hd, -1, 0};
    in.dt = DType::kBFloat16;
    make_inputs(in, rng);
    check_case(in, v.kernel_hd, v.run);
  }
}

void run_time(Bench& bench) {
  std::printf("\n== timing: bf16, batch*seqlen 16384, hidden 2048 (median of 10 after 3 warm-ups)\n");
  std::printf("%-4s %-7s %-6s %-4s %-4s %-10s %-9s %-10s\n", "d", "causal", "seqlen", "b", "h", "ms", "TFLOP/s",
              "workspace");
  for (int d : {64, 128, 256}) {
    for (int causal : {0, 1}) {
      for (int s : {512, 1024, 2048, 4096, 8192, 16384}) {
        const int b = 16384 / s, h = 2048 / d;
        AttnParams p = bench.params(b, s, h, d, causal);
        peak_pool_bytes();
        const float ms = time_ms([&] { flashattn::sm80::run_bwd(p, d, nullptr); });
        CK(cudaGetLastError());
        const size_t ws = peak_pool_bytes();
        std::printf("%-4d %-7s %-6d %-4d %-4d %-10.3f %-9.1f %.1f MB\n", d, causal ? "yes" : "no", s, b, h, ms,
                    bwd_flops(p) / (ms * 1e-3) / 1e12, ws / 1048576.0);
        std::fflush(stdout);
      }
    }
  }
  std::printf("\n-- deterministic mode (dQ by the separate kernel, no atomics)\n");
  for (int d : {64, 128, 256}) {
    for (int causal : {0, 1}) {
      const int s = d == 128 ? 16384 : 4096;
      if (d != 128 && causal) continue;
      const int b = 16384 / s, h = 2048 / d;
      AttnParams p = bench.params(b, s, h, d, causal);
      p.deterministic = true;
      const float ms = time_ms([&] { flashattn::sm80::run_bwd(p, d, nullptr); });
      p.deterministic = false;
      const float ms_atomic = time_ms([&] { flashattn::sm80::run_bwd(p, d, nullptr); });
      std::printf("d %-3d causal %-3s seqlen %-5d  deterministic %.3f ms = %.1f TFLOP/s   (atomic %.3f ms = %.1f)\n", d,
                  causal ? "yes" : "no", s, ms, bwd_flops(p) / (ms * 1e-3) / 1e12, ms_atomic,
                  bwd_flops(p) / (ms_atomic * 1e-3) / 1e12);
    }
  }
}

void run_profile(Bench& bench) {
  for (int d : {128, 256}) {
    AttnParams p = bench.params(4, 4096, 2048 / d, d, false);
    flashattn::sm80::run_bwd(p, d, nullptr);
    if (d == 128) {
      p.deterministic = true;
      flashattn::sm80::run_bwd(p, d, nullptr);
    }
  }
  CK(cudaDeviceSynchronize());
  std::printf("profile runs done\n");
}

void run_variants(std::mt19937_64& rng, Bench* bench) {
  std::printf("\n== variants (dev/bwd_variants.cu): check, then time (bf16)\n");
  print_header();
  for (const auto& v : flashattn::sm80::bwd::dev::variants()) {
    std::printf("-- %s\n", v.name);
    const int d = v.kernel_hd == 128 ? 120 : v.kernel_hd;
    for (Case c : {Case{1, 600, 700, 4, 2, d, 300, 0}, Case{2, 333, 77, 8, 1, d, -1, 0}}) {
      Inputs in;
      in.c = c;
      in.dt = DType::kBFloat16;
      make_inputs(in, rng);
      check_case(in, v.kernel_hd, v.run, true);
    }
  }
  if (bench == nullptr) return;
  std::printf("%-48s %-7s %-6s %-10s %-9s\n", "variant", "causal", "seqlen", "ms", "TFLOP/s");
  for (const auto& v : flashattn::sm80::bwd::dev::variants()) {
    for (int causal : {0, 1}) {
      for (int s : {2048, 16384}) {
        const int d = v.kernel_hd;
        AttnParams p = bench->params(16384 / s, s, 2048 / d, d, causal);
        const float ms = time_ms([&] { v.run(p, nullptr); });
        CK(cudaGetLastError());
        std::printf("%-48s %-7s %-6d %-10.3f %-9.1f\n", v.name, causal ? "yes" : "no", s, ms,
                    bwd_flops(p) / (ms * 1e-3) / 1e12);
        std::fflush(stdout);
      }
    }
  }
}

// Central differences of L = sum(out * dO) against the reference gradients, float64, tiny case.
int run_selftest(std::mt19937_64& rng) {
  std::printf("== selftest: float64 reference gradients vs finite differences\n");
  int bad = 0;
  for (Case c : {Case{1, 5, 7, 2, 1, 8, -1, 0}, Case{1, 6, 4, 2, 2, 16, 1, 1}, Case{2, 3, 3, 1, 1, 8, -1, -1}}) {
    Inputs in;
    in.c = c;
    in.dt = DType::kFloat16;
    in.scale = 1.0 / std::sqrt(double(c.d));
    std::vector<uint16_t> junk;
    const size_t nq = size_t(c.b) * c.s_q * c.h * c.d, nk = size_t(c.b) * c.s_k * c.h_k * c.d;
    fill_random(junk, in.q, nq, in.dt, rng);
    fill_random(junk, in.k, nk, in.dt, rng);
    fill_random(junk, in.v, nk, in.dt, rng);
    fill_random(junk, in.dout, nq, in.dt, rng);
    std::vector<double> out, lse;
    reference_forward(c, in.scale, in.q, in.k, in.v, out, lse);
    std::vector<float> lf(lse.begin(), lse.end());
    reference_backward(c, in.dt, in.scale, in.q, in.k, in.v, in.dout, lse, out, lf, false, in.ref);
    auto loss = [&]() {
      std::vector<double> o, l;
      reference_forward(c, in.scale, in.q, in.k, in.v, o, l);
      double s = 0;
      for (size_t i = 0; i < o.size(); ++i) s += o[i] * in.dout[i];
      return s;
    };
    double worst = 0;
    for (auto [x, gx] : {std::pair{&in.q, &in.ref.dq}, std::pair{&in.k, &in.ref.dk}, std::pair{&in.v, &in.ref.dv}}) {
      for (size_t i = 0; i < x->size(); ++i) {
        const double h = 1e-5, keep = (*x)[i];
        (*x)[i] = keep + h;
        const double lp = loss();
        (*x)[i] = keep - h;
        const double lm = loss();
        (*x)[i] = keep;
        worst = std::max(worst, std::fabs((lp - lm) / (2 * h) - (*gx)[i]));
      }
    }
    std::printf("  %s s_q %d s_k %d h %d:%d d %d: max |fd - ref| = %.2e %s\n", window_name(c).c_str(), c.s_q, c.s_k,
                c.h, c.h_k, c.d, worst, worst < 1e-6 ? "ok" : "BAD");
    bad += worst >= 1e-6;
  }
  return bad;
}

}  // namespace

int main(int argc, char** argv) {
  bool selftest = false, check = false, sanitize = false, variants = false, timing = false, profile = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--selftest") selftest = true;
    else if (a == "--check") check = true;
    else if (a == "--sanitize") sanitize = true;
    else if (a == "--variants") variants = true;
    else if (a == "--time") timing = true;
    else if (a == "--cpu-cost") g_cpu_only = true;
    else if (a == "--profile") profile = true;
    else {
      std::fprintf(stderr, "unknown flag %s\n", a.c_str());
      return 2;
    }
  }
  if (!selftest && !check && !sanitize && !variants && !timing && !profile) check = variants = timing = true;
  const uint64_t seed = std::random_device{}() ^ (uint64_t(std::random_device{}()) << 32);
  std::printf("seed %llu\n", static_cast<unsigned long long>(seed));
  std::mt19937_64 rng(seed);
  if (selftest) return run_selftest(rng) == 0 ? 0 : 1;
  if (g_cpu_only) {
    run_check(rng);
    return 0;
  }

  cudaDeviceProp prop;
  CK(cudaGetDeviceProperties(&prop, 0));
  std::printf("device %s, sm_%d%d, %d SMs, %zu KB shared/block opt-in\n", prop.name, prop.major, prop.minor,
              prop.multiProcessorCount, prop.sharedMemPerBlockOptin / 1024);
  if (sanitize) run_sanitize(rng);
  if (check) run_check(rng);
  Bench* bench = (variants || timing || profile) ? new Bench() : nullptr;
  if (profile) run_profile(*bench);
  if (variants) run_variants(rng, bench);
  if (timing) run_time(*bench);
  delete bench;
  if (sanitize || check || variants) std::printf("\ncorrectness: %d passed, %d failed\n", g_pass, g_fail);
  return g_fail == 0 ? 0 : 1;
}
