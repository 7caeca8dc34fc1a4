// fwd_sync.cuh — the synchronization primitives of the forward's barrier-pipelined schedules:
// shared-memory mbarriers fed by cp.async (sm_80+), and named barriers for the warp-group
// ping-pong. Candidates for cuda/common/ if the backward wants them.
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

// Named barrier kId (1..15; 0 is __syncthreads) over `threads` threads: sync waits until all of
// them have arrived, arrive counts this warp in without waiting. The id is an immediate so that
// ptxas reserves only the barriers actually used.
template <int kId>
__device__ __forceinline__ void named_bar_sync(int threads) {
  asm volatile("bar.sync %0, %1;\n" ::"n"(kId), "r"(threads) : "memory");
}
template <int kId>
__device__ __forceinline__ void named_bar_arrive(int threads) {
  asm volatile("bar.arrive %0, %1;\n" ::"n"(kId), "r"(threads) : "memory");
}

}  // namespace flashattn::sm80
