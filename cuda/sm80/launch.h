// launch.h — what the sm80 (mma.sync) kernel family offers the dispatch code in cuda/*.cu.
#pragma once

#include <cstddef>
#include <cuda_runtime.h>

#include "params.h"
#include "plan/sm80_table.h"

namespace flashattn::sm80 {

// The head-dim rule lives in the plan (plan/sm80_table.h); these names serve the kernel harnesses.
using plan::sm80::kHeadDims;
using plan::sm80::kernel_head_dim;

// ---- forward (cuda/sm80/fwd_*.cu) ----
// Dynamic shared memory one forward block needs at this kernel head dim.
size_t fwd_smem_bytes(int kernel_hd);
// Launches the forward on `stream` (all params pointers are device pointers). Throws cuda::Error.
void run_fwd(const AttnParams& p, int kernel_hd, cudaStream_t stream);
// Launches the forward with the tile the plan chose (plan::Plan::tile).
void run_fwd_planned(const AttnParams& p, int kernel_hd, plan::Sm80Tile tile, cudaStream_t stream);

// ---- backward (cuda/sm80/bwd_*.cu) ----
size_t bwd_smem_bytes(int kernel_hd);
// Launches the backward; allocates its float32 workspace stream-ordered (cudaMallocAsync) and
// frees it before returning, so the bench can read the peak from the device's memory pool.
void run_bwd(const AttnParams& p, int kernel_hd, cudaStream_t stream);

}  // namespace flashattn::sm80
