// copy.h — asynchronous global -> shared copies (cp.async, sm80+) and the shared-memory swizzle.
#pragma once

#include <cstdint>

namespace flashattn::sm80 {

// Copies 16 bytes global -> shared without staging in registers. When `valid` is false the 16
// shared bytes are zero-filled instead and global memory is not read: that is how tails past
// the end of a sequence stay in bounds and contribute nothing.
__device__ __forceinline__ void cp_async_16(uint32_t smem_addr, const void* gmem, bool valid) {
  const int src_bytes = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr), "l"(gmem), "r"(src_bytes));
}

__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }

// Waits until at most N committed groups are still in flight.
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

// Shared tiles are rows of 16-byte chunks (8 x 16-bit values). XOR-ing the chunk index with the
// row (mod 8) spreads the 8 rows that one ldmatrix phase reads over all 32 banks, so neither the
// cp.async writes nor the ldmatrix reads conflict. `chunks_per_row` must be a multiple of 8.
__device__ __forceinline__ int swizzle_chunk(int row, int chunk) { return chunk ^ (row & 7); }

// Element offset of (row, col) in a swizzled tile with `cols` 16-bit columns per row.
__device__ __forceinline__ int swizzled_offset(int row, int col, int cols) {
  return row * cols + (swizzle_chunk(row, col >> 3) << 3) + (col & 7);
}

}  // namespace flashattn::sm80
