// wgmma.h — warpgroup matrix multiply (wgmma.mma_async, HGMMA in SASS) and its shared-memory
// matrix descriptors, for 16-bit and e4m3 operands with fp32 accumulators.
//
// Tiles in shared memory use the layout the tensor copy engine writes with 128-byte swizzle:
// a (rows, D) tile is D/64 "panels", each (rows, 64) elements = rows x 128 bytes, 1024-byte
// aligned; inside a panel row r starts at r*128 and its 16-byte chunks are XOR-swizzled by r % 8.
//
//   K-major operand (Q as A, K as B of S = Q Kᵀ): the reduction dim is the contiguous one.
//     8-row groups sit 1024 bytes apart (stride byte offset); one k16 step is 32 bytes inside a
//     panel, the next panel starts a new group of four steps.
//   N-major operand (V as B of O = P V, the instruction's transpose-B bit set): the reduction
//     dim (keys) is the row. One k16 step is 16 rows = 2048 bytes; the 64-column panels along N
//     sit one panel apart (leading byte offset); 8-row groups again 1024 bytes apart.
#pragma once

#include <cstdint>

#include "sm80/mma.h"

namespace flashattn::sm90 {

// The fp8 operand type (e4m3 bits, one byte per element). fp8 wgmma takes K = 32 per
// instruction and both shared-memory operands K-major.
struct E4m3 {};

// Elem is sm80/mma.h's 16-bit element types (sm80::Bf16, sm80::Fp16) or E4m3; the PTX type names
// are spelled in wgmma_ops.h.
template <int N, typename Elem>
struct Wgmma;  // specializations in wgmma_ops.h

}  // namespace flashattn::sm90

#include "sm90/wgmma_ops.h"

namespace flashattn::sm90 {

// Descriptor of a 128B-swizzled operand starting at shared address `addr` (bytes, 16-aligned;
// the panel it lies in must be 1024-aligned so the swizzle phase is the address's own).
__device__ __forceinline__ uint64_t smem_desc_sw128(uint32_t addr, uint32_t leading_bytes, uint32_t stride_bytes) {
  uint64_t d = 0;
  d |= static_cast<uint64_t>((addr & 0x3FFFF) >> 4);
  d |= static_cast<uint64_t>((leading_bytes & 0x3FFFF) >> 4) << 16;
  d |= static_cast<uint64_t>((stride_bytes & 0x3FFFF) >> 4) << 32;
  d |= 1ull << 62;  // 128-byte swizzle
  return d;
}

// k16 step `kk` of a K-major (rows, D) panel tile whose panels are `panel_bytes` apart.
__device__ __forceinline__ uint64_t desc_k_major(uint32_t tile, int kk, uint32_t panel_bytes) {
  return smem_desc_sw128(tile + (kk / 4) * panel_bytes + (kk % 4) * 32, 16, 1024);
}

// k16 step `kk` (rows 16kk..16kk+15) of an N-major (rows, D) panel tile, N spanning all panels.
__device__ __forceinline__ uint64_t desc_n_major(uint32_t tile, int kk, uint32_t panel_bytes) {
  return smem_desc_sw128(tile + kk * 2048, panel_bytes, 1024);
}

// The value, hidden from the optimizer at this point. Descriptors built from it are recomputed
// (a few integer ops) next to each wgmma instead of being hoisted out of the key loop, where the
// 16 loop-invariant Q descriptors of a d256 tile alone would hold 32 registers.
__device__ __forceinline__ uint32_t opaque(uint32_t x) {
  asm volatile("mov.b32 %0, %0;\n" : "+r"(x));
  return x;
}

// Orders this warpgroup's earlier register and shared-memory writes before the wgmma that follow.
__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
// Closes the batch of wgmma issued since the last commit into one group.
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
// Waits until at most `kPending` committed groups are still running.
template <int kPending>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(kPending) : "memory");
}

// The compiler sees a wgmma's accumulators as written when the instruction is issued; this
// pins each register at this point so no read or write of it moves across a fence or wait.
template <int kN>
__device__ __forceinline__ void fence_operands(float (&r)[kN]) {
#pragma unroll
  for (int i = 0; i < kN; ++i) asm volatile("" : "+f"(r[i])::"memory");
}
template <int kN>
__device__ __forceinline__ void fence_operands(uint32_t (&r)[kN]) {
#pragma unroll
  for (int i = 0; i < kN; ++i) asm volatile("" : "+r"(r[i])::"memory");
}

template <int kM, int kN>
__device__ __forceinline__ void fence_operands(uint32_t (&r)[kM][kN]) {
#pragma unroll
  for (int i = 0; i < kM; ++i) fence_operands(r[i]);
}

}  // namespace flashattn::sm90
