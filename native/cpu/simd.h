// simd.h — which instance of the tile code runs on this CPU. Internal to native/cpu/.
//
// The addon is built without -march (it must run on any x86-64 / arm64 CPU), so the tile functions
// exist twice: a portable one with 4-wide vectors (SSE2 / NEON), and on x86-64 GCC/Clang one
// compiled with target("avx2,fma") and 8-wide vectors, picked at run time when the CPU has AVX2
// and FMA. The two give the same results up to float rounding (FMA, lane order); each is
// deterministic. FLASHATTN_CPU_SIMD=generic in the environment forces the portable one.
#pragma once

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#define FLASHATTN_CPU_HAVE_AVX2 1
#define FLASHATTN_CPU_TARGET_AVX2 __attribute__((target("avx2,fma")))
#else
#define FLASHATTN_CPU_HAVE_AVX2 0
#endif

namespace flashattn::cpu {

enum class Simd { kGeneric4, kAvx2Fma8 };

// The instance to use now: kAvx2Fma8 when compiled in, supported by the CPU and not overridden.
Simd active_simd();

}  // namespace flashattn::cpu
