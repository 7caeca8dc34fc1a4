// fwd_epilogue.h — O / l and the LSE, from one warpgroup's registers to device memory.
#pragma once

#include <cstdint>

#include "sm80/mma.h"
#include "common/reduce.h"
#include "params.h"
#include "sm90/fwd_params.h"
#include "sm90/fwd_softmax.h"

namespace flashattn::sm90 {

// Rows >= the tile's s_q (the sequence's, in varlen) and columns >= d are not written. Each thread stores 2 values (4 bytes) per column
// block of each of its rows; a quad covers 16 contiguous bytes of a row.
//
// Empty rows and the LSE follow the sm80 forward (cuda/sm80/fwd_kernel.cuh, epilogue) exactly:
//   - "sees no key" is the mask's word alone (key_range): such a row gets O = 0 and LSE = -inf,
//     whatever its scores were. l = 0 or NaN in a row that sees keys comes from NaN/Inf inputs
//     and gives NaN (O = o / l, LSE NaN), as in PyTorch.
//   - LSE = round(m·scale) + ln l. The max's own p is exactly 1 (fwd_softmax.h), so a one-hot row
//     (large inputs) has l = 1 and LSE = round(m·scale) exactly; the backward recomputes
//     P = exp(round(S·scale) - LSE), which for it is exactly 1.
// `sc` (tile_scale in fwd_kernel.cuh): the LSE's score scale and shift, and O's factor (v descale).
template <typename Elem, int kN, typename WorkTile>
__device__ __forceinline__ void store_output(const FwdParams& p, float (&o)[kN], SoftmaxState& st, const OutScale& sc,
                                             const WorkTile& w, const int (&row)[2], int lane) {
  using T = typename Elem::T;
  float inv[2];
  bool empty[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    st.l[r] = quad_sum(st.l[r]);
    int lo, hi;
    key_range(row[r], w.s_q, w.s_k, p.window_left, p.window_right, &lo, &hi);
    empty[r] = lo >= hi;
    inv[r] = empty[r] ? 0.f : sc.o_mul / st.l[r];
  }
  T* const o_bh = static_cast<T*>(p.o) + w.batch * p.o_batch + w.head * p.o_head;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    if (row[r] >= w.s_q) continue;
    T* const o_row = o_bh + static_cast<int64_t>(w.q0 + row[r]) * p.o_row;
#pragma unroll
    for (int c = 0; c < kN / 4; ++c) {
      const int col = c * 8 + 2 * (lane % 4);
      if (col < p.d) {
        *reinterpret_cast<uint32_t*>(o_row + col) = sm80::pack2<Elem>(o[4 * c + 2 * r] * inv[r], o[4 * c + 2 * r + 1] * inv[r]);
      }
    }
    if (lane % 4 == 0) {
      const float m = st.m[r], l = st.l[r];
      p.lse[w.lse0 + row[r]] =
          empty[r] ? kNegInf : l > 0.f ? __fmul_rn(m, sc.lse_scale) + logf(l) - sc.lse_shift : __int_as_float(0x7fc00000);  // NaN
    }
  }
}

}  // namespace flashattn::sm90
