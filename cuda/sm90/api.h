// api.h — what the sm90 (wgmma + tensor copy engine) kernel family offers the dispatch code.
// Plain C++: no CUDA device code, no napi.h. The sources behind it (cuda/sm90/*.cu) are compiled
// for sm_90a only.
#pragma once

#include <string>

#include <cuda_runtime.h>

#include "params.h"

namespace flashattn::sm90 {

// Head dims with a compiled forward; any d % 8 == 0 <= 256 runs on the next larger one.
constexpr int kFwdHeadDims[] = {64, 128, 256};

// The compiled head dim that runs head dim d, or 0 when none does.
inline int fwd_kernel_head_dim(int d) {
  if (d <= 0 || d % 8 != 0) return 0;
  for (int k : kFwdHeadDims) {
    if (d <= k) return k;
  }
  return 0;
}

// Whether sm90_forward runs this request (dtype, head dim, sizes, strides and pointer alignment
// the copy engine accepts). When not, *why (if given) says what is missing. Does not look at the
// device: the caller checks for capability 9.0 and sm_90a code in the build.
bool sm90_forward_covers(const AttnParams& p, std::string* why);

// Launches the forward on `stream` (all params pointers are device pointers on the current
// device). Throws flashattn::cuda::Error (cuda/api.h) on failure, including for a request
// sm90_forward_covers rejects.
void sm90_forward(const AttnParams& p, cudaStream_t stream);

}  // namespace flashattn::sm90
