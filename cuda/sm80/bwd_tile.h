// bwd_tile.h — swizzled shared-memory tiles and their global <-> shared copies for the backward.
//
// A tile is ROWS x COLS 16-bit values, row-major, stored as 16-byte chunks whose index within the
// row is XOR-ed with a per-row key. Every read the backward makes is an ldmatrix phase of 8
// consecutive rows (starting at a multiple of 8) at one logical chunk, plain or transposed, and
// every write is a warp writing 8 consecutive rows at one logical chunk or consecutive chunks of
// consecutive rows; the key makes each of those touch 8 different 16-byte bank groups.
//
// common/copy.h's swizzle_chunk (key = row mod 8) needs a multiple of 8 chunks (128 B) per row.
// Head dims 32 and 96 have 4 and 12 chunks per row, so odd rows already start in the other half
// of a 128-byte bank window: those tiles use the 2-bit key (row / 2) mod 4 inside aligned groups of
// 4 chunks. (A shared primitive candidate: same idea as swizzle_chunk, any COLS % 32 == 0.)
#pragma once

#include <cstdint>

#include "sm80/copy.h"
#include "sm80/mma.h"

namespace flashattn::sm80::bwd {

template <int COLS>
struct Tile {
  static_assert(COLS % 32 == 0, "rows must be a multiple of 4 chunks");
  static constexpr int kChunks = COLS / 8;

  __device__ __forceinline__ static int key(int row) {
    if constexpr (kChunks % 8 == 0) {
      return row & 7;
    } else {
      return (row >> 1) & 3;
    }
  }
  // Element offset of (row, col); col % 8 may be non-zero (it stays inside the chunk).
  __device__ __forceinline__ static int offset(int row, int col) {
    return row * COLS + (((col >> 3) ^ key(row)) << 3) + (col & 7);
  }
};

// Copies a ROWS x COLS tile global -> shared with cp.async (not committed here). Rows >= rows_valid
// and columns >= cols_valid are zero-filled without reading global memory. `src` points at the
// tile's (0, 0) and `row_stride` is in elements; both must keep 16-byte chunks aligned.
template <int ROWS, int COLS, int NTHREADS, typename T>
__device__ __forceinline__ void load_tile_async(T* smem, const T* src, int64_t row_stride, int rows_valid,
                                                int cols_valid, int tid) {
  constexpr int kChunks = COLS / 8;
  constexpr int kTotal = ROWS * kChunks;
  const uint32_t base = smem_u32(smem);
  if constexpr (NTHREADS % kChunks == 0 && (NTHREADS / kChunks) % 8 == 0 && kTotal % NTHREADS == 0) {
    // Each pass covers RP whole rows, RP a multiple of 8, so a thread keeps its column and its
    // swizzle key: one running global pointer and one shared offset plus immediates.
    constexpr int RP = NTHREADS / kChunks;
    const int r0 = tid / kChunks, c = tid % kChunks;
    const bool col_ok = c * 8 < cols_valid;
    const uint32_t s = base + 2 * Tile<COLS>::offset(r0, c * 8);
    const T* g = src + r0 * row_stride + c * 8;
#pragma unroll
    for (int i = 0; i < kTotal / NTHREADS; ++i) {
      const bool valid = col_ok && r0 + i * RP < rows_valid;
      cp_async_16(s + 2 * i * RP * COLS, valid ? g : src, valid);
      g += RP * row_stride;
    }
  } else {
#pragma unroll
    for (int i = 0; i < (kTotal + NTHREADS - 1) / NTHREADS; ++i) {
      const int idx = i * NTHREADS + tid;
      if (kTotal % NTHREADS != 0 && idx >= kTotal) break;
      const int r = idx / kChunks;
      const int c = idx % kChunks;
      const bool valid = r < rows_valid && c * 8 < cols_valid;
      const T* g = valid ? src + r * row_stride + c * 8 : src;
      cp_async_16(base + 2 * Tile<COLS>::offset(r, c * 8), g, valid);
    }
  }
}

// Stores a ROWS x COLS shared tile to global memory with 16-byte stores, skipping rows >= rows_valid
// and columns >= cols_valid. The caller synchronizes before (the tile is complete) and after (if
// it reuses the shared memory).
template <int ROWS, int COLS, int NTHREADS, typename T>
__device__ __forceinline__ void store_tile(T* dst, int64_t row_stride, const T* smem, int rows_valid, int cols_valid,
                                           int tid) {
  constexpr int kChunks = COLS / 8;
  constexpr int kTotal = ROWS * kChunks;
#pragma unroll
  for (int i = 0; i < (kTotal + NTHREADS - 1) / NTHREADS; ++i) {
    const int idx = i * NTHREADS + tid;
    if (kTotal % NTHREADS != 0 && idx >= kTotal) break;
    const int r = idx / kChunks;
    const int c = idx % kChunks;
    if (r < rows_valid && c * 8 < cols_valid) {
      *reinterpret_cast<uint4*>(dst + r * row_stride + c * 8) =
          *reinterpret_cast<const uint4*>(smem + Tile<COLS>::offset(r, c * 8));
    }
  }
}

// Writes one m16n8 float accumulator tile, rounded to the element type, into a shared tile at
// (row0, col0): the C-fragment layout of common/mma.h, two values per 32-bit store.
template <typename E, int COLS>
__device__ __forceinline__ void store_frag(typename E::T* smem, int row0, int col0, const float (&c)[4], float mul,
                                           int lane) {
  const int r = row0 + (lane >> 2);
  const int col = col0 + (lane & 3) * 2;
  *reinterpret_cast<uint32_t*>(smem + Tile<COLS>::offset(r, col)) = pack2<E>(c[0] * mul, c[1] * mul);
  *reinterpret_cast<uint32_t*>(smem + Tile<COLS>::offset(r + 8, col)) = pack2<E>(c[2] * mul, c[3] * mul);
}

}  // namespace flashattn::sm80::bwd
