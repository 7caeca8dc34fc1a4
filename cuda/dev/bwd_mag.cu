// bwd_mag.cu — the sm80 backward at input magnitudes 1, 10, 100 (bf16, fp16), fed by the sm80
// forward's own O and LSE, against a float64 reference, with the same math done naively in the
// dtype next to it (test/naive-dtype.ts's rules). Built by cuda/dev/bwd_build.sh --mag into
// .devbin/bwd_mag (d64 forward + d64/d128 backward only, so it builds in minutes).
//
//   bwd_mag [--check] [--time]
//     --check  per (dtype, magnitude, shape, variant): max|ours - ref| / max|ref| of dq, dk, dv,
//              the naive-in-dtype error the same way, and the verdict of the test's rule
//              max|ours - ref| <= 2 max|naive - ref| + 2^-mant/2 max(max|ref|, 1e-3). For fp16 the
//              naive yardstick is fp16 with an unbounded exponent (11-bit significand, no
//              overflow; plain fp16's naive dP overflows at magnitude 100 and makes any bound Inf).
//              Also: how many one-hot rows the forward wrote O != V_argmax for.
//     --time   bf16 backward, batch*seqlen 16k at seqlen 4096, hidden 2048, d 64/128, causal and not.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "dev/harness.h"
#include "params.h"
#include "sm80/bwd_launch.h"
#include "sm80/fwd_launch.cuh"

namespace flashattn::sm80 {
template void launch_fwd<Bf16, 64>(const AttnParams&, cudaStream_t, FwdTier);
template void launch_fwd<Fp16, 64>(const AttnParams&, cudaStream_t, FwdTier);
}  // namespace flashattn::sm80
namespace flashattn::sm80::bwd {
template void run<Bf16, Cfg64Big>(const AttnParams&, cudaStream_t);
template void run<Fp16, Cfg64Big>(const AttnParams&, cudaStream_t);
template void run<Bf16, Cfg128Big>(const AttnParams&, cudaStream_t);
}  // namespace flashattn::sm80::bwd

using flashattn::AttnParams;
using flashattn::DType;
using flashattn::dev::from_bits;
using flashattn::dev::to_bits;
namespace bwd = flashattn::sm80::bwd;

#define CK(call)                                                                                    \
  do {                                                                                              \
    cudaError_t e_ = (call);                                                                        \
    if (e_ != cudaSuccess) {                                                                        \
      std::fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_)); \
      std::exit(2);                                                                                 \
    }                                                                                               \
  } while (0)

namespace {

// Rounding to a format with `mant` stored significand bits; min_exp the smallest normal exponent;
// max_finite (0 = unbounded) the overflow threshold.
struct Fmt {
  const char* name;
  int mant;
  int min_exp;
  double max_finite;
};
const Fmt kBf16{"bf16", 7, -126, 3.3895313892515355e38};
[[maybe_unused]] const Fmt kFp16{"fp16", 10, -14, 65504.0};  // plain fp16: its naive dP overflows at M=100
const Fmt kFp16Wide{"fp16w", 10, -100000, 0.0};  // fp16 significand, unbounded exponent

double round_fmt(double x, const Fmt& f) {
  if (std::isnan(x) || x == 0 || std::isinf(x)) return x;
  const double a = std::fabs(x);
  int e;
  std::frexp(a, &e);  // a = m 2^e, m in [0.5, 1)
  e = std::max(e - 1, f.min_exp);
  const double ulp = std::ldexp(1.0, e - f.mant);
  double q = a / ulp, n = std::floor(q);
  const double r = q - n;
  if (r > 0.5 || (r == 0.5 && std::fmod(n, 2.0) == 1.0)) n += 1;
  double mag = n * ulp;
  if (f.max_finite > 0 && mag > f.max_finite) mag = INFINITY;
  return x < 0 ? -mag : mag;
}

struct Shape {
  int s_q, s_k, h, h_k, d;
};

inline size_t at(int s, int hh, int x, int H, int D) { return (static_cast<size_t>(s) * H + hh) * D + x; }

struct Grads {
  std::vector<double> dq, dk, dv;
};

// float64 backward from the inputs alone (batch 1, no mask), as test/reference.ts.
Grads reference(const Shape& c, const std::vector<double>& q, const std::vector<double>& k,
                const std::vector<double>& v, const std::vector<double>& g) {
  const double scale = 1.0 / std::sqrt(double(c.d));
  const int grp = c.h / c.h_k;
  Grads r;
  r.dq.assign(size_t(c.s_q) * c.h * c.d, 0);
  r.dk.assign(size_t(c.s_k) * c.h_k * c.d, 0);
  r.dv.assign(size_t(c.s_k) * c.h_k * c.d, 0);
  std::vector<double> s(c.s_k), dp(c.s_k);
  for (int hq = 0; hq < c.h; ++hq) {
    const int hk = hq / grp;
    for (int i = 0; i < c.s_q; ++i) {
      double m = -INFINITY;
      for (int j = 0; j < c.s_k; ++j) {
        double a = 0, b = 0;
        for (int x = 0; x < c.d; ++x) {
          a += q[at(i, hq, x, c.h, c.d)] * k[at(j, hk, x, c.h_k, c.d)];
          b += g[at(i, hq, x, c.h, c.d)] * v[at(j, hk, x, c.h_k, c.d)];
        }
        s[j] = a * scale;
        dp[j] = b;
        m = std::max(m, s[j]);
      }
      double sum = 0;
      for (int j = 0; j < c.s_k; ++j) sum += std::exp(s[j] - m);
      double D = 0;
      for (int j = 0; j < c.s_k; ++j) {
        s[j] = std::exp(s[j] - m) / sum;  // P
        D += s[j] * dp[j];
      }
      for (int j = 0; j < c.s_k; ++j) {
        const double P = s[j], dS = P * (dp[j] - D);
        if (P == 0 && dS == 0) continue;
        for (int x = 0; x < c.d; ++x) {
          r.dq[at(i, hq, x, c.h, c.d)] += scale * dS * k[at(j, hk, x, c.h_k, c.d)];
          r.dk[at(j, hk, x, c.h_k, c.d)] += scale * dS * q[at(i, hq, x, c.h, c.d)];
          r.dv[at(j, hk, x, c.h_k, c.d)] += P * g[at(i, hq, x, c.h, c.d)];
        }
      }
    }
  }
  return r;
}

// test/naive-dtype.ts: every tensor an op produces rounded to the format, float32-or-better inside.
Grads naive(const Shape& c, const std::vector<double>& q, const std::vector<double>& k, const std::vector<double>& v,
            const std::vector<double>& g, const Fmt& f) {
  auto r = [&](double x) { return round_fmt(x, f); };
  const double scale = 1.0 / std::sqrt(double(c.d));
  const int grp = c.h / c.h_k;
  Grads out;
  out.dq.assign(size_t(c.s_q) * c.h * c.d, 0);
  out.dk.assign(size_t(c.s_k) * c.h_k * c.d, 0);
  out.dv.assign(size_t(c.s_k) * c.h_k * c.d, 0);
  std::vector<double> qs(size_t(c.s_q) * c.d), p(c.s_k), ds(c.s_k), acc(c.d), dkh, dvh;
  for (int hq = 0; hq < c.h; ++hq) {
    const int hk = hq / grp;
    dkh.assign(size_t(c.s_k) * c.d, 0);
    dvh.assign(size_t(c.s_k) * c.d, 0);
    for (int i = 0; i < c.s_q; ++i)
      for (int x = 0; x < c.d; ++x) qs[size_t(i) * c.d + x] = r(q[at(i, hq, x, c.h, c.d)] * scale);
    for (int i = 0; i < c.s_q; ++i) {
      double mx = -INFINITY;
      for (int j = 0; j < c.s_k; ++j) {
        double a = 0;
        for (int x = 0; x < c.d; ++x) a += qs[size_t(i) * c.d + x] * k[at(j, hk, x, c.h_k, c.d)];
        p[j] = r(a);
        mx = std::max(mx, p[j]);
      }
      double sum = 0;
      for (int j = 0; j < c.s_k; ++j) sum += static_cast<float>(std::exp(p[j] - mx));
      for (int j = 0; j < c.s_k; ++j) p[j] = r(static_cast<float>(std::exp(p[j] - mx)) / sum);
      double rowdot = 0;
      for (int j = 0; j < c.s_k; ++j) {
        if (p[j] == 0) {
          ds[j] = 0;
          continue;
        }
        double a = 0;
        for (int x = 0; x < c.d; ++x) a += g[at(i, hq, x, c.h, c.d)] * v[at(j, hk, x, c.h_k, c.d)];
        ds[j] = r(a);
        rowdot += p[j] * ds[j];
      }
      for (int j = 0; j < c.s_k; ++j) ds[j] = p[j] == 0 ? 0 : r(p[j] * (ds[j] - rowdot));
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int j = 0; j < c.s_k; ++j) {
        if (p[j] == 0 && ds[j] == 0) continue;
        for (int x = 0; x < c.d; ++x) {
          dvh[size_t(j) * c.d + x] += p[j] * g[at(i, hq, x, c.h, c.d)];
          dkh[size_t(j) * c.d + x] += ds[j] * qs[size_t(i) * c.d + x];
          acc[x] += ds[j] * k[at(j, hk, x, c.h_k, c.d)];
        }
      }
      for (int x = 0; x < c.d; ++x) out.dq[at(i, hq, x, c.h, c.d)] = r(r(acc[x]) * scale);
    }
    for (int j = 0; j < c.s_k; ++j)
      for (int x = 0; x < c.d; ++x) {
        double& a = out.dk[at(j, hk, x, c.h_k, c.d)];
        double& b = out.dv[at(j, hk, x, c.h_k, c.d)];
        a = r(a + r(dkh[size_t(j) * c.d + x]));
        b = r(b + r(dvh[size_t(j) * c.d + x]));
      }
  }
  return out;
}

struct Dev {
  void *q, *k, *v, *o, *g, *dq, *dk, *dv;
  float* lse;
  AttnParams p;
  Dev(const Shape& c, DType dt) {
    const size_t nq = size_t(c.s_q) * c.h * c.d * 2, nk = size_t(c.s_k) * c.h_k * c.d * 2;
    for (void** x : {&q, &o, &g, &dq}) CK(cudaMalloc(x, nq));
    for (void** x : {&k, &v, &dk, &dv}) CK(cudaMalloc(x, nk));
    CK(cudaMalloc(&lse, size_t(c.h) * c.s_q * 4));
    p.q = q, p.k = k, p.v = v, p.out = o, p.lse = lse, p.dout = g, p.dq = dq, p.dk = dk, p.dv = dv;
    p.b = 1, p.s_q = c.s_q, p.s_k = c.s_k, p.h = c.h, p.h_k = c.h_k, p.d = c.d;
    flashattn::set_contiguous_strides(p);
    p.dtype = dt;
    p.scale = 1.f / std::sqrt(float(c.d));
    p.window_left = p.window_right = -1;
  }
  ~Dev() {
    for (void* x : {q, k, v, o, g, dq, dk, dv, static_cast<void*>(lse)}) cudaFree(x);
  }
};

int g_pass = 0, g_fail = 0;

template <typename E>
void check_one(const Shape& c, DType dt, double m, std::mt19937_64& rng) {
  const size_t nq = size_t(c.s_q) * c.h * c.d, nk = size_t(c.s_k) * c.h_k * c.d;
  std::normal_distribution<float> nd(0.f, 1.f);
  auto gen = [&](size_t n, std::vector<uint16_t>& bits, std::vector<double>& vals) {
    bits.resize(n);
    vals.resize(n);
    for (size_t i = 0; i < n; ++i) {
      bits[i] = to_bits(static_cast<float>(nd(rng) * m), dt);
      vals[i] = from_bits(bits[i], dt);
    }
  };
  std::vector<uint16_t> bq, bk, bv, bg;
  std::vector<double> q, k, v, g;
  gen(nq, bq, q);
  gen(nk, bk, k);
  gen(nk, bv, v);
  gen(nq, bg, g);
  Dev dev(c, dt);
  CK(cudaMemcpy(dev.q, bq.data(), nq * 2, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(dev.k, bk.data(), nk * 2, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(dev.v, bv.data(), nk * 2, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(dev.g, bg.data(), nq * 2, cudaMemcpyHostToDevice));
  flashattn::sm80::launch_fwd<E, 64>(dev.p, nullptr, flashattn::sm80::FwdTier::kAuto);
  CK(cudaDeviceSynchronize());
  std::vector<uint16_t> bo(nq);
  CK(cudaMemcpy(bo.data(), dev.o, nq * 2, cudaMemcpyDeviceToHost));

  const Grads ref = reference(c, q, k, v, g);
  const Fmt& nf = dt == DType::kBFloat16 ? kBf16 : kFp16Wide;
  const Grads nv = naive(c, q, k, v, g, nf);
  // One-hot rows of the float64 forward, and whether the forward's O is V_argmax bit for bit.
  int onehot = 0, o_off = 0;
  {
    const double scale = 1.0 / std::sqrt(double(c.d));
    for (int hq = 0; hq < c.h; ++hq) {
      const int hk = hq / (c.h / c.h_k);
      for (int i = 0; i < c.s_q; ++i) {
        std::vector<double> s(c.s_k);
        int arg = 0;
        for (int j = 0; j < c.s_k; ++j) {
          double a = 0;
          for (int x = 0; x < c.d; ++x) a += q[at(i, hq, x, c.h, c.d)] * k[at(j, hk, x, c.h_k, c.d)];
          s[j] = a * scale;
          if (s[j] > s[arg]) arg = j;
        }
        double rest = 0;
        for (int j = 0; j < c.s_k; ++j)
          if (j != arg) rest += std::exp(s[j] - s[arg]);
        if (rest > 1e-9) continue;
        ++onehot;
        bool same = true;
        for (int x = 0; x < c.d; ++x) same = same && bo[at(i, hq, x, c.h, c.d)] == bv[at(arg, hk, x, c.h_k, c.d)];
        o_off += !same;
      }
    }
  }
  const double mant = dt == DType::kBFloat16 ? 7 : 10;
  CK(cudaMemset(dev.dq, 0xFF, nq * 2));
  CK(cudaMemset(dev.dk, 0xFF, nk * 2));
  CK(cudaMemset(dev.dv, 0xFF, nk * 2));
  bwd::run<E, bwd::Cfg64Big>(dev.p, nullptr);
  CK(cudaDeviceSynchronize());
  std::vector<uint16_t> hq(nq), hk(nk), hv(nk);
  CK(cudaMemcpy(hq.data(), dev.dq, nq * 2, cudaMemcpyDeviceToHost));
  CK(cudaMemcpy(hk.data(), dev.dk, nk * 2, cudaMemcpyDeviceToHost));
  CK(cudaMemcpy(hv.data(), dev.dv, nk * 2, cudaMemcpyDeviceToHost));
  std::printf("%-4s M=%-4g s %d/%d onehot %3d O!=V %3d |", dt == DType::kBFloat16 ? "bf16" : "fp16", m, c.s_q,
              c.s_k, onehot, o_off);
  bool all = true;
  const std::vector<uint16_t>* ours[3] = {&hq, &hk, &hv};
  const std::vector<double>* rr[3] = {&ref.dq, &ref.dk, &ref.dv};
  const std::vector<double>* nn[3] = {&nv.dq, &nv.dk, &nv.dv};
  const char* names[3] = {"dq", "dk", "dv"};
  for (int t = 0; t < 3; ++t) {
    double err = 0, nerr = 0, rmax = 0;
    int bad = 0;
    for (size_t i = 0; i < rr[t]->size(); ++i) {
      const double rv = (*rr[t])[i];
      if (dt == DType::kFloat16 && std::fabs(rv) >= 65504.0 + 16) continue;  // Inf is the right fp16 answer
      const double o = from_bits((*ours[t])[i], dt);
      if (!std::isfinite(o)) ++bad;
      err = std::max(err, std::fabs(o - rv));
      nerr = std::max(nerr, std::fabs((*nn[t])[i] - rv));
      rmax = std::max(rmax, std::fabs(rv));
    }
    const double eps = std::ldexp(1.0, -int(mant)) * std::max(rmax, 1e-3) * 0.5;
    const bool ok = bad == 0 && err <= 2 * nerr + eps;
    all = all && ok;
    const double den = std::max(rmax, 1e-30);
    std::printf(" %s %.2e/%.2e%s%s", names[t], err / den, nerr / den, bad ? " NONFINITE" : "", ok ? "" : " X");
  }
  std::printf("  maxref dq %.1e %s\n", [&] {
    double a = 0;
    for (double x : ref.dq) a = std::max(a, std::fabs(x));
    return a;
  }(), all ? "PASS" : "FAIL");
  std::fflush(stdout);
  (all ? g_pass : g_fail)++;
}

void run_check() {
  std::printf("== magnitude check: ours/naive = max|err|/max|ref| vs float64; naive = %s (bf16) / %s (fp16);"
              " X = fails 2x rule\n", kBf16.name, kFp16Wide.name);
  std::mt19937_64 rng(12345);
  const Shape shapes[] = {{97, 130, 2, 1, 64}, {600, 700, 4, 2, 64}};
  for (const Shape& c : shapes) {
    for (DType dt : {DType::kBFloat16, DType::kFloat16}) {
      for (double m : {1.0, 10.0, 100.0}) {
        if (dt == DType::kBFloat16) check_one<flashattn::sm80::Bf16>(c, dt, m, rng);
        else check_one<flashattn::sm80::Fp16>(c, dt, m, rng);
      }
    }
  }
  std::printf("magnitude: %d passed, %d failed\n", g_pass, g_fail);
}

__global__ void fill_kernel(uint16_t* x, size_t n, uint32_t seed) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    uint32_t h = static_cast<uint32_t>(i) * 2654435761u ^ seed;
    h ^= h >> 16;
    h *= 0x7feb352du;
    h ^= h >> 15;
    x[i] = __bfloat16_as_ushort(__float2bfloat16_rn((h & 0xFFFFFF) / 8388608.0f - 1.0f));
  }
}

float time_ms(const std::function<void()>& fn, int warmup = 3, int iters = 15) {
  cudaEvent_t a, b;
  CK(cudaEventCreate(&a));
  CK(cudaEventCreate(&b));
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<float> ms;
  for (int i = 0; i < iters; ++i) {
    CK(cudaEventRecord(a));
    fn();
    CK(cudaEventRecord(b));
    CK(cudaEventSynchronize(b));
    float t;
    CK(cudaEventElapsedTime(&t, a, b));
    ms.push_back(t);
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

void run_time() {
  std::printf("== timing: bf16 backward, seqlen 4096, batch 4, hidden 2048 (median of 15); variant 0 = before\n");
  constexpr size_t kElems = size_t(16384) * 2048;
  void* buf[8];
  for (void*& x : buf) CK(cudaMalloc(&x, kElems * 2));
  float* lse;
  CK(cudaMalloc(&lse, size_t(16384) * 64 * 4));
  for (int i = 0; i < 5; ++i) fill_kernel<<<1024, 256>>>(static_cast<uint16_t*>(buf[i]), kElems, (i + 1) * 0x9e3779b9u);
  CK(cudaDeviceSynchronize());
  for (int d : {64, 128}) {
    for (int causal : {0, 1}) {
      const int s = 4096, b = 4, h = 2048 / d;
      AttnParams p;
      p.q = buf[0], p.k = buf[1], p.v = buf[2], p.out = buf[3], p.dout = buf[4], p.dq = buf[5], p.dk = buf[6], p.dv = buf[7];
      p.lse = lse;
      p.b = b, p.s_q = p.s_k = s, p.h = p.h_k = h, p.d = d;
      flashattn::set_contiguous_strides(p);
      p.dtype = DType::kBFloat16;
      p.scale = 1.f / std::sqrt(float(d));
      p.window_left = -1;
      p.window_right = causal ? 0 : -1;
      std::vector<float> l(size_t(b) * h * s);
      for (size_t r = 0; r < l.size(); ++r) l[r] = std::log(float(causal ? r % s + 1 : s)) + 1.f / 18;
      CK(cudaMemcpy(lse, l.data(), l.size() * 4, cudaMemcpyHostToDevice));
      const double flops = 2.5 * 4.0 * b * h * double(s) * s * d / (causal ? 2 : 1);
      std::printf("d %-3d causal %-3s", d, causal ? "yes" : "no");
      // Twice so drift shows.
      for (int rep = 0; rep < 2; ++rep) {
        const float ms = time_ms([&] {
          if (d == 64) bwd::run<flashattn::sm80::Bf16, bwd::Cfg64Big>(p, nullptr);
          else bwd::run<flashattn::sm80::Bf16, bwd::Cfg128Big>(p, nullptr);
        });
        CK(cudaGetLastError());
        std::printf("  %.3f ms %.0f TF", ms, flops / (ms * 1e-3) / 1e12);
      }
      std::printf("\n");
      std::fflush(stdout);
    }
  }
  for (void* x : buf) cudaFree(x);
  cudaFree(lse);
}

}  // namespace

int main(int argc, char** argv) {
  bool check = false, timing = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--check") check = true;
    else if (a == "--time") timing = true;
    else {
      std::fprintf(stderr, "unknown flag %s\n", a.c_str());
      return 2;
    }
  }
  if (!check && !timing) check = timing = true;
  if (check) run_check();
  if (timing) run_time();
  return g_fail == 0 ? 0 : 1;
}
