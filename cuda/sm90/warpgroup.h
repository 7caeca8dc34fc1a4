// warpgroup.h — warpgroup roles: register reallocation between producer and consumers, and
// named barriers among a subset of the block's warps.
#pragma once

#include <cstdint>

namespace flashattn::sm90 {

constexpr int kWarpgroupThreads = 128;

// The warpgroup gives registers back to the pool (producer) or takes them (consumers). Every
// warp of the warpgroup executes the same one; takes effect only under a launch-bounds cap.
template <int kRegs>
__device__ __forceinline__ void warpgroup_reg_dealloc() {
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(kRegs));
}
template <int kRegs>
__device__ __forceinline__ void warpgroup_reg_alloc() {
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(kRegs));
}

// The warpgroup index, uniform across the warpgroup (so branches on it stay warp-uniform).
__device__ __forceinline__ int warpgroup_index() { return __shfl_sync(0xffffffffu, static_cast<int>(threadIdx.x) / kWarpgroupThreads, 0); }

// Named barriers (ids 1..15; 0 is __syncthreads). `threads` is a multiple of 32.
__device__ __forceinline__ void named_barrier_sync(int id, int threads) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}
__device__ __forceinline__ void named_barrier_arrive(int id, int threads) {
  asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

}  // namespace flashattn::sm90
