// mbarrier.h — shared-memory transaction barriers: the copy engine completes bytes on them,
// consumers release buffers through them. Addresses are 32-bit shared-window addresses.
#pragma once

#include <cstdint>

namespace flashattn::sm90 {

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// `count` arrivals complete a phase (plus, for a full barrier, the expected bytes).
__device__ __forceinline__ void mbar_init(uint32_t bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}

// Makes initialized barriers visible to the copy engine and the other threads (then sync).
__device__ __forceinline__ void mbar_init_fence() {
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
}

// One arrival that also announces `bytes` the copy engine will complete on this phase.
__device__ __forceinline__ void mbar_arrive_expect_tx(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}

__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}

// Spins until the phase with this parity has completed. A fresh barrier counts its (virtual)
// previous phase, parity 1, as complete, so a producer's first wait on an empty slot passes.
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
  asm volatile(
      "{\n"
      ".reg .pred done;\n"
      "WAIT_%=:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
      "@!done bra WAIT_%=;\n"
      "}\n" ::"r"(bar),
      "r"(parity)
      : "memory");
}

// Ring slot and phase parity of the it-th fill of a ring of Tile::kStages buffers (counted the same
// way by the producer and the consumers).
template <typename Tile>
__device__ __forceinline__ int stage_of(int it) { return it % Tile::kStages; }
template <typename Tile>
__device__ __forceinline__ uint32_t parity_of(int it) { return (it / Tile::kStages) & 1; }

}  // namespace flashattn::sm90
