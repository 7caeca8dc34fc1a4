// launch.h — what the sm80 (mma.sync) kernel family offers the dispatch code in cuda/*.cu.
#pragma once

#include <cstddef>
#include <cuda_runtime.h>

#include "params.h"

namespace flashattn::sm80 {

// Head dims with a compiled kernel; any d % 8 == 0 <= 256 runs on the next larger one.
constexpr int kHeadDims[] = {32, 64, 96, 128, 192, 256};

// The compiled head dim that runs head dim d, or 0 when none does.
inline int kernel_head_dim(int d) {
  if (d <= 0 || d % 8 != 0) return 0;
  for (int k : kHeadDims) {
    if (d <= k) return k;
  }
  return 0;
}

// ---- forward (cuda/sm80/fwd_*.cu) ----
// Dynamic shared memory one forward block needs at this kernel head dim.
size_t fwd_smem_bytes(int kernel_hd);
// Launches the forward on `stream` (all params pointers are device pointers). Throws cuda::Error.
void run_fwd(const AttnParams& p, int kernel_hd, cudaStream_t stream);

// ---- backward (cuda/sm80/bwd_*.cu) ----
size_t bwd_smem_bytes(int kernel_hd);
// Launches the backward; allocates its float32 workspace stream-ordered (cudaMallocAsync) and
// frees it before returning, so the bench can read the peak from the device's memory pool.
void run_bwd(const AttnParams& p, int kernel_hd, cudaStream_t stream);

}  // namespace flashattn::sm80
