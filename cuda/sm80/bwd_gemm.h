// bwd_gemm.h — one warp's share of a tile product on mma.sync m16n8k16, operands from swizzled
// shared tiles (bwd_tile.h) through ldmatrix, float32 accumulators in registers.
//
// The backward needs each operand both ways round: S = Q K^T reads Q and K along d, but
// dK = dS^T Q reads Q along the query rows. A shared tile is always stored row-major as it came
// from global memory, and `*_T` says which way the product walks it:
//   A (M x K):  A_T = false: the tile's rows are m (k contiguous)  -> ldmatrix
//               A_T = true:  the tile's rows are k (m contiguous)  -> ldmatrix.trans
//   B (K x N):  B_T = false: the tile's rows are n (k contiguous)  -> ldmatrix
//               B_T = true:  the tile's rows are k (n contiguous)  -> ldmatrix.trans
#pragma once

#include <cstdint>

#include "sm80/mma.h"
#include "sm80/bwd_tile.h"

namespace flashattn::sm80::bwd {

// ---- per-lane addressing ------------------------------------------------------------------------
// Every ldmatrix of a warp product reads (row, chunk) = (runtime part + R, runtime part + C) where
// the runtime part is the warp's offset plus the lane's place in the 8x8 tiles, and R (a multiple
// of 8) and C (even, in 16-byte chunks) are known once the loops are unrolled. The swizzle key
// depends on the row mod 8 only, and XOR-ing it changes only the chunk bits below the swizzle
// period P (8 chunks, or 4 for 64/192-byte rows), so
//   offset(row + R, chunk + C) = off[(C mod P) / 2] + (R * COLS + (C - C mod P) * 8) * 2 bytes:
// P/2 registers per access pattern, and every address is one of them plus an immediate.
template <int COLS>
struct Lanes {
  static constexpr int kPeriod = (COLS / 8) % 8 == 0 ? 8 : 4;
  uint32_t off[kPeriod / 2];

  __device__ __forceinline__ Lanes(int row, int chunk) {
#pragma unroll
    for (int j = 0; j < kPeriod / 2; ++j) off[j] = 2 * Tile<COLS>::offset(row, (chunk + 2 * j) * 8);
  }
  __device__ __forceinline__ uint32_t at(int r, int c) const {
    return off[(c % kPeriod) / 2] + 2 * (r * COLS + (c - c % kPeriod) * 8);
  }
};

// The four ways the products read a tile; m0/n0 is the warp's offset along the tile's m/n side
// (a multiple of 16), the k side starts at 0.
//   A, rows m (ldmatrix): lanes 0-15 rows m0..m0+15 at chunk 0, lanes 16-31 the same rows at chunk 1;
//     the four 8x8 tiles come back as (m0-7,k0-7), (m8-15,k0-7), (m0-7,k8-15), (m8-15,k8-15).
//   A, rows k (ldmatrix.trans): tile i = lanes 8i..8i+7 at k rows (i/2)*8 + lane%8, m chunk i%2.
//   B, rows n (ldmatrix x4 = two n8 tiles): n rows (lane/16)*8 + lane%8, k chunk (lane/8)%2.
//   B, rows k (ldmatrix.trans x4): k rows lane%16, n chunk lane/16.
template <int COLS, bool A_T>
__device__ __forceinline__ Lanes<COLS> a_lanes(int m0, int lane) {
  if constexpr (!A_T) {
    return Lanes<COLS>(m0 + (lane & 15), lane >> 4);
  } else {
    return Lanes<COLS>((lane & 7) + (lane >> 4) * 8, m0 / 8 + ((lane >> 3) & 1));
  }
}
template <int COLS, bool B_T>
__device__ __forceinline__ Lanes<COLS> b_lanes(int n0, int lane) {
  if constexpr (!B_T) {
    return Lanes<COLS>(n0 + (lane & 7) + (lane >> 4) * 8, (lane >> 3) & 1);
  } else {
    return Lanes<COLS>(lane & 15, n0 / 8 + (lane >> 4));
  }
}

// A fragment of m tile mt, k step ks.
template <int COLS, bool A_T>
__device__ __forceinline__ void load_a(uint32_t (&a)[4], uint32_t tile, const Lanes<COLS>& l, int mt, int ks) {
  if constexpr (!A_T) {
    ldmatrix_x4(a, tile + l.at(mt * 16, ks * 2));
  } else {
    ldmatrix_x4_trans(a, tile + l.at(ks * 16, mt * 2));
  }
}

// B fragments of n tiles 2np, 2np+1 at k step ks.
template <int COLS, bool B_T>
__device__ __forceinline__ void load_b2(uint32_t (&b0)[2], uint32_t (&b1)[2], uint32_t tile, const Lanes<COLS>& l,
                                        int np, int ks) {
  uint32_t r[4];
  if constexpr (!B_T) {
    ldmatrix_x4(r, tile + l.at(np * 16, ks * 2));
  } else {
    ldmatrix_x4_trans(r, tile + l.at(ks * 16, np * 2));
  }
  b0[0] = r[0];
  b0[1] = r[1];
  b1[0] = r[2];
  b1[1] = r[3];
}

// B fragments of n tile nt (even) alone: lanes 0-15 of the x4 pattern address the x2 tiles.
template <int COLS, bool B_T>
__device__ __forceinline__ void load_b1(uint32_t (&b)[2], uint32_t tile, const Lanes<COLS>& l, int nt, int ks) {
  if constexpr (!B_T) {
    ldmatrix_x2(b, tile + l.at(nt * 8, ks * 2));
  } else {
    ldmatrix_x2_trans(b, tile + l.at(ks * 16, nt));
  }
}

// acc (MT*16 x NT*8) += A * B over KSTEPS*16 of k, both from shared tiles (byte addresses
// a_tile, b_tile) read through the warp's access patterns la, lb. Per k step: the MT A fragments,
// then B two n8 tiles at a time, each used at once.
// nt0 (even) shifts the product to B's n tiles nt0.. of the warp's range.
template <typename E, int MT, int NT, int KSTEPS, int A_COLS, bool A_T, int B_COLS, bool B_T>
__device__ __forceinline__ void gemm_ss(float (&acc)[MT][NT][4], uint32_t a_tile, const Lanes<A_COLS>& la,
                                        uint32_t b_tile, const Lanes<B_COLS>& lb, int nt0 = 0) {
#pragma unroll
  for (int ks = 0; ks < KSTEPS; ++ks) {
    uint32_t a[MT][4];
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) load_a<A_COLS, A_T>(a[mt], a_tile, la, mt, ks);
#pragma unroll
    for (int np = 0; np < NT / 2; ++np) {
      uint32_t b0[2], b1[2];
      load_b2<B_COLS, B_T>(b0, b1, b_tile, lb, nt0 / 2 + np, ks);
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
        mma_16x8x16<E>(acc[mt][2 * np], a[mt], b0);
        mma_16x8x16<E>(acc[mt][2 * np + 1], a[mt], b1);
      }
    }
    if constexpr (NT % 2 == 1) {
      uint32_t b[2];
      load_b1<B_COLS, B_T>(b, b_tile, lb, nt0 + NT - 1, ks);
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) mma_16x8x16<E>(acc[mt][NT - 1], a[mt], b);
    }
  }
}

// acc (16 x NT*8) += A * B, A (16 x KSTEPS*16) already in registers as fragments.
template <typename E, int NT, int KSTEPS, int B_COLS, bool B_T>
__device__ __forceinline__ void gemm_rs(float (&acc)[NT][4], const uint32_t (&a)[KSTEPS][4], uint32_t b_tile,
                                        const Lanes<B_COLS>& lb) {
  static_assert(NT % 2 == 0, "n8 tiles come in pairs here");
#pragma unroll
  for (int ks = 0; ks < KSTEPS; ++ks) {
#pragma unroll
    for (int np = 0; np < NT / 2; ++np) {
      uint32_t b0[2], b1[2];
      load_b2<B_COLS, B_T>(b0, b1, b_tile, lb, np, ks);
      mma_16x8x16<E>(acc[2 * np], a[ks], b0);
      mma_16x8x16<E>(acc[2 * np + 1], a[ks], b1);
    }
  }
}

template <int MT, int NT>
__device__ __forceinline__ void zero(float (&acc)[MT][NT][4]) {
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[mt][nt][e] = 0.f;
    }
  }
}

}  // namespace flashattn::sm80::bwd
