// bwd_launch.cuh — the templated launcher of the sm90 backward: workspace, parameters and the
// three kernels. Included by the instantiation files cuda/generated/sm90_bwd_d{D}_{dtype}.cu.
#pragma once

#include <atomic>
#include <cstdint>

#include <cuda_runtime.h>

#include "common/check.h"
#include "common/launch_attr.h"
#include "common/stream_buffer.h"
#include "params.h"
#include "sm90/bwd_kernel.cuh"
#include "sm90/bwd_params.h"

namespace flashattn::sm90 {

// Kernel shape per compiled head dim (docs/perf-notes.md, "Backward (sm90)").
template <int D>
struct BwdConfig {
  using Tile = BwdTile<D, 2>;
};

// Float32 workspace of a request: LSE and D rows, then the dQ accumulator (bwd_params.h).
inline size_t bwd_workspace_floats(const AttnParams& p, int kernel_head_dim) {
  const size_t rows = static_cast<size_t>(p.b) * p.h * bwd_rows_padded(p.s_q);
  return rows * (2 + static_cast<size_t>(kernel_head_dim));
}

// Builds the kernels' parameters (tensor maps included) over `workspace` (bwd_host.cu).
BwdParams make_bwd_params(const AttnParams& p, float* workspace, int block_n);

template <typename Tile, typename Elem>
void launch_bwd_tile(const AttnParams& p, cudaStream_t stream) {
  constexpr int D = Tile::kHeadDim;
  cuda::StreamBuffer buffer(bwd_workspace_floats(p, D) * sizeof(float), stream);
  const BwdParams params = make_bwd_params(p, buffer.floats(), Tile::kBlockN);
  int device = 0;
  FA_CUDA_CHECK(cudaGetDevice(&device));

  const dim3 rows_grid(params.s_q_pad / kBwdBlockM, p.h, p.b);
  static std::atomic<uint64_t> prep_set{0}, main_set{0};
  constexpr int kPrepSmem = bwd_preprocess_smem<D>();
  cuda::set_max_dynamic_smem_once(reinterpret_cast<const void*>(bwd_preprocess_kernel<Elem, D>), device, kPrepSmem, prep_set,
                                  "cudaFuncSetAttribute(sm90 backward preprocess shared memory)");
  bwd_preprocess_kernel<Elem, D><<<rows_grid, kWarpgroupThreads, kPrepSmem, stream>>>(params);
  FA_CUDA_CHECK_LAUNCH("sm90 bwd preprocess");

  cuda::set_max_dynamic_smem_once(reinterpret_cast<const void*>(bwd_main_kernel<Tile, Elem>), device, Tile::kSmemBytes, main_set,
                                  "cudaFuncSetAttribute(sm90 backward shared memory)");
  const dim3 main_grid((p.s_k + Tile::kBlockN - 1) / Tile::kBlockN, p.h_k, p.b);
  bwd_main_kernel<Tile, Elem><<<main_grid, Tile::kThreads, Tile::kSmemBytes, stream>>>(params);
  FA_CUDA_CHECK_LAUNCH("sm90 bwd main");

  bwd_dq_convert_kernel<Elem, D, Tile::kDqCols><<<rows_grid, kWarpgroupThreads, 0, stream>>>(params);
  FA_CUDA_CHECK_LAUNCH("sm90 bwd dq convert");
}

template <typename Elem, int D>
void launch_bwd(const AttnParams& p, cudaStream_t stream) {
  launch_bwd_tile<typename BwdConfig<D>::Tile, Elem>(p, stream);
}

}  // namespace flashattn::sm90

// Each instantiation is compiled once (for sm_90a), in its own file under cuda/generated/.
#include "generated/sm90_bwd_instances.h"
