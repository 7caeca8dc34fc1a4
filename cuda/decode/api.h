// decode/api.h — entry points of the split-KV decode path (KV-cache attention), plain C++.
//
// Every function throws flashattn::cuda::Error (cuda/api.h) on bad input or a CUDA failure; none
// exits or aborts. decode_forward enqueues on `stream` and returns without waiting.
//
// Planning: call decode_num_splits() (or set params.num_splits yourself), then
// decode_workspace_bytes() with the same SM count, allocate that much device memory, set
// params.workspace_bytes, and call decode_forward(). With num_splits == 0 decode_forward picks
// the splits from the current device's SM count, which must be the SM count used for the workspace.
#pragma once

#include <cstddef>
#include <string>

#include <cuda_runtime.h>

#include "../api.h"  // flashattn::cuda::Error (a plain "api.h" would name this file)
#include "decode/decode_params.h"
#include "plan/decode_plan.h"

namespace flashattn::decode {

// decode_unsupported, decode_num_splits, decode_workspace_bytes, kMaxSplits: plan/decode_plan.h.

// Appends k_new/v_new (when present), attends, and combines the splits. All pointers are device
// pointers on the current device; `workspace` holds params.workspace_bytes bytes (null when 0).
void decode_forward(const DecodeParams& p, void* workspace, cudaStream_t stream);

// decode_forward for a workspace that only decode_forward_reusing calls for this shape use, one
// stream at a time, zeroed once before the first (a server's per-stream workspace; the bench's):
// with several splits the split kernel's arrival counters are then already zero (every call leaves
// them so), and the per-call cudaMemsetAsync that zeroes them is skipped.
void decode_forward_reusing(const DecodeParams& p, void* workspace, cudaStream_t stream);

// decode_forward on CUDA device `device`, made current on the calling thread first.
void decode_forward_on(int device, const DecodeParams& p, void* workspace, cudaStream_t stream);

// What ran, e.g. "decode d128 bf16 m16 splits 32" (for benches and inspect).
std::string decode_kernel_name(const DecodeParams& p, int num_sms);

}  // namespace flashattn::decode
