// common.cpp — argument checks, the worker pool and the window mask shared by the CPU backend.
#include "native/cpu/common.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>

#include "native/cpu/cpu_backend.h"
#include "native/cpu/simd.h"
#include "native/cpu/tensor_io.h"
#include "native/cpu/tile_math.h"

namespace flashattn::cpu {

namespace {

// The message does not name the op: the addon prefixes it ("forward: cpu backend: ...").
[[noreturn]] void fail(Op, const std::string& what) {
  throw std::invalid_argument(what);
}

void need(Op op, const void* ptr, const char* field) {
  if (ptr == nullptr) fail(op, std::string(field) + " is a null pointer");
}

}  // namespace

int default_threads() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

Simd active_simd() {
#if FLASHATTN_CPU_HAVE_AVX2
  const char* force = std::getenv("FLASHATTN_CPU_SIMD");
  if (force != nullptr && std::strcmp(force, "generic") == 0) return Simd::kGeneric4;
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Simd::kAvx2Fma8;
#endif
  return Simd::kGeneric4;
}

const char* simd_path() {
  switch (active_simd()) {
    case Simd::kGeneric4: return "generic (4-wide vectors)";
    case Simd::kAvx2Fma8: return "avx2+fma (8-wide vectors)";
  }
  return "unknown";
}

void check_params(const AttnParams& p, Op op) {
  switch (p.dtype) {
    case DType::kFloat32:
    case DType::kFloat16:
    case DType::kBFloat16:
      break;
    case DType::kFloat8E4M3:
      fail(op, op == Op::kBackward ? "dtype float8_e4m3 has no backward pass"
                                     : "dtype float8_e4m3 runs only in the tiled forward (not the naive one)");
    default:
      fail(op, "unknown dtype code " + std::to_string(static_cast<int>(p.dtype)));
  }
  const struct { const char* name; int v; } dims[] = {
      {"b", p.b}, {"s_q", p.s_q}, {"s_k", p.s_k}, {"h", p.h}, {"h_k", p.h_k}, {"d", p.d}};
  for (const auto& dim : dims)
    if (dim.v < 0) fail(op, std::string(dim.name) + " must be >= 0, got " + std::to_string(dim.v));
  if (p.b == 0) return;                                            // nothing to read or write
  if ((p.s_q == 0 || p.h == 0) && op != Op::kBackward) return;     // no output row
  if (p.h_k <= 0 || p.h % p.h_k != 0)
    fail(op, "h (" + std::to_string(p.h) + ") must be a multiple of h_k (" + std::to_string(p.h_k) +
                 ") with h_k >= 1");
  if (p.d <= 0) fail(op, "d must be >= 1, got " + std::to_string(p.d));
  if (!std::isfinite(p.scale)) fail(op, "scale must be finite, got " + std::to_string(p.scale));

  const bool rows_q = p.b > 0 && p.s_q > 0 && p.h > 0;
  const bool rows_k = p.b > 0 && p.s_k > 0 && p.h_k > 0;
  if (rows_q) {
    need(op, p.q, "q");
    need(op, p.out, "out");
    need(op, p.lse, "lse");
  }
  if (rows_k && rows_q) {
    need(op, p.k, "k");
    need(op, p.v, "v");
  }
  if (op == Op::kBackward) {
    if (rows_q) {
      need(op, p.dout, "dout");
      need(op, p.dq, "dq");
    }
    if (rows_k) {
      need(op, p.dk, "dk");
      need(op, p.dv, "dv");
      if (rows_q) {
        need(op, p.k, "k");
        need(op, p.v, "v");
      }
    }
  }
}

int worker_count(int threads, int64_t n_tasks) {
  int64_t w = threads <= 0 ? default_threads() : threads;
  w = std::min<int64_t>(w, 1024);
  w = std::min<int64_t>(w, n_tasks);
  return static_cast<int>(std::max<int64_t>(w, 1));
}

void parallel_for(int64_t n_tasks, int workers, const std::function<void(int64_t, int)>& body) {
  if (n_tasks <= 0) return;
  std::atomic<int64_t> next{0};
  std::atomic<bool> stop{false};
  std::exception_ptr error;
  std::mutex error_mu;

  auto run = [&](int worker) {
    try {
      for (;;) {
        if (stop.load(std::memory_order_relaxed)) return;
        const int64_t t = next.fetch_add(1, std::memory_order_relaxed);
        if (t >= n_tasks) return;
        body(t, worker);
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mu);
      if (!error) error = std::current_exception();
      stop.store(true);
    }
  };

  std::vector<std::thread> pool;
  if (workers > 1) {
    try {
      pool.reserve(static_cast<size_t>(workers - 1));
      for (int w = 1; w < workers; ++w) pool.emplace_back(run, w);
    } catch (const std::system_error&) {
      // Could not start every thread: the ones that started, and this one, do all the tasks.
    }
  }
  run(0);
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

RowRanges::RowRanges(const AttnParams& p) : lo(static_cast<size_t>(p.s_q)), hi(static_cast<size_t>(p.s_q)) {
  for (int i = 0; i < p.s_q; ++i) key_range(i, p.s_q, p.s_k, p.window_left, p.window_right, &lo[i], &hi[i]);
}

void RowRanges::keys_of_rows(int i0, int i1, int* klo, int* khi) const {
  int a = 0, b = 0;
  bool any = false;
  for (int i = i0; i < i1; ++i) {
    if (empty(i)) continue;
    if (!any) {
      a = lo[i];
      b = hi[i];
      any = true;
    } else {
      a = std::min(a, lo[i]);
      b = std::max(b, hi[i]);
    }
  }
  *klo = a;
  *khi = b;
}

void RowRanges::rows_of_keys(int j0, int j1, int* qlo, int* qhi) const {
  // Rows with hi > j0 form a suffix, rows with lo < j1 a prefix (both bounds are non-decreasing).
  const int n = static_cast<int>(lo.size());
  const int first = static_cast<int>(std::upper_bound(hi.begin(), hi.end(), j0) - hi.begin());
  const int last = static_cast<int>(std::lower_bound(lo.begin(), lo.end(), j1) - lo.begin());
  *qlo = std::min(first, n);
  *qhi = std::max(*qlo, last);
}

void mask_tile(float* s, int ld, int rows, int cols, int i0, int j0, const RowRanges& rr, float fill) {
  for (int r = 0; r < rows; ++r) {
    const int lo = rr.lo[i0 + r] - j0;
    const int hi = rr.hi[i0 + r] - j0;
    if (lo <= 0 && hi >= cols) continue;
    float* row = s + static_cast<ptrdiff_t>(r) * ld;
    const int a = std::min(std::max(lo, 0), cols);
    const int b = std::min(std::max(hi, a), cols);
    for (int j = 0; j < a; ++j) row[j] = fill;
    for (int j = b; j < cols; ++j) row[j] = fill;
  }
}

void mask_tile_transposed(float* st, int ld, int rows, int cols, int i0, int j0, const RowRanges& rr,
                          float fill) {
  for (int r = 0; r < rows; ++r) {
    const int lo = rr.lo[i0 + r] - j0;
    const int hi = rr.hi[i0 + r] - j0;
    if (lo <= 0 && hi >= cols) continue;
    const int a = std::min(std::max(lo, 0), cols);
    const int b = std::min(std::max(hi, a), cols);
    for (int j = 0; j < a; ++j) st[static_cast<ptrdiff_t>(j) * ld + r] = fill;
    for (int j = b; j < cols; ++j) st[static_cast<ptrdiff_t>(j) * ld + r] = fill;
  }
}

namespace {

// True when rows [0, s) of every (batch, head) of a (b, s, heads, d) tensor are finite.
bool tensor_finite(const void* data, DType dtype, const Strides& st, int b, int s, int heads, int d) {
  if (data == nullptr) return true;
  const TensorView t = view(data, dtype, st);
  std::vector<float> row(static_cast<size_t>(d));
  for (int i = 0; i < b; ++i)
    for (int j = 0; j < s; ++j)
      for (int h = 0; h < heads; ++h) {
        t.load_row(i, j, h, d, row.data());
        if (!row_finite(row.data(), d)) return false;
      }
  return true;
}

}  // namespace

void check_overflow(const AttnParams& p, Op op) {
  bool finite = tensor_finite(p.q, p.dtype, p.q_stride, p.b, p.s_q, p.h, p.d) &&
                tensor_finite(p.k, p.dtype, p.k_stride, p.b, p.s_k, p.h_k, p.d) &&
                tensor_finite(p.v, p.dtype, p.v_stride, p.b, p.s_k, p.h_k, p.d);
  if (op == Op::kBackward) {
    finite = finite && tensor_finite(p.dout, p.dtype, p.do_stride, p.b, p.s_q, p.h, p.d) &&
             tensor_finite(p.out, p.dtype, p.o_stride, p.b, p.s_q, p.h, p.d);
    const int64_t n = static_cast<int64_t>(p.b) * p.h * p.s_q;
    for (int64_t i = 0; finite && i < n; ++i) finite = p.lse[i] < kInf;  // -inf (no key) is fine; NaN, +inf not
  }
  if (!finite) return;  // NaN/Inf in, NaN/Inf out: that is the contract
  if (op == Op::kBackward) {
    fail(op, "the gradients overflow float32 for these finite inputs (intermediate products of softmaxScale, "
             "q, k, v and dout beyond 3.4e38), or lse was not made by flashAttention from these q and k; "
             "scale the inputs down");
  }
  fail(op, "the scaled scores softmaxScale * q.k (or their sums) overflow float32 for these finite inputs "
           "(|score| beyond 3.4e38); lower softmaxScale, or scale q, k or v down");
}

void throw_oom(const char* op, const char* what, double bytes) {
  char msg[256];
  std::snprintf(msg, sizeof msg, "flashattn cpu %s: out of memory allocating %s (%.1f MiB)", op, what,
                bytes / (1024.0 * 1024.0));
  throw std::runtime_error(msg);
}

}  // namespace flashattn::cpu
