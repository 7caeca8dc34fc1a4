// fwd_launch.cuh — tile shapes per head dim and the launcher of the sm80 forward.
// Included by the per-instantiation files fwd_hdim{D}_{fp16,bf16}.cu and by cuda/dev/fwd_check.cu.
#pragma once

#include <atomic>
#include <cstdint>
#include <type_traits>

#include <cuda_runtime.h>

#include "params.h"
#include "common/check.h"
#include "common/launch_attr.h"
#include "sm80/fwd_kernel.cuh"

namespace flashattn::sm80 {

// Three tiles per compiled head dim, all measured on an H200 (docs/perf-notes.md, "Forward (sm80)"):
//   Full     the fastest shape without a mask
//   Masked   the fastest shape with a causal mask or window
//   Compact  at most 99 KB of shared memory, so every sm_8x GPU (sm_86/89 offer 99 KB) runs it
// launch_fwd takes, among those whose shared memory the device offers, the first of
// (Full, Masked, Compact) — or (Masked, Full, Compact) for a masked request.
// FwdTile<D, BlockM, BlockN, warps, Q in registers, stages, min blocks per SM, schedule>.
template <int D> struct FwdConfig;
template <> struct FwdConfig<32> {
  using Full = FwdTile<32, 128, 64, 8, true, 3, 1, kMbar>;
  using Masked = Full;
  using Compact = Full;
};
template <> struct FwdConfig<64> {
  using Full = FwdTile<64, 256, 64, 8, true, 3, 1, kMbar>;
  using Masked = Full;
  using Compact = Full;
};
template <> struct FwdConfig<96> {
  using Full = FwdTile<96, 256, 64, 8, false, 3, 1, kMbar>;
  using Masked = Full;
  using Compact = FwdTile<96, 128, 64, 8, true, 2, 1, kPlain>;
};
template <> struct FwdConfig<128> {
  using Full = FwdTile<128, 256, 64, 8, false, 3, 1, kMbar>;
  using Masked = FwdTile<128, 128, 128, 8, true, 3, 1, kMbar>;
  using Compact = FwdTile<128, 128, 64, 8, true, 2, 1, kPlain>;
};
template <> struct FwdConfig<192> {
  using Full = FwdTile<192, 128, 64, 8, true, 3, 1, kMbar>;
  using Masked = Full;
  using Compact = FwdTile<192, 128, 32, 8, false, 2, 1, kPlain>;
};
template <> struct FwdConfig<256> {
  using Full = FwdTile<256, 128, 32, 8, false, 3, 1, kMbar>;
  using Masked = Full;
  using Compact = FwdTile<256, 64, 32, 4, false, 2, 2, kPlain>;
};
constexpr int kCompactSmemLimit = 99 * 1024;

// Which tile runs: kAuto lets launch_fwd choose; the others force one (the dev harness checks
// every tile on every case this way).
enum class FwdTier { kAuto, kFull, kMasked, kCompact };

// Launches fwd_kernel<E, Tile> over (query blocks, h, b) on `stream`.
template <typename E, typename Tile>
void launch_fwd_tile(const AttnParams& p, cudaStream_t stream) {
  if (p.b > 65535 || p.h > 65535) cuda::fail("sm80 forward: batch and heads must each be at most 65535");
  const FwdArgs args = make_fwd_args(p);
  auto kernel = fwd_kernel<E, Tile>;
  const int smem = Tile::kSmemBytes;
  static std::atomic<uint64_t> smem_set{0};  // per instantiation: cuda/common/launch_attr.h
  int device = 0;
  cuda::check(cudaGetDevice(&device), "cudaGetDevice");
  cuda::set_max_dynamic_smem_once(reinterpret_cast<const void*>(kernel), device, smem, smem_set,
                                  "cudaFuncSetAttribute(sm80 forward shared memory)");
  const dim3 grid((p.s_q + Tile::kBlockM - 1) / Tile::kBlockM, p.h, p.b);
  kernel<<<grid, Tile::kThreads, smem, stream>>>(args);
  cuda::check(cudaGetLastError(), "sm80 forward kernel launch");
}

template <typename E, int D>
void launch_fwd(const AttnParams& p, cudaStream_t stream, FwdTier tier) {
  using Cfg = FwdConfig<D>;
  static_assert(Cfg::Compact::kSmemBytes <= kCompactSmemLimit, "the compact tile must fit every sm_8x GPU");
  int device = 0, optin = 0;
  cuda::check(cudaGetDevice(&device), "cudaGetDevice");
  cuda::check(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device),
                  "cudaDeviceGetAttribute(shared memory per block opt-in)");
  const bool masked = p.window_left >= 0 || p.window_right >= 0;
  const bool full_fits = optin >= Cfg::Full::kSmemBytes;
  const bool masked_fits = optin >= Cfg::Masked::kSmemBytes;
  switch (tier) {
    case FwdTier::kAuto:
      if (masked && masked_fits) return launch_fwd_tile<E, typename Cfg::Masked>(p, stream);
      if (full_fits) return launch_fwd_tile<E, typename Cfg::Full>(p, stream);
      if (masked_fits) return launch_fwd_tile<E, typename Cfg::Masked>(p, stream);
      return launch_fwd_tile<E, typename Cfg::Compact>(p, stream);
    case FwdTier::kFull: return launch_fwd_tile<E, typename Cfg::Full>(p, stream);
    case FwdTier::kMasked: return launch_fwd_tile<E, typename Cfg::Masked>(p, stream);
    case FwdTier::kCompact: return launch_fwd_tile<E, typename Cfg::Compact>(p, stream);
  }
  cuda::fail("sm80 forward: unknown tile tier");
}

// run_fwd with a forced tier (launch.h's run_fwd is run_fwd_tier(..., FwdTier::kAuto, ...)).
void run_fwd_tier(const AttnParams& p, int kernel_hd, FwdTier tier, cudaStream_t stream);


}  // namespace flashattn::sm80

// Each instantiation is compiled once, in its own file under cuda/generated/.
#include "generated/sm80_fwd_instances.h"
