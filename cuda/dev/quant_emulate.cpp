// quant_emulate.cpp — the device quantization of cuda/quant/quant_kernel.cuh replayed on the host
// (not part of the addon): the same e4m3.h functions, and the warp's Hadamard butterflies with 32
// "lanes" of d/32 registers each (partner lane l ^ m, lower lane a + b, upper a - b), so that
// scripts/quant-emulate-check.ts can compare its bits with src-ts/fp8.ts quantizeHost without a GPU.
//
//   g++ -O2 -std=c++17 -I. -Icuda cuda/dev/quant_emulate.cpp -o /tmp/quant_emulate
//   /tmp/quant_emulate in.f32 b s h d hadamard(0|1) per_tensor(0|1) out.e4m3 out.descale   (bshd)
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "quant/e4m3.h"

using namespace flashattn::quant;

// One row as the warp holds it: lane l, register e is element l*E + e.
static void rotate_as_warp(std::vector<float>& row, int d) {
  const int E = d / 32;
  std::vector<float> x(row);  // x[l*E + e]
  for (int i = 0; i < d; ++i)
    if (hadamard_flips(i)) x[i] = -x[i];
  for (int h = 1; h < E; h *= 2)
    for (int l = 0; l < 32; ++l)
      for (int e = 0; e < E; ++e)
        if ((e & h) == 0) {
          const float a = x[l * E + e], b = x[l * E + e + h];
          x[l * E + e] = a + b;
          x[l * E + e + h] = a - b;
        }
  for (int m = 1; m < 32; m *= 2) {
    std::vector<float> y(x);
    for (int l = 0; l < 32; ++l)
      for (int e = 0; e < E; ++e) {
        const float other = x[(l ^ m) * E + e];
        y[l * E + e] = (l & m) == 0 ? x[l * E + e] + other : other - x[l * E + e];
      }
    x = y;
  }
  const float n = hadamard_norm(d);
  for (int i = 0; i < d; ++i) row[i] = x[i] * n;
}

int main(int argc, char** argv) {
  if (argc != 10) {
    std::fprintf(stderr, "usage: quant_emulate in.f32 b s h d hadamard per_tensor out.e4m3 out.descale\n");
    return 2;
  }
  const int b = std::atoi(argv[2]), s = std::atoi(argv[3]), h = std::atoi(argv[4]), d = std::atoi(argv[5]);
  const bool had = std::atoi(argv[6]) != 0, per_tensor = std::atoi(argv[7]) != 0;
  const size_t n = static_cast<size_t>(b) * s * h * d;
  std::vector<float> x(n);
  FILE* f = std::fopen(argv[1], "rb");
  if (!f || std::fread(x.data(), 4, n, f) != n) return 1;
  std::fclose(f);
  if (had) {
    std::vector<float> row(d);
    for (size_t r = 0; r < n / d; ++r) {
      for (int c = 0; c < d; ++c) row[c] = x[r * d + c];
      rotate_as_warp(row, d);
      for (int c = 0; c < d; ++c) x[r * d + c] = row[c];
    }
  }
  std::vector<float> amax(static_cast<size_t>(b) * h, 0.f), scale(amax.size()), descale(amax.size());
  for (size_t i = 0; i < n; ++i) {
    const size_t bh = (i / (static_cast<size_t>(s) * h * d)) * h + (i / d) % h;
    amax[bh] = std::fmax(amax[bh], amax_term(x[i]));
  }
  float all = 0.f;
  for (float a : amax) all = std::fmax(all, a);
  for (size_t i = 0; i < amax.size(); ++i) {
    const float a = per_tensor ? all : amax[i];
    scale[i] = a > 0.f ? std::fmin(kE4m3Max / a, kMaxScale) : 1.f;
    descale[i] = 1.f / scale[i];
  }
  std::vector<uint8_t> bits(n);
  for (size_t i = 0; i < n; ++i) {
    const size_t bh = (i / (static_cast<size_t>(s) * h * d)) * h + (i / d) % h;
    bits[i] = f32_to_e4m3(x[i] * scale[bh]);
  }
  f = std::fopen(argv[8], "wb");
  std::fwrite(bits.data(), 1, n, f);
  std::fclose(f);
  f = std::fopen(argv[9], "wb");
  std::fwrite(descale.data(), 4, descale.size(), f);
  std::fclose(f);
  return 0;
}
