// common.h — what forward, naive_forward and backward share: argument checks, the worker pool,
// and the window mask. Internal to native/cpu/.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "cuda/params.h"

namespace flashattn::cpu {

// Key/query tile sizes. 64 keys keep a (64 x 64) score tile plus the K/V tiles of d = 256 in L2.
constexpr int kBlockQ = 64;
constexpr int kBlockK = 64;

enum class Op { kForward, kNaiveForward, kBackward };

// Throws std::invalid_argument naming the field when `p` cannot be served by the CPU backend.
void check_params(const AttnParams& p, Op op);

// threads <= 0 -> default_threads(); never more than the number of tasks, never less than 1.
int worker_count(int threads, int64_t n_tasks);

// Runs body(task, worker) for every task in [0, n_tasks) on `workers` threads (the calling thread
// is worker 0), handing out tasks through an atomic counter. Each task must write only its own
// outputs, so results do not depend on which worker ran what. The first exception thrown by a
// body stops the hand-out and is rethrown here after all workers have joined.
void parallel_for(int64_t n_tasks, int workers, const std::function<void(int64_t, int)>& body);

// The key range [lo, hi) of every query row (key_range() of params.h). Both bounds are
// non-decreasing in the row index, which lets a tile find its rows and keys by scanning.
struct RowRanges {
  std::vector<int> lo, hi;
  explicit RowRanges(const AttnParams& p);
  bool empty(int i) const { return lo[i] >= hi[i]; }
  // Union of the key ranges of rows [i0, i1): [*klo, *khi); empty (klo >= khi) when none sees a key.
  void keys_of_rows(int i0, int i1, int* klo, int* khi) const;
  // The rows whose key range meets [j0, j1): [*qlo, *qhi); contiguous because lo/hi are monotone.
  void rows_of_keys(int j0, int j1, int* qlo, int* qhi) const;
};

// Sets s[r][j] = fill (tile row-major, leading dim ld) where key j0 + j is outside row (i0 + r)'s
// range, for r < rows and j < cols. Rows whose range covers the whole tile are left alone.
// The forward fills scores with -inf; the backward fills probabilities with 0.
void mask_tile(float* s, int ld, int rows, int cols, int i0, int j0, const RowRanges& rr, float fill);

// The same for a tile stored transposed, st[j][r] (leading dim ld): key j0 + j, query i0 + r, for
// r < rows (queries) and j < cols (keys).
void mask_tile_transposed(float* st, int ld, int rows, int cols, int i0, int j0, const RowRanges& rr,
                          float fill);

// True when x[0..n) holds no NaN and no infinity.
inline bool row_finite(const float* x, int n) {
  bool ok = true;
  for (int j = 0; j < n; ++j) ok &= (x[j] - x[j]) == 0.f;  // inf - inf and NaN - NaN are NaN
  return ok;
}

// True when x[0..n) holds a NaN.
inline bool row_has_nan(const float* x, int n) {
  bool nan = false;
  for (int j = 0; j < n; ++j) nan |= x[j] != x[j];
  return nan;
}

// Called when a result came out NaN or infinite (forward: any out or lse of a row that sees keys;
// backward: a NaN gradient). NaN and Inf in the inputs propagate, so if some input holds one this
// returns and the result stands. If every input is finite, float32 overflowed on the way (scores
// softmaxScale * q.k beyond 3.4e38, or sums of them): throws std::invalid_argument saying so,
// since valid finite input must never give NaN.
void check_overflow(const AttnParams& p, Op op);

// Converts std::bad_alloc from allocating `what` into a runtime_error that says so.
[[noreturn]] void throw_oom(const char* op, const char* what, double bytes);

}  // namespace flashattn::cpu
