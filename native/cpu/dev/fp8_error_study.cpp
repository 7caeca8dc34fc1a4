// fp8_error_study.cpp — where the fp8 forward's error comes from, on the CPU (not part of the
// addon builds). FlashAttention-3's outlier protocol: q, k, v ~ N(0, 1) plus N(0, 100) on 0.1% of
// the entries; RMSE of the output against float64 attention on the unquantized values, with one
// source of rounding switched on at a time:
//   q / k / v   quantized per (batch, head) as quantizeFp8 does (cuda/quant/e4m3.h: float32 scale
//               min(448/amax, 2^127), x·scale rounded to e4m3, times descale = 1/scale);
//   P           rounded to e4m3 the way the sm90 kernel does it (cuda/sm90/fwd_softmax.h): key
//               blocks of 128 from the last one back, running row max m, p = exp2((s - m)·scale·log2e
//               + 8) in float32 rounded to e4m3, l the sum of the unrounded p, O rescaled by the
//               running max's correction;
//   rot         q and k rotated by the fixed randomized Hadamard of quantizeFp8({hadamard: true})
//               (in float32, as it does) before they are quantized.
// Everything else is float64.
//
//   g++ -O3 -march=native -std=c++17 -pthread -I. native/cpu/dev/fp8_error_study.cpp -o /tmp/fp8_error_study
//   /tmp/fp8_error_study [seqlen, default 4096] [seed]
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "cuda/quant/e4m3.h"

namespace {

using flashattn::quant::f32_to_e4m3;

constexpr int kB = 1, kH = 4, kD = 128, kBlockN = 128, kPLog2 = 8;

double e4m3_value(uint8_t b) {
  const int exp = (b >> 3) & 0xf, mant = b & 7;
  const double sign = (b & 0x80) ? -1.0 : 1.0;
  if (exp == 15 && mant == 7) return NAN;
  if (exp == 0) return sign * std::ldexp(mant, -9);
  return sign * std::ldexp(1.0 + mant / 8.0, exp - 7);
}

// One head's (s, d) values, quantized as quantizeFp8 does (granularity 'head').
std::vector<double> quantize_head(const std::vector<float>& x) {
  float amax = 0.f;
  for (float e : x) amax = std::max(amax, flashattn::quant::amax_term(e));
  const float scale = flashattn::quant::scale_of(amax), descale = 1.f / scale;
  std::vector<double> out(x.size());
  for (size_t i = 0; i < x.size(); ++i) out[i] = e4m3_value(f32_to_e4m3(x[i] * scale)) * descale;
  return out;
}

std::vector<float> rotate_head(const std::vector<float>& x, int s) {
  std::vector<float> y = x;
  for (int i = 0; i < s; ++i) flashattn::quant::hadamard_row(&y[static_cast<size_t>(i) * kD], kD);
  return y;
}

std::vector<double> widen(const std::vector<float>& x) { return std::vector<double>(x.begin(), x.end()); }

std::vector<double> transpose(const std::vector<double>& x, int s) {  // (s, d) -> (d, s)
  std::vector<double> t(x.size());
  for (int i = 0; i < s; ++i)
    for (int c = 0; c < kD; ++c) t[static_cast<size_t>(c) * s + i] = x[static_cast<size_t>(i) * kD + c];
  return t;
}

struct Config {
  std::string name;
  int qk;  // index into the score sources
  bool v8, p8;
};

// Score sources: which q and which kᵀ.
struct Scores {
  const std::vector<double>* q;
  const std::vector<double>* kt;
};

// One output row: softmax(s) · v, P exact (float64) or rounded as the kernel rounds it.
void output_row(const double* s, int n, double scale, const std::vector<double>& v, bool p8, double* o) {
  std::fill(o, o + kD, 0.0);
  if (!p8) {
    double m = -INFINITY;
    for (int j = 0; j < n; ++j) m = std::max(m, s[j]);
    double l = 0;
    std::vector<double> p(n);
    for (int j = 0; j < n; ++j) l += p[j] = std::exp((s[j] - m) * scale);
    for (int j = 0; j < n; ++j) {
      const double w = p[j] / l;
      const double* vr = &v[static_cast<size_t>(j) * kD];
      for (int c = 0; c < kD; ++c) o[c] += w * vr[c];
    }
    return;
  }
  const float scale_log2 = static_cast<float>(scale * 1.4426950408889634);
  double m = -INFINITY, l = 0;
  const int blocks = (n + kBlockN - 1) / kBlockN;
  for (int bk = blocks - 1; bk >= 0; --bk) {
    const int j0 = bk * kBlockN, j1 = std::min(n, j0 + kBlockN);
    double mx = m;
    for (int j = j0; j < j1; ++j) mx = std::max(mx, s[j]);
    const double corr = m == -INFINITY ? 1.0 : std::exp2((m - mx) * scale_log2);
    for (int c = 0; c < kD; ++c) o[c] *= corr;
    l *= corr;
    for (int j = j0; j < j1; ++j) {
      const float p = std::exp2(static_cast<float>(s[j] - mx) * scale_log2 + static_cast<float>(kPLog2));
      l += p;
      const double pr = e4m3_value(f32_to_e4m3(p));
      const double* vr = &v[static_cast<size_t>(j) * kD];
      for (int c = 0; c < kD; ++c) o[c] += pr * vr[c];
    }
    m = mx;
  }
  for (int c = 0; c < kD; ++c) o[c] /= l;
}

}  // namespace

int main(int argc, char** argv) {
  const int s = argc > 1 ? std::atoi(argv[1]) : 4096;
  const uint64_t seed = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : std::random_device{}();
  std::printf("fp8 error study: outlier protocol, b%d h%d s%d d%d, seed %llu\n", kB, kH, s, kD, static_cast<unsigned long long>(seed));
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> nd(0.0, 1.0);
  std::uniform_real_distribution<double> ud(0.0, 1.0);
  const double scale = 1.0 / std::sqrt(static_cast<double>(kD));

  const std::vector<Config> configs = {
      {"exact q, k, v, P (float64 check)", 0, false, false},
      {"q quantized", 1, false, false},
      {"k quantized", 2, false, false},
      {"v quantized", 0, true, false},
      {"P quantized (kernel's rule)", 0, false, true},
      {"q, k, v quantized", 3, true, false},
      {"q, k, v, P quantized (the fp8 kernel)", 3, true, true},
      {"rot: q quantized", 4, false, false},
      {"rot: k quantized", 5, false, false},
      {"rot: q, k quantized", 6, false, false},
      {"rot: q, k, v quantized", 6, true, false},
      {"rot: q, k, v, P quantized", 6, true, true},
  };
  std::vector<double> se(configs.size(), 0.0);
  const size_t n = static_cast<size_t>(s) * kD;
  for (int h = 0; h < kH; ++h) {
    std::vector<float> qf(n), kf(n), vf(n);
    for (auto* x : {&qf, &kf, &vf})
      for (float& e : *x) e = static_cast<float>(nd(rng) + (ud(rng) < 1e-3 ? 10.0 * nd(rng) : 0.0));
    const std::vector<double> q = widen(qf), k = widen(kf), v = widen(vf);
    const std::vector<double> q8 = quantize_head(qf), k8 = quantize_head(kf), v8 = quantize_head(vf);
    const std::vector<float> qr = rotate_head(qf, s), kr = rotate_head(kf, s);
    const std::vector<double> qrw = widen(qr), krw = widen(kr);
    const std::vector<double> qr8 = quantize_head(qr), kr8 = quantize_head(kr);
    const std::vector<double> kt = transpose(k, s), kt8 = transpose(k8, s), krt = transpose(krw, s), krt8 = transpose(kr8, s);
    const std::vector<Scores> src = {{&q, &kt}, {&q8, &kt}, {&q, &kt8}, {&q8, &kt8}, {&qr8, &krt}, {&qrw, &krt8}, {&qr8, &krt8}};
    std::vector<std::vector<double>> part(2, std::vector<double>(configs.size(), 0.0));
    auto work = [&](int t) {
      std::vector<std::vector<double>> sc(src.size(), std::vector<double>(s));
      std::vector<double> ref(kD), o(kD);
      for (int i = t; i < s; i += 2) {
        for (size_t a = 0; a < src.size(); ++a) {
          double* row = sc[a].data();
          std::fill(row, row + s, 0.0);
          const double* qi = &(*src[a].q)[static_cast<size_t>(i) * kD];
          for (int c = 0; c < kD; ++c) {
            const double x = qi[c];
            const double* kc = &(*src[a].kt)[static_cast<size_t>(c) * s];
            for (int j = 0; j < s; ++j) row[j] += x * kc[j];
          }
        }
        output_row(sc[0].data(), s, scale, v, false, ref.data());
        for (size_t ci = 0; ci < configs.size(); ++ci) {
          const Config& cf = configs[ci];
          output_row(sc[cf.qk].data(), s, scale, cf.v8 ? v8 : v, cf.p8, o.data());
          for (int c = 0; c < kD; ++c) part[t][ci] += (o[c] - ref[c]) * (o[c] - ref[c]);
        }
      }
    };
    std::thread t1(work, 1);
    work(0);
    t1.join();
    for (size_t ci = 0; ci < configs.size(); ++ci) se[ci] += part[0][ci] + part[1][ci];
    std::fprintf(stderr, "head %d done\n", h);
  }
  std::printf("%-40s %s\n", "what is rounded (else float64)", "RMSE vs float64");
  for (size_t ci = 0; ci < configs.size(); ++ci) {
    std::printf("%-40s %.3e\n", configs[ci].name.c_str(), std::sqrt(se[ci] / (static_cast<double>(kB) * kH * n)));
  }
  return 0;
}
