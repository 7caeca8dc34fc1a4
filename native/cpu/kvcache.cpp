// kvcache.cpp — append, rotary and per-row attention for a contiguous or paged KV cache (CPU).
#include "native/cpu/kvcache.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <vector>

#include "native/cpu/cpu_backend.h"
#include "native/cpu/tensor_io.h"

namespace flashattn::cpu {
namespace {

using decode::DecodeParams;

int clamp_len(int v, int cap) { return v < 0 ? 0 : (v > cap ? cap : v); }

// Element offset of key position j, KV head hk, of batch row b; -1 when the row or block is
// out of range (the kernels read such keys as absent, so does the oracle).
int64_t key_offset(const DecodeParams& p, const Strides& st, int b, int j, int hk) {
  if (p.paged()) {
    const int page = j / p.page_size;
    if (page >= p.max_blocks_per_seq) return -1;
    const int blk = p.block_table[static_cast<int64_t>(b) * p.block_table_batch_stride + page];
    if (blk < 0 || blk >= p.num_blocks) return -1;
    return static_cast<int64_t>(blk) * st.batch + static_cast<int64_t>(j % p.page_size) * st.row +
           static_cast<int64_t>(hk) * st.head;
  }
  const int row = p.cache_batch_idx != nullptr ? p.cache_batch_idx[b] : b;
  if (row < 0 || row >= p.batch_cache || j >= p.max_seqlen) return -1;
  return static_cast<int64_t>(row) * st.batch + static_cast<int64_t>(j) * st.row + static_cast<int64_t>(hk) * st.head;
}

// Rotates x[0..rotary_dim) in place by the angle table row `pos` (flash-attn's rotary).
void rotate(const DecodeParams& p, float* x, int pos) {
  const int half = p.rotary_dim / 2;
  if (pos < 0) pos = 0;
  if (pos >= p.rotary_seqlen) pos = p.rotary_seqlen - 1;
  std::vector<float> c(half), s(half);
  TensorView cosv{p.rotary_cos, p.dtype, Strides{0, half, 0}};
  TensorView sinv{p.rotary_sin, p.dtype, Strides{0, half, 0}};
  cosv.load_row(0, pos, 0, half, c.data());
  sinv.load_row(0, pos, 0, half, s.data());
  for (int i = 0; i < half; ++i) {
    const int a = p.rotary_interleaved ? 2 * i : i;
    const int bb = p.rotary_interleaved ? 2 * i + 1 : i + half;
    const float x1 = x[a], x2 = x[bb];
    x[a] = x1 * c[i] - x2 * s[i];
    x[bb] = x1 * s[i] + x2 * c[i];
  }
}

size_t esize(DType t) { return static_cast<size_t>(dtype_size(t)); }

}  // namespace

void kvcache_forward(const DecodeParams& p, int threads) {
  if (p.dtype != DType::kFloat32 && p.dtype != DType::kFloat16 && p.dtype != DType::kBFloat16)
    throw std::invalid_argument("kvcache: dtype must be float32, float16 or bfloat16");
  const int cap = p.capacity();
  const int d = p.d;
  const bool rotary = p.rotary();
  std::vector<float> row(static_cast<size_t>(d));

  // 1. Append (rotary on k_new), in issue order.
  if (p.k_new != nullptr) {
    TensorView kn{p.k_new, p.dtype, p.knew_stride}, vn{p.v_new, p.dtype, p.vnew_stride};
    for (int b = 0; b < p.b; ++b) {
      const int cached = clamp_len(p.cache_seqlens[b], cap);
      for (int t = 0; t < p.s_new; ++t) {
        const int pos = cached + t;
        if (pos >= cap) break;
        for (int hk = 0; hk < p.h_k; ++hk) {
          const int64_t ko = key_offset(p, p.k_stride, b, pos, hk);
          const int64_t vo = key_offset(p, p.v_stride, b, pos, hk);
          if (ko < 0 || vo < 0) continue;
          kn.load_row(b, t, hk, d, row.data());
          if (rotary) rotate(p, row.data(), pos);
          MutTensorView{static_cast<char*>(p.k_cache) + ko * esize(p.dtype), p.dtype, Strides{}}.store_row(0, 0, 0, d, row.data());
          vn.load_row(b, t, hk, d, row.data());
          MutTensorView{static_cast<char*>(p.v_cache) + vo * esize(p.dtype), p.dtype, Strides{}}.store_row(0, 0, 0, d, row.data());
        }
      }
    }
  }

  // 2. Attend, one batch row at a time: gather its keys into contiguous (1, s_k, h_k, d) copies.
  const bool local = p.window_left >= 0 || p.window_right >= 0;
  const size_t es = esize(p.dtype);
  std::vector<char> kbuf, vbuf, qbuf;
  for (int b = 0; b < p.b; ++b) {
    const int cached = clamp_len(p.cache_seqlens[b], cap);
    const long long want = static_cast<long long>(cached) + p.s_new;
    const int sk = static_cast<int>(want < cap ? want : cap);
    const bool row_ok = p.paged() || p.cache_batch_idx == nullptr ||
                        (p.cache_batch_idx[b] >= 0 && p.cache_batch_idx[b] < p.batch_cache);
    char* out_b = static_cast<char*>(p.out) + static_cast<int64_t>(b) * p.o_stride.batch * static_cast<int64_t>(es);
    float* lse_b = p.lse + static_cast<int64_t>(b) * p.h * p.s_q;
    if (sk == 0 || !row_ok) {
      MutTensorView ov{out_b, p.dtype, p.o_stride};
      std::fill(row.begin(), row.end(), 0.f);
      for (int i = 0; i < p.s_q; ++i)
        for (int h = 0; h < p.h; ++h) ov.store_row(0, i, h, d, row.data());
      for (int i = 0; i < p.h * p.s_q; ++i) lse_b[i] = -std::numeric_limits<float>::infinity();
      continue;
    }
    const size_t row_bytes = static_cast<size_t>(d) * es;
    kbuf.assign(static_cast<size_t>(sk) * p.h_k * row_bytes, 0);
    vbuf.assign(kbuf.size(), 0);
    for (int j = 0; j < sk; ++j) {
      for (int hk = 0; hk < p.h_k; ++hk) {
        const size_t dst = (static_cast<size_t>(j) * p.h_k + hk) * row_bytes;
        const int64_t ko = key_offset(p, p.k_stride, b, j, hk);
        const int64_t vo = key_offset(p, p.v_stride, b, j, hk);
        // An unmapped block reads as zeros here; the kernels read it as masked. The request layer
        // refuses such tables for host block tables, so the two never disagree on checked input.
        if (ko >= 0) std::memcpy(&kbuf[dst], static_cast<const char*>(p.k_cache) + ko * static_cast<int64_t>(es), row_bytes);
        if (vo >= 0) std::memcpy(&vbuf[dst], static_cast<const char*>(p.v_cache) + vo * static_cast<int64_t>(es), row_bytes);
      }
    }
    AttnParams ap;
    ap.b = 1;
    ap.s_q = p.s_q;
    ap.s_k = sk;
    ap.h = p.h;
    ap.h_k = p.h_k;
    ap.d = d;
    ap.dtype = p.dtype;
    ap.scale = p.scale;
    ap.window_left = p.window_left;
    ap.window_right = p.window_right;
    set_contiguous_strides(ap);
    const char* q_b = static_cast<const char*>(p.q) + static_cast<int64_t>(b) * p.q_stride.batch * static_cast<int64_t>(es);
    if (rotary) {
      // q rotated and rounded to its dtype, as flash-attn does before attending.
      qbuf.assign(static_cast<size_t>(p.s_q) * p.h * row_bytes, 0);
      TensorView qv{q_b, p.dtype, p.q_stride};
      MutTensorView qo{qbuf.data(), p.dtype, ap.q_stride};
      for (int i = 0; i < p.s_q; ++i) {
        for (int h = 0; h < p.h; ++h) {
          qv.load_row(0, i, h, d, row.data());
          rotate(p, row.data(), local ? cached + i : cached);
          qo.store_row(0, i, h, d, row.data());
        }
      }
      ap.q = qbuf.data();
    } else {
      ap.q = q_b;
      ap.q_stride = p.q_stride;
    }
    ap.k = kbuf.data();
    ap.v = vbuf.data();
    ap.out = out_b;
    ap.o_stride = p.o_stride;
    ap.lse = lse_b;
    forward(ap, threads);
  }
}

}  // namespace flashattn::cpu
