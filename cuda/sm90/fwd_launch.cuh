// fwd_launch.cuh — tile shapes per head dim and the templated launcher of the sm90 forward.
// Included by the per-instantiation files fwd_hdim{D}_{bf16,fp16}.cu (and the dev harness).
#pragma once

#include <cuda_runtime.h>

#include "params.h"
#include "sm80/fwd_host.h"
#include "sm90/fwd_kernel.cuh"
#include "sm90/fwd_params.h"

namespace flashattn::sm90 {

// FwdTile<D, kBlockN, kStages>; 128 query rows per block. docs/perf-notes.md, "Forward (sm90)",
// has the measurements behind each choice.
template <int D>
struct FwdConfig;
template <>
struct FwdConfig<64> {
  using Tile = FwdTile<64, 128, 3>;
};
template <>
struct FwdConfig<128> {
  using Tile = FwdTile<128, 128, 2>;
};
template <>
struct FwdConfig<256> {
  using Tile = FwdTile<256, 64, 2>;
};

// Builds the kernel's parameters (tensor maps included) for tile shape `block_n` (fwd_host.cu).
FwdParams make_fwd_params(const AttnParams& p, int block_n);

template <typename Tile, typename Elem>
void launch_fwd_tile(const AttnParams& p, cudaStream_t stream) {
  const FwdParams params = make_fwd_params(p, Tile::kBlockN);
  auto kernel = fwd_kernel<Tile, Elem>;
  cuda::fwd_check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, Tile::kSmemBytes),
                  "cudaFuncSetAttribute(sm90 forward shared memory)");
  const dim3 grid((p.s_q + Tile::kBlockM - 1) / Tile::kBlockM, p.h, p.b);
  kernel<<<grid, Tile::kThreads, Tile::kSmemBytes, stream>>>(params);
  cuda::fwd_check(cudaGetLastError(), "sm90 forward kernel launch");
}

template <typename Elem, int D>
void launch_fwd(const AttnParams& p, cudaStream_t stream) {
  launch_fwd_tile<typename FwdConfig<D>::Tile, Elem>(p, stream);
}

// Defined once each in fwd_hdim{D}_{bf16,fp16}.cu.
#define FLASHATTN_SM90_FWD_EXTERN(D)                                                   \
  extern template void launch_fwd<sm80::Fp16, D>(const AttnParams&, cudaStream_t); \
  extern template void launch_fwd<sm80::Bf16, D>(const AttnParams&, cudaStream_t);
FLASHATTN_SM90_FWD_EXTERN(64)
FLASHATTN_SM90_FWD_EXTERN(128)
FLASHATTN_SM90_FWD_EXTERN(256)
#undef FLASHATTN_SM90_FWD_EXTERN

}  // namespace flashattn::sm90
