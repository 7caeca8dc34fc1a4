// tma.h — the tensor copy engine (cp.async.bulk.tensor) on the device side. Tensor maps are
// built on the host (sm90/fwd_launch.cu) and reach the kernel as __grid_constant__ parameters.
// Boxes that reach past a tensor's bounds are zero-filled and still complete their full bytes.
#pragma once

#include <cstdint>
#include <cuda.h>

namespace flashattn::sm90 {

__device__ __forceinline__ void tma_prefetch_map(const CUtensorMap* map) {
  asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<uint64_t>(map)) : "memory");
}

// Copies the 4-D box at coordinates (c0 innermost .. c3) into shared `dst`, completing its bytes
// on mbarrier `bar`.
__device__ __forceinline__ void tma_load_4d(uint32_t dst, const CUtensorMap* map, uint32_t bar, int c0, int c1, int c2,
                                            int c3) {
  asm volatile(
      "cp.async.bulk.tensor.4d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4, %5}], [%6];\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(c2), "r"(c3), "r"(bar)
      : "memory");
}

// Copies `bytes` contiguous bytes (a multiple of 16; both addresses 16-byte aligned) from global
// `src` into shared `dst`, completing them on mbarrier `bar`.
__device__ __forceinline__ void bulk_load(uint32_t dst, const void* src, uint32_t bytes, uint32_t bar) {
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(dst),
               "l"(reinterpret_cast<uint64_t>(src)), "r"(bytes), "r"(bar)
               : "memory");
}

}  // namespace flashattn::sm90
