// fp8.cpp — float8_e4m3 inputs on the CPU backend (the oracle for the sm90 fp8 forward).
//
// The kernels multiply e4m3 operands exactly and accumulate in float32; here the operands are
// decoded (exactly: every e4m3 value is a float32), descaled per (batch, head) and handed to the
// float32 forward, which is the reference for every other dtype too. Decoded copies cost 4 bytes
// per element of q, k, v and out; the CPU path is for tests and small problems.
#include "native/cpu/fp8.h"

#include <cmath>
#include <limits>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "native/cpu/cpu_backend.h"
#include "native/cpu/half.h"

namespace flashattn::cpu {

float e4m3_to_float(uint8_t bits) {
  const float sign = (bits & 0x80) ? -1.f : 1.f;
  const int exp = (bits >> 3) & 0xf;
  const int mant = bits & 0x7;
  if (exp == 0xf && mant == 0x7) return std::numeric_limits<float>::quiet_NaN();
  if (exp == 0) return sign * std::ldexp(static_cast<float>(mant), -9);
  return sign * std::ldexp(1.f + static_cast<float>(mant) / 8.f, exp - 7);
}

namespace {

// dst (b, s, heads, d) contiguous float32 = decode(src) * descale[b, head / group].
// `descale` is (b, heads / group) or null; strides are src's, in elements (bytes for e4m3).
void decode(const void* src, const Strides& st, int b, int s, int heads, int d, const float* descale, int descale_heads,
            int group, std::vector<float>& dst) {
  dst.assign(static_cast<size_t>(b) * s * heads * d, 0.f);
  if (dst.empty()) return;
  float table[256];
  for (int i = 0; i < 256; ++i) table[i] = e4m3_to_float(static_cast<uint8_t>(i));
  const uint8_t* bytes = static_cast<const uint8_t*>(src);
  size_t o = 0;
  for (int bi = 0; bi < b; ++bi) {
    for (int si = 0; si < s; ++si) {
      for (int hi = 0; hi < heads; ++hi) {
        const float mul = descale ? descale[static_cast<int64_t>(bi) * descale_heads + hi / group] : 1.f;
        const uint8_t* row = bytes + bi * st.batch + si * st.row + hi * st.head;
        for (int c = 0; c < d; ++c) dst[o++] = table[row[c]] * mul;
      }
    }
  }
}

}  // namespace

void fp8_forward(const AttnParams& p, int threads) {
  if (p.dtype != DType::kFloat8E4M3) throw std::invalid_argument("fp8_forward needs dtype float8_e4m3");
  if (p.out_dtype != DType::kBFloat16 && p.out_dtype != DType::kFloat16) {
    throw std::invalid_argument(std::string("out dtype for float8_e4m3 inputs must be bfloat16 or float16, got ") +
                                dtype_name(p.out_dtype));
  }
  if (p.b <= 0 || p.s_q <= 0 || p.h <= 0) return;
  if (p.h_k <= 0 || p.h % p.h_k != 0) {
    throw std::invalid_argument("h (" + std::to_string(p.h) + ") must be a multiple of h_k (" + std::to_string(p.h_k) + ")");
  }
  if (p.out == nullptr || p.q == nullptr) throw std::invalid_argument("q or out is a null pointer");
  std::vector<float> q, k, v, out;
  try {
    // q_descale is per query head; k/v_descale per KV head (the k, v rows are KV heads: group 1).
    decode(p.q, p.q_stride, p.b, p.s_q, p.h, p.d, p.q_descale, p.h, 1, q);
    if (p.s_k > 0) {
      if (p.k == nullptr || p.v == nullptr) throw std::invalid_argument("k or v is a null pointer");
      decode(p.k, p.k_stride, p.b, p.s_k, p.h_k, p.d, p.k_descale, p.h_k, 1, k);
      decode(p.v, p.v_stride, p.b, p.s_k, p.h_k, p.d, p.v_descale, p.h_k, 1, v);
    }
    out.assign(static_cast<size_t>(p.b) * p.s_q * p.h * p.d, 0.f);
  } catch (const std::bad_alloc&) {
    throw std::runtime_error("out of memory decoding float8_e4m3 q, k, v to float32 (" +
                             std::to_string(4.0 * (2.0 * p.b * p.s_q * p.h * p.d + 2.0 * p.b * p.s_k * p.h_k * p.d) / 1e9) +
                             " GB)");
  }
  AttnParams f = p;
  f.dtype = DType::kFloat32;
  f.out_dtype = DType::kFloat32;
  f.q = q.data();
  f.k = k.empty() ? nullptr : k.data();
  f.v = v.empty() ? nullptr : v.data();
  f.out = out.data();
  f.q_descale = f.k_descale = f.v_descale = nullptr;
  f.q_stride = contiguous_strides(p.s_q, p.h, p.d);
  f.k_stride = contiguous_strides(p.s_k, p.h_k, p.d);
  f.v_stride = f.k_stride;
  f.o_stride = f.q_stride;
  forward(f, threads);  // writes p.lse in place: it is float32 either way

  const bool bf16 = p.out_dtype == DType::kBFloat16;
  size_t o = 0;
  for (int bi = 0; bi < p.b; ++bi) {
    for (int si = 0; si < p.s_q; ++si) {
      for (int hi = 0; hi < p.h; ++hi) {
        uint16_t* row = static_cast<uint16_t*>(p.out) + bi * p.o_stride.batch + si * p.o_stride.row + hi * p.o_stride.head;
        for (int c = 0; c < p.d; ++c, ++o) row[c] = bf16 ? float_to_bf16(out[o]) : float_to_half(out[o]);
      }
    }
  }
}

}  // namespace flashattn::cpu
