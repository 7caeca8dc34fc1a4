// fwd_epilogue.h — O / l and the LSE, from one warpgroup's registers to device memory.
#pragma once

#include <cstdint>

#include "sm80/mma.h"
#include "common/reduce.h"
#include "sm90/fwd_params.h"
#include "sm90/fwd_softmax.h"

namespace flashattn::sm90 {

// Rows >= s_q and columns >= d are not written. Each thread stores 2 values (4 bytes) per column
// block of each of its rows; a quad covers 16 contiguous bytes of a row.
// A row that saw no key has l = 0: its O is 0 and its LSE -inf.
template <typename Elem, int kN>
__device__ __forceinline__ void store_output(const FwdParams& p, float (&o)[kN], SoftmaxState& st, int batch, int head,
                                             const int (&row)[2], int lane) {
  using T = typename Elem::T;
  float inv[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    st.l[r] = quad_sum(st.l[r]);
    inv[r] = st.l[r] > 0.f ? 1.f / st.l[r] : 0.f;
  }
  T* const o_bh = static_cast<T*>(p.o) + batch * p.o_batch + head * p.o_head;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    if (row[r] >= p.s_q) continue;
    T* const o_row = o_bh + row[r] * p.o_row;
#pragma unroll
    for (int c = 0; c < kN / 4; ++c) {
      const int col = c * 8 + 2 * (lane % 4);
      if (col < p.d) {
        *reinterpret_cast<uint32_t*>(o_row + col) = sm80::pack2<Elem>(o[4 * c + 2 * r] * inv[r], o[4 * c + 2 * r + 1] * inv[r]);
      }
    }
    if (lane % 4 == 0) {
      p.lse[(static_cast<int64_t>(batch) * p.h + head) * p.s_q + row[r]] =
          st.l[r] > 0.f ? st.m[r] * p.scale + logf(st.l[r]) : kNegInf;
    }
  }
}

}  // namespace flashattn::sm90
