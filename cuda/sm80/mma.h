// mma.h — warp-level tensor-core primitives for the sm80 path (mma.sync, ldmatrix).
//
// Fragment layouts are those of PTX `mma.sync.aligned.m16n8k16.row.col.f32.{f16,bf16}`:
//   A (16x16, row):  4 x u32, each two 16-bit values; thread t holds rows {t/4, t/4+8},
//                    cols {2(t%4), 2(t%4)+1} and the same +8.
//   B (16x8,  col):  2 x u32.
//   C/D (16x8 f32):  4 floats; c[0..1] row t/4, cols 2(t%4)+{0,1}; c[2..3] row t/4+8.
// ldmatrix loads those fragments straight from shared memory, 8x8 16-bit tiles at a time.
#pragma once

#include <cstdint>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace flashattn::sm80 {

// 16-bit element types the kernels are instantiated for.
struct Fp16 {
  using T = __half;
  using T2 = __half2;
  static constexpr bool kIsBf16 = false;
};
struct Bf16 {
  using T = __nv_bfloat16;
  using T2 = __nv_bfloat162;
  static constexpr bool kIsBf16 = true;
};

// Two floats rounded (RNE) into one 32-bit register of two 16-bit values, low half first.
template <typename E>
__device__ __forceinline__ uint32_t pack2(float lo, float hi) {
  typename E::T2 v;
  if constexpr (E::kIsBf16) {
    v = __floats2bfloat162_rn(lo, hi);
  } else {
    v = __floats2half2_rn(lo, hi);
  }
  return *reinterpret_cast<uint32_t*>(&v);
}

template <typename E>
__device__ __forceinline__ float2 unpack2(uint32_t bits) {
  typename E::T2 v = *reinterpret_cast<typename E::T2*>(&bits);
  if constexpr (E::kIsBf16) {
    return __bfloat1622float2(v);
  } else {
    return __half22float2(v);
  }
}

// D = A * B + D, one m16n8k16 tile, float32 accumulators.
template <typename E>
__device__ __forceinline__ void mma_16x8x16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  if constexpr (E::kIsBf16) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
        "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
        "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  }
}

__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// Four 8x8 tiles; lane l supplies the row address of tile l/8, row l%8.
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(addr));
}
// The same, each tile transposed (for a row-major operand used as the "col" side).
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(addr));
}
__device__ __forceinline__ void ldmatrix_x2(uint32_t (&r)[2], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];\n"
               : "=r"(r[0]), "=r"(r[1]) : "r"(addr));
}
__device__ __forceinline__ void ldmatrix_x2_trans(uint32_t (&r)[2], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];\n"
               : "=r"(r[0]), "=r"(r[1]) : "r"(addr));
}

}  // namespace flashattn::sm80
