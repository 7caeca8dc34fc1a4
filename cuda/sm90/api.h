// api.h — what the sm90 (wgmma + tensor copy engine) kernel family offers the dispatch code.
// Plain C++: no CUDA device code, no napi.h. The sources behind it (cuda/sm90/*.cu) are compiled
// for sm_90a only.
#pragma once

#include <cstddef>
#include <string>

#include <cuda_runtime.h>

#include "params.h"

namespace flashattn::sm90 {

// Head dims with a compiled forward; any d % 8 == 0 <= 256 runs on the next larger one.
constexpr int kFwdHeadDims[] = {64, 128, 256};
inline int fwd_kernel_head_dim(int d) { return next_compiled_head_dim(d, kFwdHeadDims); }

// Whether sm90_forward runs this request (dtype, head dim, sizes, strides and pointer alignment
// the copy engine accepts). When not, *why (if given) says what is missing. Does not look at the
// device: the caller checks for capability 9.0 and sm_90a code in the build.
bool sm90_forward_covers(const AttnParams& p, std::string* why);

// Head dims with a compiled backward (dK and dV of 64 keys live in registers: D <= 128); any
// d % 8 == 0 <= 128 runs on the next larger one.
constexpr int kBwdHeadDims[] = {64, 128};
inline int bwd_kernel_head_dim(int d) { return next_compiled_head_dim(d, kBwdHeadDims); }

// Whether sm90_backward runs this request (dtype, head dim, not deterministic, strides and
// alignment the copy engine takes); *why says what is missing when not. Like
// sm90_forward_covers, does not look at the device.
bool sm90_backward_covers(const AttnParams& p, std::string* why);

// The device workspace sm90_backward allocates (stream-ordered) for this request.
size_t sm90_backward_workspace_bytes(const AttnParams& p);

// Launches the backward (dq, dk, dv from q, k, v, out, lse, dout) on `stream`. Throws
// flashattn::cuda::Error on failure, including for a request sm90_backward_covers rejects.
void sm90_backward(const AttnParams& p, cudaStream_t stream);

// Launches the forward on `stream` (all params pointers are device pointers on the current
// device). Throws flashattn::cuda::Error (cuda/api.h) on failure, including for a request
// sm90_forward_covers rejects.
void sm90_forward(const AttnParams& p, cudaStream_t stream);

}  // namespace flashattn::sm90
