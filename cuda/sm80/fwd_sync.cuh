// fwd_sync.cuh — shared-memory mbarriers fed by cp.async (sm_80+), for the forward's mbar
// schedule. A candidate for cuda/common/ if the backward wants it.
#pragma once

#include <cstdint>

namespace flashattn::sm80 {

// An mbarrier completes a phase when `count` arrivals have been made; waiters name the phase by
// its parity (0, 1, 0, ...).
__device__ __forceinline__ void mbar_init(uint32_t bar, int count) {
  asm volatile("mbarrier.init.shared.b64 [%0], %1;\n" ::"r"(bar), "r"(count));
}

// One arrival, made when all of this thread's earlier cp.async copies have landed ("noinc": the
// arrival counts against the expected count set at init).
__device__ __forceinline__ void mbar_arrive_on_copies(uint32_t bar) {
  asm volatile("cp.async.mbarrier.arrive.noinc.shared.b64 [%0];\n" ::"r"(bar));
}

__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
  asm volatile("{\n.reg .b64 state;\nmbarrier.arrive.shared.b64 state, [%0];\n}\n" ::"r"(bar) : "memory");
}

// Blocks until the phase with this parity has completed. The wait acquires what the arrivals
// released (copies landed, reads done).
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile(
      "{\n"
      ".reg .pred p;\n"
      "WAIT:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 p, [%0], %1;\n"
      "@!p bra WAIT;\n"
      "}\n" ::"r"(bar),
      "r"(parity)
      : "memory");
#else
  asm volatile(
      "{\n"
      ".reg .pred p;\n"
      "WAIT:\n"
      "mbarrier.test_wait.parity.shared.b64 p, [%0], %1;\n"
      "@!p bra WAIT;\n"
      "}\n" ::"r"(bar),
      "r"(parity)
      : "memory");
#endif
}

}  // namespace flashattn::sm80
