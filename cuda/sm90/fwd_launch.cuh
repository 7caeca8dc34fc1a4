// fwd_launch.cuh — tile shapes per head dim and the templated launcher of the sm90 forward.
// Included by the per-instantiation files fwd_hdim{D}_{bf16,fp16}.cu (and the dev harness).
#pragma once

#include <atomic>
#include <cstdint>

#include <cuda_runtime.h>

#include "params.h"
#include "common/check.h"
#include "common/launch_attr.h"
#include "sm90/fwd_kernel.cuh"
#include "sm90/fwd_params.h"

namespace flashattn::sm90 {

// Two tiles per compiled head dim, measured on an H200 (docs/perf-notes.md, "Forward (sm90)"):
//   Full    unmasked requests: a persistent grid (one block per SM walks the work tiles), so a
//           tile's epilogue overlaps the next tile's copies; all tiles are equally long, so the
//           blocks stay in step and the tiles in flight keep sharing one head's K/V in L2.
//   Masked  causal or windowed requests: one block per work tile. Tiles differ in length, and the
//           hardware's in-order block dispatch balances them (a static persistent walk ran d128
//           causal at 16k 30% slower: blocks drift apart, onto different heads' K/V).
// FwdTile<D, kBlockN, kStages, pingpong>; 128 query rows per tile.
template <int D>
struct FwdConfig;
template <>
struct FwdConfig<64> {
  using Full = FwdTile<64, 192, 2>;
  using Masked = FwdTile<64, 128, 3>;
};
template <>
struct FwdConfig<128> {
  using Full = FwdTile<128, 176, 2>;
  using Masked = FwdTile<128, 128, 2>;
};
template <>
struct FwdConfig<256> {
  using Full = FwdTile<256, 80, 2>;
  using Masked = FwdTile<256, 80, 2>;
};

// e4m3 operands: 128-key blocks (one Vᵀ panel per stage, fwd_params.h), same two-tile rule.
template <int D>
struct FwdFp8Config;
template <>
struct FwdFp8Config<64> {
  using Full = FwdTile<64, 128, 3, true, 1>;
  using Masked = FwdTile<64, 128, 3, true, 1>;
};
template <>
struct FwdFp8Config<128> {
  using Full = FwdTile<128, 128, 2, true, 1>;
  using Masked = FwdTile<128, 128, 2, true, 1>;
};
template <>
struct FwdFp8Config<256> {
  using Full = FwdTile<256, 128, 2, true, 1>;
  using Masked = FwdTile<256, 128, 2, true, 1>;
};

// Builds the kernel's parameters (tensor maps included) for tile shape `block_n` (fwd_host.cu).
// e4m3 requests pass the Vᵀ workspace (fp8_vt.h) and the compiled head dim D.
FwdParams make_fwd_params(const AttnParams& p, int block_n, const void* vt = nullptr, int head_dim = 0);

// Blocks to launch on `device` for `tiles` work tiles: one each, or (persistent) one per SM at most.
int fwd_grid(int device, int tiles, bool persistent);

template <typename Tile, typename Elem, typename Out = Elem>
void launch_fwd_tile(const AttnParams& p, cudaStream_t stream, bool persistent, const void* vt = nullptr) {
  const FwdParams params = make_fwd_params(p, Tile::kBlockN, vt, Tile::kHeadDim);
  if (params.tiles == 0) return;  // varlen: no sequence has queries
  auto kernel = fwd_kernel<Tile, Elem, Out>;
  int device = 0;
  cuda::check(cudaGetDevice(&device), "cudaGetDevice");
  static std::atomic<uint64_t> smem_set{0};
  cuda::set_max_dynamic_smem_once(reinterpret_cast<const void*>(kernel), device, Tile::kSmemBytes, smem_set,
                                  "cudaFuncSetAttribute(sm90 forward shared memory)");
  kernel<<<fwd_grid(device, params.tiles, persistent), Tile::kThreads, Tile::kSmemBytes, stream>>>(params);
  cuda::check(cudaGetLastError(), "sm90 forward kernel launch");
}

template <typename Config, typename Elem, typename Out>
void launch_fwd_config(const AttnParams& p, cudaStream_t stream, const void* vt) {
  const bool masked = p.window_left >= 0 || p.window_right >= 0;
  if (masked) {
    launch_fwd_tile<typename Config::Masked, Elem, Out>(p, stream, false, vt);
  } else {
    launch_fwd_tile<typename Config::Full, Elem, Out>(p, stream, true, vt);
  }
}

template <typename Elem, int D>
void launch_fwd(const AttnParams& p, cudaStream_t stream) {
  launch_fwd_config<FwdConfig<D>, Elem, Elem>(p, stream, nullptr);
}

// e4m3 q, k, v with Vᵀ already written to `vt` (fp8_vt.h); Out is the output's type.
template <typename Out, int D>
void launch_fwd_fp8(const AttnParams& p, const void* vt, cudaStream_t stream) {
  launch_fwd_config<FwdFp8Config<D>, E4m3, Out>(p, stream, vt);
}


}  // namespace flashattn::sm90

// Each instantiation is compiled once (for sm_90a), in its own file under cuda/generated/.
#include "generated/sm90_fwd_instances.h"
