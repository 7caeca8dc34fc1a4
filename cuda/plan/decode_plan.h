// decode_plan.h — the decode (KV-cache) path's host-side rules and its plan, in plain C++: what
// decode_forward checks, how many splits of the context it runs and the workspace they take
// (cuda/decode/decode.cu enqueues with these), and whether a device and build can run it at all
// (probe()/inspect, planDecode). No CUDA headers: the CPU-only build compiles it too.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "decode/decode_params.h"
#include "plan/plan.h"

namespace flashattn::decode {

constexpr int kMaxSplits = 256;

// Why `p` cannot run on the decode kernels, or nullptr when it can (sizes, dtype, pointers,
// alignment, strides). decode_forward throws Error with this text.
const char* decode_unsupported(const DecodeParams& p);
// The part of decode_unsupported that does not look at pointers or strides: what a shape alone
// rules out (dtype, head dim, sizes, window, num_splits).
const char* decode_shape_problem(const DecodeParams& p);

// Splits of the context for `p` on a device with `num_sms` SMs: p.num_splits when set, otherwise
// a wave-efficiency heuristic over (batch × KV heads × query tiles) CTAs and the key blocks of
// p.seqlen_k_hint (or the cache capacity). Always in [1, kMaxSplits].
int decode_num_splits(const DecodeParams& p, int num_sms);

// Device bytes decode_forward needs for `p` (0 when one split suffices and there is no rotary):
// partial O (float32) and partial LSE per split, then the rotated q.
size_t decode_workspace_bytes(const DecodeParams& p, int num_sms);
// The same for a given split count, and the partials' part alone (rounded to 256 bytes).
size_t workspace_for(const DecodeParams& p, int splits);
size_t split_bytes(const DecodeParams& p, int splits);
// Split partials' tiles (b * h_k * query tiles): one int32 arrival counter each, after the
// partial LSE, for the split kernel's fused combine.
int64_t split_tiles(const DecodeParams& p);

// The decode kernels' view of a plain forward: q attends every key of k/v (a full contiguous
// cache of s_k rows per batch row, nothing appended); masks, GQA, scale and strides as given.
DecodeParams decode_params_of_forward(const AttnParams& p);

// Query rows per (batch, head) up to which the plan sends a 16-bit forward to the decode kernels
// (split-KV, the query heads of a KV group in one tile) instead of the prefill kernels, whose
// 128-row query tiles would hold one useful row (docs/perf-notes.md, "Execution core: settling
// from the JS thread, the decode route, the GPU's clock").
constexpr int kDecodeMaxQueries = 16;

inline bool aligned16(const void* ptr) { return (reinterpret_cast<uintptr_t>(ptr) & 15u) == 0; }
// Packed query rows per (batch row, KV head): the group's heads × the query tokens.
inline int packed_rows(const DecodeParams& p) { return p.s_q * p.group_size(); }
// Rows of the CTA's query tile: 16 (WM = 1) or 64 (WM = 4).
inline int tile_rows(const DecodeParams& p) { return packed_rows(p) <= 16 ? 16 : 64; }
// CTAs per SM the tiles are sized for (shared memory): 2 at d <= 128, 1 at d256.
inline int ctas_per_sm(const DecodeParams& p) { return p.d == 256 ? 1 : 2; }

}  // namespace flashattn::decode

namespace flashattn::plan {

// Whether a forward request goes to the decode kernels, and with what splits and workspace (on
// `device`): a few query rows, float16/bfloat16 in and out, head dim 64/128/256, not varlen,
// at least one key, and decode_shape_problem() satisfied. Capability queries (b == 0) never do.
bool forward_goes_to_decode(const AttnParams& p, const DeviceFacts& device, int* splits, size_t* workspace_bytes);

struct DecodePlan {
  bool ok = false;
  std::string reason;          // when !ok: why not
  int splits = 1;              // of the context, as decode_forward will run them
  size_t workspace_bytes = 0;  // what the API takes from the pool per call
  int tile_rows = 0;           // 16 or 64 packed query rows per CTA
  size_t smem_bytes = 0;       // shared memory per CTA of that tile
};

// Whether `device` with a build of `compiled` archs runs the decode kernels for `shape` (sizes,
// dtype, window; pointers not needed; its capacity is max_seqlen, or seqlen_k_hint when set), and
// with how many splits. The kernels' own checks (decode_unsupported) still run at launch.
DecodePlan plan_decode(const decode::DecodeParams& shape, const DeviceFacts& device, const std::vector<ArchTarget>& compiled);

}  // namespace flashattn::plan
