// params.h — the one plain struct that crosses every boundary below the N-API layer.
//
// The CPU backend (native/cpu/) and every CUDA kernel (cuda/) read exactly this struct, so a
// feature means the same thing on every path. Plain C++ only: no CUDA, no napi.h.
//
// Dimension letters used in the shape comments:
//   b    batch
//   s_q  query sequence length          s_k  key/value sequence length
//   h    query heads                    h_k  key/value heads (h % h_k == 0; GQA/MQA when h_k < h)
//   d    head dimension (d % 8 == 0, d <= 256)
// Strides are in ELEMENTS of the tensor's dtype, never bytes. The last dim is always contiguous.
#pragma once

#include <cstdint>

namespace flashattn {

enum class DType : int32_t {
  kFloat32 = 0,
  kFloat16 = 1,
  kBFloat16 = 2,
  kFloat8E4M3 = 3,
  kInt32 = 4,  // lengths, offsets and block tables (never an attention operand)
};

inline int dtype_size(DType t) {
  switch (t) {
    case DType::kFloat32: return 4;
    case DType::kFloat16: return 2;
    case DType::kBFloat16: return 2;
    case DType::kFloat8E4M3: return 1;
    case DType::kInt32: return 4;
  }
  return 0;
}

inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::kFloat32: return "float32";
    case DType::kFloat16: return "float16";
    case DType::kBFloat16: return "bfloat16";
    case DType::kFloat8E4M3: return "float8_e4m3";
    case DType::kInt32: return "int32";
  }
  return "unknown";
}

// Strides of one 4-D tensor laid out (b, s, h, d), in elements; the d stride is 1.
struct Strides {
  int64_t batch = 0;
  int64_t row = 0;   // one step along s
  int64_t head = 0;  // one step along h (or h_k)
};

// Contiguous strides for a (b, s, heads, d) tensor.
inline Strides contiguous_strides(int s, int heads, int d) {
  Strides st;
  st.head = d;
  st.row = static_cast<int64_t>(heads) * d;
  st.batch = static_cast<int64_t>(s) * heads * d;
  return st;
}

struct AttnParams {
  // ---- forward operands -------------------------------------------------------------------
  const void* q = nullptr;  // (b, s_q, h,   d)  dtype
  const void* k = nullptr;  // (b, s_k, h_k, d)  dtype
  const void* v = nullptr;  // (b, s_k, h_k, d)  dtype
  void* out = nullptr;      // (b, s_q, h,   d)  dtype (bf16 for fp8 inputs)
  float* lse = nullptr;     // (b, h, s_q)       float32, natural log; -inf for a row that sees no key

  Strides q_stride, k_stride, v_stride, o_stride;

  // ---- backward operands (unused by the forward) --------------------------------------------
  const void* dout = nullptr;  // (b, s_q, h,   d)  dtype
  void* dq = nullptr;          // (b, s_q, h,   d)  dtype
  void* dk = nullptr;          // (b, s_k, h_k, d)  dtype, summed over the h/h_k query heads
  void* dv = nullptr;          // (b, s_k, h_k, d)  dtype, summed over the h/h_k query heads
  Strides do_stride, dq_stride, dk_stride, dv_stride;
  // Backward output must not depend on scheduling: bit-identical gradients run to run.
  bool deterministic = false;

  // ---- fp8 forward (float8_e4m3 q, k, v): descale factors, each may be null meaning 1 -------
  // Scores are q_descale[b, h] * k_descale[b, h_k] * scale * (q . k); out is v_descale[b, h_k] * (P . v).
  const float* q_descale = nullptr;  // (b, h)    float32, contiguous
  const float* k_descale = nullptr;  // (b, h_k)  float32, contiguous
  const float* v_descale = nullptr;  // (b, h_k)  float32, contiguous
  // dtype of out: dtype, except kBFloat16 (default) or kFloat16 for float8_e4m3 inputs.
  DType out_dtype = DType::kBFloat16;

  // ---- sizes ------------------------------------------------------------------------------
  int b = 0, s_q = 0, s_k = 0, h = 0, h_k = 0, d = 0;
  DType dtype = DType::kFloat32;

  // ---- semantics ----------------------------------------------------------------------------
  float scale = 0.f;  // softmax scale; the API fills in 1/sqrt(d) by default
  // Sliding window, flash-attn convention; -1 means unbounded on that side. Query i sees key j iff
  //   i + s_k - s_q - window_left <= j <= i + s_k - s_q + window_right.
  // Causal (bottom-right aligned) is window_right == 0.
  int window_left = -1;
  int window_right = -1;

  // ---- varlen (null: a padded request) ------------------------------------------------------
  // Packed q, out (and dout, dq): [total_q, h, d] with s_q = total_q; k, v: [total_k, h_k, d] with
  // s_k = total_k; b sequences, sequence i is rows cu[i] .. cu[i + 1] - 1; lse [h, total_q].
  // Strides' batch steps are not read. The host copies (checked: 0 first, non-decreasing, the
  // total last) decide a launch's schedule; kernels read the device ones, clamped to the totals.
  const int32_t* cu_seqlens_q = nullptr;       // (b + 1) device
  const int32_t* cu_seqlens_k = nullptr;       // (b + 1) device
  const int32_t* cu_seqlens_q_host = nullptr;  // (b + 1) host, the same values
  const int32_t* cu_seqlens_k_host = nullptr;  // (b + 1) host
  int max_seqlen_q = 0, max_seqlen_k = 0;      // the longest sequence of each side
  bool varlen() const { return cu_seqlens_q != nullptr; }

  // How many query heads share one KV head.
  int group_size() const { return h_k > 0 ? h / h_k : 0; }
};

// Contiguous (b, s, heads, d) strides for every operand, from the sizes already in p.
inline void set_contiguous_strides(AttnParams& p) {
  p.q_stride = contiguous_strides(p.s_q, p.h, p.d);
  p.k_stride = contiguous_strides(p.s_k, p.h_k, p.d);
  p.v_stride = p.k_stride;
  p.o_stride = p.q_stride;
  p.do_stride = p.q_stride;
  p.dq_stride = p.q_stride;
  p.dk_stride = p.k_stride;
  p.dv_stride = p.k_stride;
}

// The compiled head dim (of `dims`, ascending) that runs head dim d: the next larger one, for
// any d % 8 == 0; 0 when none does. Every kernel family's rule (plan/sm80_table.h, sm90/api.h).
template <int N>
constexpr int next_compiled_head_dim(int d, const int (&dims)[N]) {
  if (d <= 0 || d % 8 != 0) return 0;
  for (int k : dims) {
    if (d <= k) return k;
  }
  return 0;
}

// A window side at least s_q + s_k wide excludes no key: it is unbounded (-1). Normalizing keeps
// every index sum of the kernels inside int and lets them skip the window tests.
inline int normalized_window_side(int side, int s_q, int s_k) {
  return side < 0 || side >= static_cast<long long>(s_q) + s_k ? -1 : side;
}

// The key range [lo, hi) that query row i may see, after the window, clamped to [0, s_k).
// lo >= hi means the row sees nothing. Shared by the CPU backend and the kernels' tile skipping.
#if defined(__CUDACC__)
__host__ __device__
#endif
inline void key_range(int i, int s_q, int s_k, int window_left, int window_right, int* lo, int* hi) {
  const long long diag = static_cast<long long>(i) + s_k - s_q;
  long long l = window_left < 0 ? 0 : diag - window_left;
  long long r = window_right < 0 ? static_cast<long long>(s_k) : diag + window_right + 1;
  if (l < 0) l = 0;
  if (r > s_k) r = s_k;
  *lo = static_cast<int>(l);
  *hi = static_cast<int>(r < l ? l : r);
}

// One decode shape for cuda::bench_decode (cuda/api.h; native/ reads it in either build): q
// (b, s_q, h, d) against a cache of `context` keys per row, contiguous (page_size 0) or paged
// through a shuffled block table; every row at full length.
struct DecodeBenchRequest {
  DType dtype = DType::kBFloat16;
  int b = 1, s_q = 1, h = 32, h_k = 8, d = 128;
  int context = 8192;
  int page_size = 0;  // 0: contiguous cache (b, context, h_k, d); else blocks of page_size keys
  // true: each run reads a cache copy the run before did not leave in the L2; false: one cache
  // that stays in the L2 when it fits.
  bool cold_l2 = true;
  int num_splits = 0;  // 0: decode_num_splits' choice, as the API makes it; else this many
  int warmup = 5;
  int iters = 20;
};

}  // namespace flashattn
