// sm90_bwd_check.cu — stand-alone dev harness for the sm90 backward (not part of the addon; CMake
// excludes cuda/dev/). Build with cuda/dev/sm90_bwd_build.sh. Shares the float64 reference and
// the comparison rule with the sm80 harness (dev/bwd_reference.h).
//
//   sm90_bwd_check [--check] [--sanitize] [--time] [--variants] [--one d s causal]
//     --check     sm90_backward against the float64 reference: head dims 40..128 (kernel head dims
//                 64 and 128); fp16/bf16; none/causal/window (one window leaves rows with no key);
//                 GQA 1, 2, 8 and MQA; seqlens 1, 17, 1000, 4097 with s_q != s_k both ways. Rule per
//                 gradient: max|ours - ref| <= 2 max|naive - ref| + 1e-4 max|ref| + 1e-5; outputs
//                 NaN-poisoned before every run.
//     --sanitize  one small case per kernel head dim (for compute-sanitizer)
//     --time      the bench shapes: batch*seqlen 16k, hidden 2048, d 64/128, seqlen 512..16k, causal
//                 and not, bf16; CUDA events, median of 10 after 3 warm-ups; TFLOP/s with bwd FLOPs =
//                 2.5 * 4 b h s_q s_k d (halved for causal)
//     --variants  the shapes of kVariants: checked, then timed next to the default shape
//     --one d s causal   one timed shape (for ncu)
//   no flag: --check --time
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include <cuda_runtime.h>

#include "dev/bwd_reference.h"
#include "sm90/api.h"
#include "sm90/bwd_launch.cuh"

namespace {

void run_sm90(const AttnParams& p, cudaStream_t s) { flashattn::sm90::sm90_backward(p, s); }

void run_check(std::mt19937_64& rng) {
  std::printf("\n== correctness: sm90_backward vs float64 reference\n");
  print_header();
  int rot = 0;
  for (int d : {64, 40, 128, 96, 120}) {
    for (DType dt : {DType::kFloat16, DType::kBFloat16}) {
      const int khd = flashattn::sm90::bwd_kernel_head_dim(d);
      std::vector<Case> cases = check_cases(d, dt, rot);
      cases.push_back({1, 300, 700, 4, 4, d, 200, 30});  // window on both sides, s_q < s_k
      for (const Case& c : cases) {
        Inputs in;
        in.c = c;
        in.dt = dt;
        make_inputs(in, rng);
        check_case(in, khd, run_sm90, false);
      }
    }
  }
}

void run_sanitize(std::mt19937_64& rng) {
  std::printf("\n== small cases (one per kernel head dim) for compute-sanitizer\n");
  print_header();
  for (int d : {64, 128}) {
    Inputs in;
    in.c = {1, 70, 300, 2, 1, d, -1, 0};
    in.dt = DType::kBFloat16;
    make_inputs(in, rng);
    check_case(in, d, run_sm90, false);
  }
}

void time_one(Bench& bench, int d, int s, bool causal) {
  const int b = 16384 / s, h = 2048 / d;
  AttnParams p = bench.params(b, s, h, d, causal);
  peak_pool_bytes();
  const float ms = time_ms([&] { run_sm90(p, nullptr); });
  CK(cudaGetLastError());
  const size_t ws = peak_pool_bytes();
  std::printf("%-4d %-7s %-6d %-4d %-4d %-10.3f %-9.1f %.1f MB\n", d, causal ? "yes" : "no", s, b, h, ms,
              bwd_flops(p) / (ms * 1e-3) / 1e12, ws / 1048576.0);
  std::fflush(stdout);
}

// Shapes beside the default ones (BwdConfig), timed against them.
struct Variant {
  const char* name;
  int d;
  void (*run)(const AttnParams&, cudaStream_t);
};
const Variant kVariants[] = {
    {"d128 3 stages", 128, flashattn::sm90::launch_bwd_tile<flashattn::sm90::BwdTile<128, 3>, flashattn::sm80::Bf16>},
    {"d64 3 stages", 64, flashattn::sm90::launch_bwd_tile<flashattn::sm90::BwdTile<64, 3>, flashattn::sm80::Bf16>},
};

void run_variants(std::mt19937_64& rng, Bench& bench) {
  std::printf("\n== variants: check, then time (bf16)\n");
  print_header();
  for (const Variant& v : kVariants) {
    std::printf("-- %s\n", v.name);
    for (Case c : {Case{1, 600, 700, 4, 2, v.d, 300, 0}, Case{2, 333, 77, 8, 1, v.d, -1, 0}}) {
      Inputs in;
      in.c = c;
      in.dt = DType::kBFloat16;
      make_inputs(in, rng);
      check_case(in, v.d, v.run, false);
    }
  }
  std::printf("%-20s %-7s %-6s %-10s %-9s %-10s\n", "variant", "causal", "seqlen", "ms", "TFLOP/s", "default");
  for (const Variant& v : kVariants) {
    for (int causal : {0, 1}) {
      for (int s : {2048, 16384}) {
        AttnParams p = bench.params(16384 / s, s, 2048 / v.d, v.d, causal);
        const float ms_def = time_ms([&] { run_sm90(p, nullptr); });
        const float ms = time_ms([&] { v.run(p, nullptr); });
        CK(cudaGetLastError());
        std::printf("%-20s %-7s %-6d %-10.3f %-9.1f %-9.1f\n", v.name, causal ? "yes" : "no", s, ms,
                    bwd_flops(p) / (ms * 1e-3) / 1e12, bwd_flops(p) / (ms_def * 1e-3) / 1e12);
        std::fflush(stdout);
      }
    }
  }
}

void run_time(Bench& bench) {
  std::printf("\n== timing: sm90 backward, bf16, batch*seqlen 16384, hidden 2048 (median of 10 after 3 warm-ups)\n");
  std::printf("%-4s %-7s %-6s %-4s %-4s %-10s %-9s %-10s\n", "d", "causal", "seqlen", "b", "h", "ms", "TFLOP/s", "workspace");
  for (int d : {64, 128}) {
    for (int causal : {0, 1}) {
      for (int s : {512, 1024, 2048, 4096, 8192, 16384}) time_one(bench, d, s, causal);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  bool check = false, sanitize = false, timing = false, variants = false;
  int one_d = 0, one_s = 0, one_causal = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--check") check = true;
    else if (a == "--sanitize") sanitize = true;
    else if (a == "--time") timing = true;
    else if (a == "--variants") variants = true;
    else if (a == "--one" && i + 3 < argc) {
      one_d = std::atoi(argv[++i]);
      one_s = std::atoi(argv[++i]);
      one_causal = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "unknown flag %s\n", a.c_str());
      return 2;
    }
  }
  if (!check && !sanitize && !timing && one_d == 0) check = timing = true;
  const uint64_t seed = std::random_device{}() ^ (uint64_t(std::random_device{}()) << 32);
  std::printf("seed %llu\n", static_cast<unsigned long long>(seed));
  std::mt19937_64 rng(seed);
  cudaDeviceProp prop;
  CK(cudaGetDeviceProperties(&prop, 0));
  std::printf("device %s, sm_%d%d, %d SMs\n", prop.name, prop.major, prop.minor, prop.multiProcessorCount);
  {
    // As the addon does (cuda/runtime.cu): the pool keeps freed memory, so a workspace reused call
    // after call is not mapped again each time.
    cudaMemPool_t pool;
    CK(cudaDeviceGetDefaultMemPool(&pool, 0));
    uint64_t keep = ~uint64_t{0};
    CK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep));
  }
  if (sanitize) run_sanitize(rng);
  if (check) run_check(rng);
  if (timing || one_d || variants) {
    Bench bench;
    if (variants) run_variants(rng, bench);
    if (one_d) time_one(bench, one_d, one_s, one_causal);
    if (timing) run_time(bench);
  }
  if (sanitize || check || variants) std::printf("\ncorrectness: %d passed, %d failed\n", g_pass, g_fail);
  return g_fail == 0 ? 0 : 1;
}
