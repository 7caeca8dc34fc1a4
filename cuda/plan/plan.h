// plan.h — the one planning function: (request, device, build) -> which kernel runs it, with
// which tile and workspace, or none and why.
//
// Dispatch (cuda/forward.cu, backward.cu), probe()/inspect, the bench and the TypeScript-side
// select() all ask make_plan() (through plan_cached() on a real device), so "is this supported?"
// and "what would run?" have one answer. Plain C++: it reads the kernels' facts from tables
// (sm80_table.h) that the CUDA sources pin with static_asserts, so the CPU-only build and the
// tests can plan for hypothetical devices and builds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "params.h"
#include "plan/archs.h"

namespace flashattn::plan {

// Which kernel family runs a request. kNone means "not supported here"; Plan::reason says why.
enum class KernelPath : int32_t { kNone = 0, kSm80 = 1, kSm90 = 2 };

inline const char* kernel_path_name(KernelPath p) {
  switch (p) {
    case KernelPath::kNone: return "none";
    case KernelPath::kSm80: return "sm80";
    case KernelPath::kSm90: return "sm90";
  }
  return "unknown";
}

enum class Op : int32_t { kForward = 0, kBackward = 1 };

// Forward tile tiers of the sm80 kernels (sm80/fwd_launch.cuh): Full is the fastest unmasked
// shape, Masked the fastest masked one, Compact fits 99 KB of shared memory.
enum class Sm80Tile : int32_t { kNone = 0, kFull = 1, kMasked = 2, kCompact = 3 };

inline const char* sm80_tile_name(Sm80Tile t) {
  switch (t) {
    case Sm80Tile::kNone: return "none";
    case Sm80Tile::kFull: return "full";
    case Sm80Tile::kMasked: return "masked";
    case Sm80Tile::kCompact: return "compact";
  }
  return "unknown";
}

// What the plan needs to know about a device: from the CUDA runtime (plan_cached) or made up by
// a test (planFor).
struct DeviceFacts {
  int index = 0;
  int major = 0, minor = 0;
  size_t smem_optin = 0;  // cudaDevAttrMaxSharedMemoryPerBlockOptin
  int sm_count = 0;
};

// The opt-in shared memory per block of a known capability (the CUDA programming guide's table),
// or 0 for one it does not know. Used for hypothetical devices.
size_t known_smem_optin(int major, int minor);

// What a path must be, when the caller forces one (FLASHATTN_KERNEL_PATH=sm80|sm90).
enum class Force : int32_t { kAuto = 0, kSm80 = 1, kSm90 = 2 };

// Parses FLASHATTN_KERNEL_PATH's value: "" -> kAuto; "sm80", "sm90"; anything else false.
bool parse_force(const std::string& value, Force* out);

struct Plan {
  KernelPath path = KernelPath::kNone;
  int kernel_head_dim = 0;         // the compiled head dim that runs it (>= d)
  Sm80Tile tile = Sm80Tile::kNone; // forward tile (sm80 path)
  bool bwd_big = false;            // backward: the larger sm80 config (bwd_config.h CfgNNBig)
  // Forward only: the request goes to the split-KV decode kernels (cuda/decode/) instead of the
  // path's prefill kernel (a few query rows: plan/decode_plan.h, forward_goes_to_decode).
  bool decode = false;
  int splits = 1;                  // key-dimension splits (1: no split-KV)
  size_t workspace_bytes = 0;      // device workspace the kernels allocate (stream-ordered)
  std::string reason;              // when path == kNone: why not

  bool ok() const { return path != KernelPath::kNone; }
};

// A capability query ("can this device run forward at head dim 128 in bf16?") has b == 0 and
// null pointers: request-size checks are skipped and no workspace is computed.
Plan make_plan(Op op, const AttnParams& params, const DeviceFacts& device, const std::vector<ArchTarget>& compiled,
               Force force);

// The kernel paths a device can run at all, best first ("sm90", "sm80"): what probe() reports.
// A path is listed when some capability query (fwd or bwd, any dtype, any head dim) plans it.
std::vector<std::string> device_paths(const DeviceFacts& device, const std::vector<ArchTarget>& compiled,
                                      std::string* why_none);

// The cache key of a request: everything make_plan reads except the pointers (whose alignment
// is checked on every call by plan_cached).
struct PlanKey {
  int32_t op, device, dtype, b, s_q, s_k, h, h_k, d, window_left, window_right;
  uint8_t deterministic, scale_ok, strides_ok, pad;
  bool operator==(const PlanKey& o) const;
};
PlanKey plan_key(Op op, const AttnParams& p, int device);

// Implemented by the sm90 kernel work: whether the Hopper (wgmma + TMA) forward covers this
// request (dtype, head dim, masks, strides), and if not, why. Until those kernels land, a stub in
// plan/sm90_covers.cpp answers false.
bool sm90_forward_covers(const AttnParams& params, std::string* why);
// The same for the Hopper backward, and the device workspace it allocates for a request.
bool sm90_backward_covers(const AttnParams& params, std::string* why);
size_t sm90_backward_workspace_bytes(const AttnParams& params);

}  // namespace flashattn::plan
