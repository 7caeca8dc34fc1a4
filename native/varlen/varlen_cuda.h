// varlen_cuda.h — a varlen call on CUDA: each packed sequence runs as a batch of one on the
// forward / backward kernels the plan picks for its own lengths, in stream order on the call's
// stream (CUDA build only).
//
// Sequence b is rows cu_q[b] .. cu_q[b + 1] - 1 of q, out, dout, dq and cu_k[b] .. of k, v, dk, dv:
// its params point at those rows through the packed tensors' own row and head strides, so no
// operand is copied. lse [h, total_q] is the exception: the kernels write (and the backward reads)
// a contiguous (h, s_q) block, so each sequence's lse goes through a scratch block and a 2-D copy.
// A sequence with no keys gets zeros and lse -inf (forward) or dq = 0 (backward) without a kernel;
// one with no queries gets dk = dv = 0. The offsets are host values (the request layer checked
// them): they decide the launches, so they are read on the host, never on the device.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "api.h"
#include "params.h"

namespace flashattn::native {

struct VarlenSequence {
  AttnParams params;  // b = 1, this sequence's lengths, pointers at its first rows
  plan::Plan plan;    // none when a side is empty (no kernel runs)
  int q0 = 0, k0 = 0; // first rows
};

struct VarlenLaunch {
  // One launch over every sequence (the sm90 forward takes the offsets itself): `whole` is the
  // packed request with both offsets' device and host pointers set, `whole_plan` its plan;
  // `sequences` is then empty.
  bool one_launch = false;
  AttnParams whole;
  plan::Plan whole_plan;
  std::vector<VarlenSequence> sequences;  // longest (most work) first
  int lanes = 1;                          // streams the sequences spread over (the call's and side streams)
  size_t lane_scratch = 0;                // per lane: one sequence's contiguous lse, h * longest s_q floats
  size_t scratch_bytes = 0;               // lanes * lane_scratch
};

// Plans `packed` (the request's params: totals in s_q / s_k, packed strides in row / head,
// pointers bound to device memory, cu_seqlens_q / _k the offsets' device copies) on `device`:
// one launch where the kernel takes the offsets (the forward, when the plan for the longest
// sequence is the sm90 forward), otherwise every sequence on its own. Throws E_UNSUPPORTED naming the first
// sequence no kernel serves, before anything is enqueued.
VarlenLaunch plan_varlen(bool backward, const AttnParams& packed, const std::vector<int32_t>& cu_q,
                         const std::vector<int32_t>& cu_k, int device, const std::string& device_label);

// Enqueues every sequence of `launch`: forked from `stream` onto launch.lanes streams (the call's and
// cuda::side_streams), round robin in the launch's order, so that short sequences fill what long
// ones leave idle, then joined back into `stream`; later work on `stream` sees all of it. `scratch`
// holds launch.scratch_bytes bytes of device memory on `device`, stream-ordered on `stream`.
void enqueue_varlen(int device, bool backward, const AttnParams& packed, const VarlenLaunch& launch, float* scratch,
                    cuda::Stream stream);

}  // namespace flashattn::native
