// check_cpu.cpp — standalone check and bench of the CPU backend (not part of the addon builds).
//
//   g++ -O3 -std=c++17 -pthread -I/work/main -I/work/main/cuda native/cpu/*.cpp
//       native/cpu/dev/check_cpu.cpp -o /tmp/check_cpu
//     (add -DFLASHATTN_CPU_GNU_VECTORS=0 to test the plain-struct fallback of tile_math.h)
//   /tmp/check_cpu            # all checks, fresh random seed (printed)
//   /tmp/check_cpu 1234       # all checks with seed 1234
//   /tmp/check_cpu bench      # forward vs naive_forward timing, b=1 h=16 d=64 s=4096 float32
//   /tmp/check_cpu bench S REPS [causal|nc] [bwd|nobwd] H B THREADS D DTYPE
//     CHECK_CPU_TIME=1: time this thread's CPU time (use with THREADS=1 on a shared machine)
//     FLASHATTN_CPU_SIMD=generic: time the portable 4-wide path
//
// What it checks:
//   - half.h: every float16 bit pattern round-trips; float -> float16 against the compiler's
//     _Float16 (where it exists) and, for both 16-bit types, against "nearest neighbour, ties to
//     even" found by search; NaN/Inf/subnormals.
//   - exp2_approx accuracy.
//   - forward, naive_forward, backward against an independent float64 reference (written here from
//     the window formula of DESIGN.md, not key_range()), over shapes / GQA / masks / dtypes:
//       float32: max |err| / max |ref| <= 1e-5 per tensor (for dq and dk the denominator is at least
//       max |dv|: where every row sees one key, P is one-hot and dq = dk = 0 exactly, while the
//       computed dP - D cancels only to rounding);
//       float16, bfloat16: max |err| <= 2 * (max |err| of the same attention done naively in that
//       dtype) + 1 ulp of max |ref| (the flash-attn rule).
//     Outputs are poisoned with NaN first; padding of strided outputs must stay untouched; no NaN;
//     rows that see no key give out = 0, lse = -inf, dq = 0; keys that no row sees give dk = dv = 0.
//   - backward accuracy at input magnitudes 1 to 1e4 (float32: <= 1e-4 from 1e3 up; float16: no
//     NaN, Inf only where the float64 gradient overflows float16); prints one line per case.
//   - forward and backward are bit-identical for 1, 2 and 3 threads.
//   - all of the above on the SIMD path the CPU picks (avx2+fma here) and on the portable one.
//   - unsupported requests throw std::invalid_argument.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "native/cpu/cpu_backend.h"
#include "native/cpu/half.h"
#include "native/cpu/tile_math.h"

using namespace flashattn;
using flashattn::cpu::bf16_to_float;
using flashattn::cpu::float_to_bf16;
using flashattn::cpu::float_to_half;
using flashattn::cpu::half_to_float;

static int g_failures = 0;
static int g_checks = 0;

#define CHECK(cond, ...)                                    \
  do {                                                      \
    ++g_checks;                                             \
    if (!(cond)) {                                          \
      ++g_failures;                                         \
      std::printf("  FAIL %s:%d: ", __FILE__, __LINE__);    \
      std::printf(__VA_ARGS__);                             \
      std::printf("\n");                                    \
    }                                                       \
  } while (0)

static uint32_t fbits(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }
static float bitsf(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }

// ================================ 16-bit conversions =============================================

// The nearest value of a monotone 16-bit format to x, ties to even, found by search over the
// finite positive codes [0, max_code] (used as an oracle independent of the bit tricks).
static uint16_t nearest_code(float x, float (*decode)(uint16_t), uint16_t max_code, uint16_t inf_code,
                             double overflow_at) {
  const uint16_t sign = std::signbit(x) ? 0x8000 : 0;
  const double a = std::fabs(static_cast<double>(x));
  if (a >= overflow_at) return sign | inf_code;
  uint16_t lo = 0, hi = max_code;  // largest code with value <= a
  while (lo < hi) {
    const uint16_t mid = static_cast<uint16_t>((lo + hi + 1) / 2);
    if (decode(mid) <= a) lo = mid; else hi = static_cast<uint16_t>(mid - 1);
  }
  if (lo == max_code) return sign | lo;
  const double d0 = a - decode(lo), d1 = decode(static_cast<uint16_t>(lo + 1)) - a;
  uint16_t c = lo;
  if (d1 < d0 || (d1 == d0 && (lo & 1))) c = static_cast<uint16_t>(lo + 1);
  return sign | c;
}

static void check_half() {
  std::printf("[half.h]\n");
  // Every half: half -> float -> half is the identity (NaNs stay NaN).
  int bad = 0;
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = half_to_float(static_cast<uint16_t>(h));
    const uint16_t back = float_to_half(f);
    const bool is_nan = (h & 0x7c00) == 0x7c00 && (h & 0x3ff);
    if (is_nan) { if (!std::isnan(f) || (back & 0x7c00) != 0x7c00 || !(back & 0x3ff)) ++bad; }
    else if (back != h) ++bad;
  }
  CHECK(bad == 0, "float16 round trip: %d codes wrong", bad);
#ifdef __FLT16_MAX__
  bad = 0;  // every half -> float against the compiler's own conversion
  for (uint32_t h = 0; h < 65536; ++h) {
    const uint16_t hb = static_cast<uint16_t>(h);
    _Float16 x;
    std::memcpy(&x, &hb, 2);
    const float want = static_cast<float>(x), got = half_to_float(hb);
    if (std::isnan(want) ? !std::isnan(got) : fbits(want) != fbits(got)) ++bad;
  }
  CHECK(bad == 0, "float16 -> float vs _Float16: %d codes wrong", bad);
#endif
  // Spot values.
  CHECK(half_to_float(0x3c00) == 1.f && half_to_float(0xc000) == -2.f, "half 1/-2");
  CHECK(half_to_float(0x0001) == std::ldexp(1.f, -24), "smallest half subnormal");
  CHECK(half_to_float(0x7bff) == 65504.f, "max half");
  CHECK(std::isinf(half_to_float(0x7c00)) && half_to_float(0xfc00) < 0, "half inf");
  CHECK(float_to_half(65519.f) == 0x7bff && float_to_half(65520.f) == 0x7c00, "half overflow edge");
  CHECK(float_to_half(std::ldexp(1.f, -25)) == 0x0000, "2^-25 ties to even -> 0");
  CHECK(float_to_half(std::ldexp(1.5f, -25)) == 0x0001, "1.5*2^-25 -> 1 subnormal");
  CHECK(float_to_half(-0.f) == 0x8000, "-0");
  CHECK(float_to_bf16(1.f) == 0x3f80 && bf16_to_float(0x3f80) == 1.f, "bf16 1");
  CHECK(std::isnan(bf16_to_float(float_to_bf16(std::nanf("")))), "bf16 nan");
  CHECK(std::isnan(bf16_to_float(float_to_bf16(bitsf(0x7f800001u)))), "bf16 low-payload nan stays nan");
  CHECK(float_to_bf16(bitsf(0x7f7fffffu)) == 0x7f80, "bf16 overflow to inf");

  std::mt19937 rng(12345);
  int bad_h = 0, bad_b = 0, bad_f16 = 0;
  const int n = 2000000;
  for (int t = 0; t < n; ++t) {
    uint32_t u = rng();
    if (t % 4 == 1) u = (u & 0x80000000u) | (0x33000000u + (u % 0x14800000u));  // half's range
    if (t % 4 == 2) u = (fbits(half_to_float(static_cast<uint16_t>(u))) | 0x1000u) & ~0xfffu;  // halfway points
    if (t % 4 == 3) u = (u & 0xffff0000u) | 0x8000u;                                      // bf16 halfway
    const float x = bitsf(u);
    if (std::isnan(x)) continue;
    if (float_to_half(x) != nearest_code(x, half_to_float, 0x7bff, 0x7c00, 65520.0)) ++bad_h;
    if (float_to_bf16(x) != nearest_code(x, bf16_to_float, 0x7f7f, 0x7f80,
                                         (static_cast<double>(bf16_to_float(0x7f7f)) + std::ldexp(1.0, 127 - 8))))
      ++bad_b;
#ifdef __FLT16_MAX__
    const _Float16 hx = static_cast<_Float16>(x);
    uint16_t hb;
    std::memcpy(&hb, &hx, 2);
    if (hb != float_to_half(x)) ++bad_f16;
#endif
  }
  CHECK(bad_h == 0, "float -> float16 vs nearest-even search: %d of %d wrong", bad_h, n);
  CHECK(bad_b == 0, "float -> bfloat16 vs nearest-even search: %d of %d wrong", bad_b, n);
#ifdef __FLT16_MAX__
  CHECK(bad_f16 == 0, "float -> float16 vs _Float16: %d of %d wrong", bad_f16, n);
  std::printf("  float16 round trip all 65536 codes; %d random floats vs search and _Float16\n", n);
#else
  std::printf("  float16 round trip all 65536 codes; %d random floats vs search (no _Float16 here)\n", n);
#endif
}

static void check_exp2() {
  std::printf("[exp2_approx]\n");
  double worst = 0;
  for (int t = 0; t <= 2000000; ++t) {
    const float x = -126.f + 127.f * static_cast<float>(t) / 2000000.f;
    const double ref = std::exp2(static_cast<double>(x));
    const double err = std::fabs(cpu::exp2_approx(x) - ref) / ref;
    worst = std::max(worst, err);
  }
  CHECK(worst < 5e-7, "exp2_approx max rel err %.3g", worst);
  CHECK(cpu::exp2_approx(-std::numeric_limits<float>::infinity()) == 0.f, "exp2(-inf) = 0");
  CHECK(cpu::exp2_approx(-200.f) == 0.f && cpu::exp2_approx(0.f) == 1.f, "exp2 ends");
  std::printf("  max relative error on [-126, 1]: %.3g (float eps %.3g)\n", worst, 1.19e-7);
}

// ================================ attention =====================================================

struct Cfg {
  int b, sq, sk, h, hk, d, wl, wr;
  DType dt;
  bool padded = false;  // strided (non-contiguous) tensors with poisoned gaps
};

static std::string cfg_name(const Cfg& c) {
  char buf[200];
  std::snprintf(buf, sizeof buf, "b=%d sq=%d sk=%d h=%d hk=%d d=%d win=[%d,%d] %s%s", c.b, c.sq, c.sk, c.h,
                c.hk, c.d, c.wl, c.wr, dtype_name(c.dt), c.padded ? " strided" : "");
  return buf;
}

// A (b, s, heads, d) tensor in dtype bits (float32 or uint16 stored in uint32/uint16 vectors).
struct Tensor {
  int b = 0, s = 0, heads = 0, d = 0;
  DType dt = DType::kFloat32;
  Strides st;
  std::vector<uint8_t> bytes;
  int es() const { return dtype_size(dt); }
  int64_t off(int bi, int si, int hi) const { return bi * st.batch + si * st.row + hi * st.head; }

  Tensor() = default;
  Tensor(int b_, int s_, int heads_, int d_, DType dt_, bool padded) : b(b_), s(s_), heads(heads_), d(d_), dt(dt_) {
    if (padded) {
      st.head = d + 8;
      st.row = heads * st.head + 16;
      st.batch = s * st.row + 32;
    } else {
      st = contiguous_strides(s, heads, d);
    }
    bytes.assign(static_cast<size_t>(std::max<int64_t>(b * st.batch, 1)) * es(), 0);
  }
  void poison() {  // NaN everywhere, padding included
    if (dt == DType::kFloat32) {
      for (size_t i = 0; i < bytes.size(); i += 4) { uint32_t nan = 0x7fc00001u; std::memcpy(&bytes[i], &nan, 4); }
    } else {
      for (size_t i = 0; i < bytes.size(); i += 2) { uint16_t nan = dt == DType::kFloat16 ? 0x7e01 : 0x7fc1; std::memcpy(&bytes[i], &nan, 2); }
    }
  }
  double get(int bi, int si, int hi, int c) const {
    const int64_t o = off(bi, si, hi) + c;
    if (dt == DType::kFloat32) { float f; std::memcpy(&f, &bytes[o * 4], 4); return f; }
    uint16_t u; std::memcpy(&u, &bytes[o * 2], 2);
    return dt == DType::kFloat16 ? half_to_float(u) : bf16_to_float(u);
  }
  void set(int bi, int si, int hi, int c, float f) {
    const int64_t o = off(bi, si, hi) + c;
    if (dt == DType::kFloat32) { std::memcpy(&bytes[o * 4], &f, 4); return; }
    const uint16_t u = dt == DType::kFloat16 ? float_to_half(f) : float_to_bf16(f);
    std::memcpy(&bytes[o * 2], &u, 2);
  }
  void randn(std::mt19937_64& rng, double sd = 1.0) {
    std::normal_distribution<float> N(0.f, static_cast<float>(sd));
    for (int bi = 0; bi < b; ++bi) for (int si = 0; si < s; ++si) for (int hi = 0; hi < heads; ++hi)
      for (int c = 0; c < d; ++c) set(bi, si, hi, c, N(rng));
  }
  // Number of padding elements that were changed from the poison pattern (must stay 0).
  int64_t padding_touched() const {
    Tensor ref(*this);
    ref.poison();
    int64_t changed = 0;
    std::vector<uint8_t> is_data(bytes.size() / es(), 0);
    for (int bi = 0; bi < b; ++bi) for (int si = 0; si < s; ++si) for (int hi = 0; hi < heads; ++hi)
      for (int c = 0; c < d; ++c) is_data[off(bi, si, hi) + c] = 1;
    for (size_t e = 0; e < is_data.size(); ++e)
      if (!is_data[e] && std::memcmp(&bytes[e * es()], &ref.bytes[e * es()], es()) != 0) ++changed;
    return changed;
  }
};

// Rounding applied at each stage of the reference: identity for float64, the dtype for the
// "naive attention in that dtype" baseline of the 16-bit tolerance rule.
using Round = std::function<double(double)>;

static Round round_to(DType dt) {
  switch (dt) {
    case DType::kFloat16: return [](double x) { return static_cast<double>(half_to_float(float_to_half(static_cast<float>(x)))); };
    case DType::kBFloat16: return [](double x) { return static_cast<double>(bf16_to_float(float_to_bf16(static_cast<float>(x)))); };
    default: return [](double x) { return static_cast<double>(static_cast<float>(x)); };
  }
}

struct RefOut {
  std::vector<double> out, lse, dq, dk, dv;  // contiguous (b, s, h, d) / (b, h, s_q)
};

// Query i sees key j iff i + sk - sq - wl <= j <= i + sk - sq + wr (a bound of -1 is unbounded).
static bool sees(const Cfg& c, int i, int j) {
  const long diag = static_cast<long>(i) + c.sk - c.sq;
  if (c.wl >= 0 && j < diag - c.wl) return false;
  if (c.wr >= 0 && j > diag + c.wr) return false;
  return true;
}

// `acc` rounds every partial sum (identity: sums in double; float32: a naive float32 attention
// whose matmuls accumulate in float32).
static RefOut reference(const Cfg& c, float scale, const Tensor& q, const Tensor& k, const Tensor& v,
                        const Tensor& dout, const Round& rnd, const Round& acc = [](double x) { return x; }) {
  RefOut r;
  const int g = c.h / c.hk;
  r.out.assign(size_t(c.b) * c.sq * c.h * c.d, 0.0);
  r.lse.assign(size_t(c.b) * c.h * c.sq, 0.0);
  r.dq.assign(size_t(c.b) * c.sq * c.h * c.d, 0.0);
  r.dk.assign(size_t(c.b) * c.sk * c.hk * c.d, 0.0);
  r.dv.assign(size_t(c.b) * c.sk * c.hk * c.d, 0.0);
  std::vector<double> P(c.sk), dP(c.sk), o(c.d);
  std::vector<double> dk_h(size_t(c.sk) * c.d), dv_h(size_t(c.sk) * c.d);
  for (int b = 0; b < c.b; ++b)
    for (int h = 0; h < c.h; ++h) {
      const int hk = h / g;
      for (int i = 0; i < c.sq; ++i) {
        double m = -INFINITY;
        for (int j = 0; j < c.sk; ++j) {
          if (!sees(c, i, j)) { P[j] = -INFINITY; continue; }
          double s = 0;
          for (int e = 0; e < c.d; ++e) s = acc(s + q.get(b, i, h, e) * k.get(b, j, hk, e));
          P[j] = rnd(rnd(s) * scale);
          m = std::max(m, P[j]);
        }
        double& lse = r.lse[(size_t(b) * c.h + h) * c.sq + i];
        if (m == -INFINITY) { lse = -INFINITY; continue; }  // out row stays 0, grads 0
        double l = 0;
        for (int j = 0; j < c.sk; ++j) { P[j] = P[j] == -INFINITY ? 0.0 : std::exp(P[j] - m); l += P[j]; }
        lse = m + std::log(l);
        for (int j = 0; j < c.sk; ++j) P[j] = rnd(P[j] / l);
        std::fill(o.begin(), o.end(), 0.0);
        for (int j = 0; j < c.sk; ++j) if (P[j] != 0) for (int e = 0; e < c.d; ++e) o[e] += P[j] * v.get(b, j, hk, e);
        double* orow = &r.out[((size_t(b) * c.sq + i) * c.h + h) * c.d];
        for (int e = 0; e < c.d; ++e) orow[e] = rnd(o[e]);
        // backward of this row
        double D = 0;
        for (int j = 0; j < c.sk; ++j) {
          dP[j] = 0;
          if (P[j] == 0) continue;
          double s = 0;
          for (int e = 0; e < c.d; ++e) s = acc(s + dout.get(b, i, h, e) * v.get(b, j, hk, e));
          dP[j] = rnd(s);
          D = acc(D + P[j] * dP[j]);
        }
        double* dqrow = &r.dq[((size_t(b) * c.sq + i) * c.h + h) * c.d];
        for (int j = 0; j < c.sk; ++j) {
          if (P[j] == 0) continue;
          const double dS = rnd(P[j] * (dP[j] - D));
          for (int e = 0; e < c.d; ++e) {
            dqrow[e] = acc(dqrow[e] + dS * k.get(b, j, hk, e));
            double& dk = r.dk[((size_t(b) * c.sk + j) * c.hk + hk) * c.d + e];
            double& dv = r.dv[((size_t(b) * c.sk + j) * c.hk + hk) * c.d + e];
            dk = acc(dk + dS * q.get(b, i, h, e));
            dv = acc(dv + P[j] * dout.get(b, i, h, e));
          }
        }
        for (int e = 0; e < c.d; ++e) dqrow[e] *= scale;
      }
    }
  for (auto& x : r.dk) x *= scale;
  for (auto& x : r.dq) x = rnd(x);
  for (auto& x : r.dk) x = rnd(x);
  for (auto& x : r.dv) x = rnd(x);
  return r;
}

static AttnParams make_params(const Cfg& c, float scale, Tensor& q, Tensor& k, Tensor& v, Tensor& out,
                              std::vector<float>& lse, Tensor& dout, Tensor& dq, Tensor& dk, Tensor& dv) {
  AttnParams p;
  p.q = q.bytes.data(); p.k = k.bytes.data(); p.v = v.bytes.data(); p.out = out.bytes.data();
  p.lse = lse.data();
  p.q_stride = q.st; p.k_stride = k.st; p.v_stride = v.st; p.o_stride = out.st;
  p.dout = dout.bytes.data(); p.dq = dq.bytes.data(); p.dk = dk.bytes.data(); p.dv = dv.bytes.data();
  p.do_stride = dout.st; p.dq_stride = dq.st; p.dk_stride = dk.st; p.dv_stride = dv.st;
  p.b = c.b; p.s_q = c.sq; p.s_k = c.sk; p.h = c.h; p.h_k = c.hk; p.d = c.d; p.dtype = c.dt;
  p.scale = scale;
  p.window_left = c.wl; p.window_right = c.wr;
  return p;
}

// max |got - ref| over the data elements of t (ref contiguous), and max |ref|; counts NaN.
struct Err { double max_err = 0, max_ref = 0; int64_t nan = 0; };

static Err compare(const Tensor& t, const std::vector<double>& ref) {
  Err e;
  size_t idx = 0;
  for (int b = 0; b < t.b; ++b) for (int s = 0; s < t.s; ++s) for (int h = 0; h < t.heads; ++h)
    for (int c = 0; c < t.d; ++c, ++idx) {
      const double g = t.get(b, s, h, c);
      if (std::isnan(g)) { ++e.nan; continue; }
      e.max_err = std::max(e.max_err, std::fabs(g - ref[idx]));
      e.max_ref = std::max(e.max_ref, std::fabs(ref[idx]));
    }
  return e;
}

static double ulp_of(DType dt, double x) {
  const int mant = dt == DType::kFloat16 ? 10 : dt == DType::kBFloat16 ? 7 : 23;
  if (x == 0) return 0;
  return std::ldexp(1.0, std::ilogb(x) - mant);
}

static double worst_rel32 = 0;      // float32: worst max|err| / max|ref| over all tensors
static double worst_ratio16 = 0;    // 16-bit: worst err / (err of naive-in-dtype)

// Checks one output tensor against the float64 reference (and, for 16-bit, the naive-in-dtype one).
static void check_tensor(const char* what, const Cfg& c, const Tensor& got, const std::vector<double>& ref,
                         const std::vector<double>* lowp, double floor = 0) {
  Err e = compare(got, ref);
  e.max_ref = std::max(e.max_ref, floor);
  CHECK(e.nan == 0, "%s: %s has %lld NaN", cfg_name(c).c_str(), what, (long long)e.nan);
  if (got.st.batch != contiguous_strides(got.s, got.heads, got.d).batch || got.st.head != got.d)
    CHECK(got.padding_touched() == 0, "%s: %s wrote into padding", cfg_name(c).c_str(), what);
  if (e.max_ref == 0) {
    CHECK(e.max_err == 0, "%s: %s should be all zero, max |got| %.3g", cfg_name(c).c_str(), what, e.max_err);
    return;
  }
  if (c.dt == DType::kFloat32) {
    const double rel = e.max_err / e.max_ref;
    worst_rel32 = std::max(worst_rel32, rel);
    CHECK(rel <= 1e-5, "%s: %s rel err %.3g > 1e-5", cfg_name(c).c_str(), what, rel);
  } else {
    double base = 0;
    size_t idx = 0;
    for (double x : *lowp) base = std::max(base, std::fabs(x - ref[idx++]));
    const double atol = ulp_of(c.dt, e.max_ref);
    if (base > 0) worst_ratio16 = std::max(worst_ratio16, e.max_err / base);
    CHECK(e.max_err <= 2 * base + atol, "%s: %s err %.3g > 2 x naive-%s err %.3g + %.3g", cfg_name(c).c_str(), what,
          e.max_err, dtype_name(c.dt), base, atol);
  }
}

static bool same_bits(const Tensor& a, const Tensor& b) { return a.bytes == b.bytes; }

static void run_case(const Cfg& c, std::mt19937_64& rng) {
  const float scale = 1.f / std::sqrt(static_cast<float>(c.d));
  Tensor q(c.b, c.sq, c.h, c.d, c.dt, c.padded), k(c.b, c.sk, c.hk, c.d, c.dt, c.padded),
      v(c.b, c.sk, c.hk, c.d, c.dt, c.padded), dout(c.b, c.sq, c.h, c.d, c.dt, c.padded);
  q.randn(rng); k.randn(rng); v.randn(rng); dout.randn(rng);
  Tensor out(c.b, c.sq, c.h, c.d, c.dt, c.padded), dq = out, dk(c.b, c.sk, c.hk, c.d, c.dt, c.padded), dv = dk;
  out.poison(); dq.poison(); dk.poison(); dv.poison();
  std::vector<float> lse(size_t(c.b) * c.h * c.sq, std::nanf(""));

  const RefOut ref = reference(c, scale, q, k, v, dout, [](double x) { return x; });
  RefOut lowp;
  if (c.dt != DType::kFloat32) lowp = reference(c, scale, q, k, v, dout, round_to(c.dt));

  AttnParams p = make_params(c, scale, q, k, v, out, lse, dout, dq, dk, dv);
  auto check_fwd = [&](const char* which) {
    char what[64];
    std::snprintf(what, sizeof what, "%s out", which);
    check_tensor(what, c, out, ref.out, c.dt == DType::kFloat32 ? nullptr : &lowp.out);
    double lse_err = 0;
    int bad_inf = 0, nan = 0;
    for (size_t i = 0; i < lse.size(); ++i) {
      if (std::isnan(lse[i])) { ++nan; continue; }
      if (std::isinf(ref.lse[i])) { if (!(lse[i] == -INFINITY)) ++bad_inf; continue; }
      if (std::isinf(lse[i])) { ++bad_inf; continue; }
      lse_err = std::max(lse_err, std::fabs(lse[i] - ref.lse[i]) / std::max(1.0, std::fabs(ref.lse[i])));
    }
    const double lse_tol = 1e-5;  // float32 for every dtype: the 16-bit inputs are exact in float
    CHECK(nan == 0 && bad_inf == 0, "%s: %s lse: %d NaN, %d wrong -inf", cfg_name(c).c_str(), which, nan, bad_inf);
    CHECK(lse_err <= lse_tol, "%s: %s lse err %.3g", cfg_name(c).c_str(), which, lse_err);
    // Rows that see no key: exactly zero output.
    for (int b = 0; b < c.b; ++b) for (int i = 0; i < c.sq; ++i) {
      bool any = false;
      for (int j = 0; j < c.sk && !any; ++j) any = sees(c, i, j);
      if (any) continue;
      for (int h = 0; h < c.h; ++h) for (int e = 0; e < c.d; ++e)
        if (out.get(b, i, h, e) != 0.0 || std::signbit(out.get(b, i, h, e))) { CHECK(false, "%s: %s empty row %d not +0", cfg_name(c).c_str(), which, i); return; }
    }
  };

  // forward, thread counts 1, 2, 3 must agree bit for bit
  cpu::forward(p, 2);
  check_fwd("forward");
  const Tensor out2 = out;
  const std::vector<float> lse2 = lse;
  for (int threads : {1, 3}) {
    out.poison();
    std::fill(lse.begin(), lse.end(), std::nanf(""));
    cpu::forward(p, threads);
    CHECK(same_bits(out, out2) && std::memcmp(lse.data(), lse2.data(), lse.size() * 4) == 0,
          "%s: forward differs between 2 and %d threads", cfg_name(c).c_str(), threads);
  }

  // naive_forward
  out.poison();
  std::fill(lse.begin(), lse.end(), std::nanf(""));
  cpu::naive_forward(p, 2);
  check_fwd("naive_forward");

  // backward from the tiled forward's out/lse; 2 threads, then 1 and 3 must match bit for bit
  out = out2;
  lse = lse2;
  p.out = out.bytes.data();
  p.lse = lse.data();
  cpu::backward(p, 2);
  double dv_max = 0;
  for (double x : ref.dv) dv_max = std::max(dv_max, std::fabs(x));
  check_tensor("dq", c, dq, ref.dq, c.dt == DType::kFloat32 ? nullptr : &lowp.dq, dv_max);
  check_tensor("dk", c, dk, ref.dk, c.dt == DType::kFloat32 ? nullptr : &lowp.dk, dv_max);
  check_tensor("dv", c, dv, ref.dv, c.dt == DType::kFloat32 ? nullptr : &lowp.dv);
  // Structural zeros: dq of rows that see no key, dk/dv of keys that no row sees (exactly +0).
  for (int b = 0; b < c.b; ++b) {
    int bad = 0;
    for (int i = 0; i < c.sq; ++i) {
      bool any = false;
      for (int j = 0; j < c.sk && !any; ++j) any = sees(c, i, j);
      if (!any) for (int h = 0; h < c.h; ++h) for (int e = 0; e < c.d; ++e) bad += fbits(float(dq.get(b, i, h, e))) != 0;
    }
    for (int j = 0; j < c.sk; ++j) {
      bool any = false;
      for (int i = 0; i < c.sq && !any; ++i) any = sees(c, i, j);
      if (!any) for (int h = 0; h < c.hk; ++h) for (int e = 0; e < c.d; ++e)
        bad += (fbits(float(dk.get(b, j, h, e))) != 0) + (fbits(float(dv.get(b, j, h, e))) != 0);
    }
    CHECK(bad == 0, "%s: %d gradient elements of unseen rows/keys are not +0", cfg_name(c).c_str(), bad);
  }
  const Tensor dq2 = dq, dk2 = dk, dv2 = dv;
  for (int threads : {1, 3, 2}) {
    dq.poison(); dk.poison(); dv.poison();
    cpu::backward(p, threads);
    CHECK(same_bits(dq, dq2) && same_bits(dk, dk2) && same_bits(dv, dv2),
          "%s: backward differs between 2 and %d threads", cfg_name(c).c_str(), threads);
  }
}

// Backward accuracy at large input magnitudes (q, k, v, dout ~ N(0, M^2)): the backward's
// recomputed scores must be the forward's, bit for bit, or exp(s - lse) drifts from 1 by
// |s| * 2^-24 (at M = 1e3, scores ~1e6). float32: rel err <= 1e-4 (dq, dk over max |dv| as
// above), or, where a row's two best scores nearly tie (then the float32 rounding of the scores
// themselves matters, in any float32 attention), within 2x of the same attention done naively in
// float32; float16 at M up to 1e4: no NaN, and no Inf where the float64 result fits in float16.
static void check_magnitudes(std::mt19937_64& rng) {
  std::printf("[magnitudes]\n");
  for (DType dt : {DType::kFloat32, DType::kFloat16})
    for (double M : {1.0, 1e2, 1e3, 1e4})
      for (int wr : {-1, 0}) {
        const Cfg c{1, 96, 83, 2, 1, 64, -1, wr, dt};
        const float scale = 1.f / std::sqrt(static_cast<float>(c.d));
        Tensor q(c.b, c.sq, c.h, c.d, c.dt, false), k(c.b, c.sk, c.hk, c.d, c.dt, false), v = k, dout = q;
        q.randn(rng, M); k.randn(rng, M); v.randn(rng, M); dout.randn(rng, M);
        Tensor out = q, dq = q, dk = k, dv = k;
        out.poison(); dq.poison(); dk.poison(); dv.poison();
        std::vector<float> lse(size_t(c.b) * c.h * c.sq, std::nanf(""));
        AttnParams p = make_params(c, scale, q, k, v, out, lse, dout, dq, dk, dv);
        cpu::forward(p, 2);
        cpu::backward(p, 2);
        const RefOut ref = reference(c, scale, q, k, v, dout, [](double x) { return x; });
        const RefOut naive = reference(c, scale, q, k, v, dout, round_to(DType::kFloat32), round_to(DType::kFloat32));
        double dv_max = 0;
        for (double x : ref.dv) dv_max = std::max(dv_max, std::fabs(x));
        double worst = 0, worst_naive = 0;
        int64_t nonfinite = 0;
        const std::pair<const Tensor*, const std::vector<double>*> ts[] = {{&out, &ref.out}, {&dq, &ref.dq}, {&dk, &ref.dk}, {&dv, &ref.dv}};
        const std::vector<double>* naives[] = {&naive.out, &naive.dq, &naive.dk, &naive.dv};
        char line[160];
        int n = std::snprintf(line, sizeof line, "  %-8s M=%-6g %-7s", dtype_name(dt), M, wr == 0 ? "causal" : "full");
        const char* names[] = {"out", "dq", "dk", "dv"};
        for (int t = 0; t < 4; ++t) {
          const Tensor& g = *ts[t].first;
          const std::vector<double>& r = *ts[t].second;
          Err e = compare(g, r);
          double denom = std::max(e.max_ref, (t == 1 || t == 2) ? dv_max : 0.0);
          size_t idx = 0;
          for (int bi = 0; bi < g.b; ++bi) for (int si = 0; si < g.s; ++si) for (int hi = 0; hi < g.heads; ++hi)
            for (int e2 = 0; e2 < g.d; ++e2, ++idx)
              if (!std::isfinite(g.get(bi, si, hi, e2)) && (dt == DType::kFloat32 || std::fabs(r[idx]) < 65504.0)) ++nonfinite;
          const double rel = denom > 0 ? e.max_err / denom : e.max_err;
          double base = 0;
          for (size_t i = 0; i < r.size(); ++i) base = std::max(base, std::fabs((*naives[t])[i] - r[i]));
          const double ratio = e.max_err / (2 * base + ulp_of(DType::kFloat32, denom));
          if (t > 0) worst = std::max(worst, rel), worst_naive = std::max(worst_naive, ratio);
          n += std::snprintf(line + n, sizeof line - n, " %s %.2e", names[t], rel);
        }
        std::printf("%s  (err / 2x naive-float32 err: %.2f)\n", line, worst_naive);
        CHECK(nonfinite == 0, "M=%g %s: %lld NaN/Inf where the result fits the dtype", M, dtype_name(dt), (long long)nonfinite);
        if (dt == DType::kFloat32 && M >= 1e3)
          CHECK(worst <= 1e-4 || worst_naive <= 1, "M=%g float32 backward rel err %.3g > 1e-4, and %.2f x 2x naive", M,
                worst, worst_naive);
      }
}

static void check_errors() {
  std::printf("[errors]\n");
  Cfg c{1, 4, 4, 2, 1, 8, -1, -1, DType::kFloat32};
  Tensor q(1, 4, 2, 8, DType::kFloat32, false), k(1, 4, 1, 8, DType::kFloat32, false), v = k, out = q, dout = q,
      dq = q, dk = k, dv = k;
  std::vector<float> lse(8);
  auto expect_throw = [&](const char* what, AttnParams p) {
    for (int op = 0; op < 3; ++op) {
      bool threw = false;
      std::string msg;
      try {
        if (op == 0) cpu::forward(p, 1);
        if (op == 1) cpu::naive_forward(p, 1);
        if (op == 2) cpu::backward(p, 1);
      } catch (const std::invalid_argument& e) { threw = true; msg = e.what(); }
      CHECK(threw, "%s: op %d did not throw invalid_argument", what, op);
      if (threw && op == 0) std::printf("  %s -> \"%s\"\n", what, msg.c_str());
    }
  };
  const AttnParams ok = make_params(c, 0.3f, q, k, v, out, lse, dout, dq, dk, dv);
  AttnParams p = ok; p.dtype = DType::kFloat8E4M3; expect_throw("fp8", p);
  p = ok; p.h_k = 3; expect_throw("h % h_k != 0", p);
  p = ok; p.q = nullptr; expect_throw("null q", p);
  p = ok; p.scale = NAN; expect_throw("NaN scale", p);
  p = ok; p.d = -8; expect_throw("negative d", p);
  // Empty sizes do not throw and do not write.
  p = ok; p.s_q = 0; cpu::forward(p, 1); cpu::naive_forward(p, 1);
  p = ok; p.b = 0; cpu::backward(p, 1);
  // s_k = 0: every row sees nothing.
  p = ok; p.s_k = 0; p.k = nullptr; p.v = nullptr;
  cpu::forward(p, 2);
  bool fine = true;
  for (float x : lse) fine = fine && x == -INFINITY;
  for (int i = 0; i < 4; ++i) for (int h = 0; h < 2; ++h) for (int e = 0; e < 8; ++e) fine = fine && out.get(0, i, h, e) == 0;
  CHECK(fine, "s_k = 0 forward gives zeros / -inf");
  dq.poison();
  cpu::backward(p, 2);
  fine = true;
  for (int i = 0; i < 4; ++i) for (int h = 0; h < 2; ++h) for (int e = 0; e < 8; ++e) fine = fine && dq.get(0, i, h, e) == 0;
  CHECK(fine, "s_k = 0 backward gives dq = 0");
  // s_q = 0 backward: dk = dv = 0.
  p = ok; p.s_q = 0; dk.poison(); dv.poison();
  cpu::backward(p, 2);
  fine = true;
  for (int j = 0; j < 4; ++j) for (int e = 0; e < 8; ++e) fine = fine && dk.get(0, j, 0, e) == 0 && dv.get(0, j, 0, e) == 0;
  CHECK(fine, "s_q = 0 backward gives dk = dv = 0");
}

// ================================ bench =========================================================

static double thread_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

// Median wall time of `reps` runs. CHECK_CPU_TIME=thread measures this thread's CPU time instead
// (meaningful with 1 thread only, where the work runs on the calling thread): on a machine shared
// with other jobs it is far steadier than wall time.
static double seconds_of(const std::function<void()>& f, int reps) {
  const bool cpu_time = std::getenv("CHECK_CPU_TIME") != nullptr;
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    const double c0 = thread_cpu_seconds();
    f();
    t.push_back(cpu_time ? thread_cpu_seconds() - c0
                         : std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  if (std::getenv("CHECK_CPU_MIN")) return t[0];  // on a busy machine the minimum is steadier
  return t[t.size() / 2];
}

static int bench(int argc, char** argv) {
  const int s = argc > 2 ? std::atoi(argv[2]) : 4096;
  const int reps = argc > 3 ? std::atoi(argv[3]) : 3;
  const bool causal = argc > 4 && std::string(argv[4]) == "causal";
  const bool with_bwd = argc > 5 && std::string(argv[5]) == "bwd";
  const int heads = argc > 6 ? std::atoi(argv[6]) : 16;
  const int batch = argc > 7 ? std::atoi(argv[7]) : 1;
  const int hd = argc > 9 ? std::atoi(argv[9]) : 64;
  const std::string dts = argc > 10 ? argv[10] : "float32";
  const DType dt = dts == "float16" ? DType::kFloat16 : dts == "bfloat16" ? DType::kBFloat16 : DType::kFloat32;
  Cfg c{batch, s, s, heads, heads, hd, -1, causal ? 0 : -1, dt};
  std::mt19937_64 rng(1);
  Tensor q(c.b, s, c.h, c.d, c.dt, false), k = q, v = q, dout = q, out = q, dq = q, dk = q, dv = q;
  q.randn(rng); k.randn(rng); v.randn(rng); dout.randn(rng);
  std::vector<float> lse(size_t(c.b) * c.h * s);
  AttnParams p = make_params(c, 1.f / std::sqrt(float(hd)), q, k, v, out, lse, dout, dq, dk, dv);
  const int threads = argc > 8 ? std::atoi(argv[8]) : cpu::default_threads();
  const double flops = 4.0 * c.b * c.h * double(s) * s * c.d * (causal ? 0.5 : 1.0);
  std::printf("b=%d h=%d d=%d s=%d %s %s, %d threads, %s, median of %d\n", c.b, c.h, hd, s, dtype_name(dt),
              causal ? "causal" : "non-causal", threads, cpu::simd_path(), reps);
  cpu::forward(p, threads);  // warm-up
  const double tf = seconds_of([&] { cpu::forward(p, threads); }, reps);
  std::printf("  forward        %8.3f s  %6.1f GFLOP/s\n", tf, flops / tf * 1e-9);
  const double tn = seconds_of([&] { cpu::naive_forward(p, threads); }, reps);
  std::printf("  naive_forward  %8.3f s  %6.1f GFLOP/s   (forward is %.2fx faster)\n", tn, flops / tn * 1e-9, tn / tf);
  if (with_bwd) {
    cpu::forward(p, threads);
    const double tb = seconds_of([&] { cpu::backward(p, threads); }, reps);
    std::printf("  backward       %8.3f s  %6.1f GFLOP/s (2.5x forward FLOPs)\n", tb, 2.5 * flops / tb * 1e-9);
  }
  return 0;
}

// ================================ main ==========================================================

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "bench") return bench(argc, argv);
  const uint64_t seed = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : std::random_device{}();
  std::printf("check_cpu seed %llu\n", (unsigned long long)seed);
  std::mt19937_64 rng(seed);

  check_half();
  check_exp2();
  check_errors();
  check_magnitudes(rng);

  std::printf("[attention]\n");
  const DType F32 = DType::kFloat32, F16 = DType::kFloat16, B16 = DType::kBFloat16;
  std::vector<Cfg> cases = {
      // shapes, non-causal
      {1, 1, 1, 1, 1, 8, -1, -1, F32},
      {1, 1, 17, 2, 1, 64, -1, -1, F32},
      {1, 17, 1, 2, 2, 40, -1, -1, F32},
      {2, 17, 17, 4, 2, 40, -1, -1, F32},
      {1, 100, 100, 2, 2, 64, -1, -1, F32},
      {1, 100, 17, 4, 1, 128, -1, -1, F32},   // MQA
      {1, 17, 100, 4, 1, 256, -1, -1, F32},
      {2, 65, 130, 8, 2, 8, -1, -1, F32},     // GQA 4, tails of both block sizes
      {1, 129, 64, 2, 1, 64, -1, -1, F32},
      // causal (bottom-right), s_q != s_k, rows that see nothing when s_q > s_k
      {1, 100, 100, 2, 1, 64, -1, 0, F32},
      {2, 100, 17, 4, 2, 40, -1, 0, F32},     // rows 0..82 see nothing
      {1, 17, 100, 2, 2, 128, -1, 0, F32},
      {1, 1, 100, 2, 1, 256, -1, 0, F32},
      {1, 100, 1, 2, 2, 8, -1, 0, F32},
      {1, 130, 130, 2, 1, 64, -1, 0, F32},
      // sliding windows
      {1, 100, 100, 2, 2, 64, 5, 3, F32},
      {1, 100, 100, 4, 1, 40, 0, 0, F32},     // the diagonal only
      {1, 100, 40, 2, 1, 64, 3, 0, F32},      // window + whole rows masked
      {1, 40, 100, 2, 2, 64, 10, -1, F32},    // left-bounded only
      {1, 100, 30, 2, 2, 64, 2, 1, F32},      // most rows masked
      {1, 150, 150, 2, 1, 64, 70, 70, F32},   // window wider than a key block
      {1, 17, 17, 2, 2, 8, 0, -1, F32},
      // strided tensors
      {2, 33, 47, 4, 2, 40, -1, -1, F32, true},
      {1, 70, 50, 2, 1, 64, 9, 0, F16, true},
      // float16 / bfloat16
      {1, 17, 17, 2, 2, 8, -1, -1, F16},
      {1, 100, 100, 4, 2, 64, -1, -1, F16},
      {1, 100, 17, 2, 1, 128, -1, 0, F16},
      {1, 64, 100, 2, 2, 256, 20, 5, F16},
      {1, 1, 17, 2, 1, 40, -1, -1, F16},
      {1, 17, 17, 2, 2, 8, -1, -1, B16},
      {1, 100, 100, 4, 1, 64, -1, 0, B16},
      {1, 100, 40, 2, 2, 128, 3, 0, B16},
      {2, 50, 70, 4, 2, 256, -1, -1, B16},
      {1, 17, 1, 2, 1, 40, -1, -1, B16},
  };
  // Plus a few random configurations (fresh each run).
  std::uniform_int_distribution<int> U(0, 1 << 20);
  const int ds[] = {8, 16, 40, 64, 128, 256};
  for (int t = 0; t < 12; ++t) {
    Cfg c;
    c.b = 1 + U(rng) % 2;
    c.sq = 1 + U(rng) % 90;
    c.sk = 1 + U(rng) % 90;
    c.hk = 1 + U(rng) % 2;
    c.h = c.hk * (1 << (U(rng) % 3));
    c.d = ds[U(rng) % 6];
    const int m = U(rng) % 4;
    c.wl = m == 0 ? -1 : m == 1 ? -1 : int(U(rng) % 20);
    c.wr = m == 0 ? -1 : m == 1 ? 0 : int(U(rng) % 20) - 1;
    c.dt = t % 3 == 0 ? F32 : t % 3 == 1 ? F16 : B16;
    c.padded = U(rng) % 4 == 0;
    cases.push_back(c);
  }
  // Every case on the SIMD path this CPU picks, then on the portable one (when they differ).
  std::vector<std::string> paths = {cpu::simd_path()};
  setenv("FLASHATTN_CPU_SIMD", "generic", 1);
  if (paths[0] != cpu::simd_path()) paths.push_back(cpu::simd_path());
  unsetenv("FLASHATTN_CPU_SIMD");
  for (size_t pi = 0; pi < paths.size(); ++pi) {
    if (pi == 1) setenv("FLASHATTN_CPU_SIMD", "generic", 1);
    std::printf(" simd path: %s\n", cpu::simd_path());
    for (const Cfg& c : cases) {
      const int before = g_failures;
      run_case(c, rng);
      std::printf("  %-4s %s\n", g_failures == before ? "ok" : "FAIL", cfg_name(c).c_str());
    }
  }
  unsetenv("FLASHATTN_CPU_SIMD");
  std::printf("worst float32 rel err (max|err|/max|ref| over out/dq/dk/dv): %.3g\n", worst_rel32);
  std::printf("worst 16-bit err / naive-in-dtype err: %.3g (must be <= 2, plus 1 ulp)\n", worst_ratio16);
  std::printf("%s: %d checks, %d failures\n", g_failures ? "FAILED" : "PASSED", g_checks, g_failures);
  return g_failures ? 1 : 0;
}
