// launch.cuh — launches the append, split and combine kernels for one head dim; the decode_hd*.cu
// files instantiate it, decode.cu picks the head dim.
#pragma once

#include <atomic>
#include <string>

#include <cuda_runtime.h>

#include "common/check.h"
#include "common/launch_attr.h"
#include "decode/api.h"
#include "sm80/mma.h"
#include "decode/append_kernel.cuh"
#include "decode/combine_kernel.cuh"
#include "decode/decode_params.h"
#include "decode/decode_tile.h"
#include "decode/rotary.cuh"
#include "decode/split_kernel.cuh"

namespace flashattn::decode {

// The current device's facts (cuda/api.h device_facts: read once per device).
inline plan::DeviceFacts current_device_facts() {
  int device = 0;
  FA_CUDA_CHECK(cudaGetDevice(&device));
  return cuda::device_facts(device);
}

template <typename E, int D, int WM, bool Deep = false>
void launch_split(const DecodeParams& p, const DecodeLaunch& L, const plan::DeviceFacts& dev, cudaStream_t stream) {
  using Tile = DecodeTile<D, WM, Deep>;
  auto kernel = split_kernel<E, D, WM, Deep>;
  const int smem = static_cast<int>(Tile::kSmemBytes);
  // A100/H100/H200 allow 163–227 KB per block; sm_86/89 GPUs allow 99 KB, less than the d128 and
  // d256 tiles ask for (a shallower-pipeline instantiation would be needed there).
  if (static_cast<size_t>(smem) > dev.smem_optin)
    throw cuda::Error("decode: the d" + std::to_string(D) + " decode tile needs " + std::to_string(smem / 1024) +
                          " KB of shared memory per block and this GPU allows " + std::to_string(dev.smem_optin / 1024) +
                          " KB; decode at this head dim is not supported on it yet",
                      -1, false);
  static std::atomic<uint64_t> smem_set{0};  // per instantiation: cuda/common/launch_attr.h
  cuda::set_max_dynamic_smem_once(reinterpret_cast<const void*>(kernel), dev.index, smem, smem_set,
                                  "cudaFuncSetAttribute(decode split kernel shared memory)");
  const dim3 grid((L.m_total + Tile::kBlockM - 1) / Tile::kBlockM, L.num_splits, p.b * p.h_k);
  kernel<<<grid, Tile::kThreads, smem, stream>>>(p, L);
  // The name is built once per instantiation: a failed launch is rare, every launch checks.
  static const std::string name = "decode split kernel d" + std::to_string(D) + " m" + std::to_string(Tile::kBlockM) +
                                  (Deep ? " deep" : "");
  FA_CUDA_CHECK_LAUNCH(name);
}

// Whether the 16-row split kernel runs the deep-pipeline tile (decode_tile.h): allowed
// (L.deep_ok), the whole grid within one CTA per SM, and its shared memory within the device's.
template <int D>
bool uses_deep_tile(const DecodeParams& p, const DecodeLaunch& L, const plan::DeviceFacts& dev) {
  return L.deep_ok && split_tiles(p) * L.num_splits <= dev.sm_count && DecodeTile<D, 1, true>::kSmemBytes <= dev.smem_optin;
}

// The 16-row tile: deep where uses_deep_tile says so (built for the bar head dim, 128, only).
template <typename E, int D>
void launch_split16(const DecodeParams& p, const DecodeLaunch& L, const plan::DeviceFacts& dev, cudaStream_t stream) {
  if constexpr (D == 128) {
    if (uses_deep_tile<D>(p, L, dev)) return launch_split<E, D, 1, true>(p, L, dev, stream);
  }
  launch_split<E, D, 1>(p, L, dev, stream);
}

// The head-dim-specific part of decode_forward: append (rotating k_new), rotate q into the
// workspace, attend (WM chosen by the packed rows), combine when split.
template <typename E, int D>
void run_decode(const DecodeParams& given, const DecodeLaunch& L, cudaStream_t stream) {
  DecodeParams p = given;
  if (p.k_new != nullptr && p.s_new > 0) {
    const long long total = static_cast<long long>(p.b) * p.s_new * p.h_k * (D / 8);
    const unsigned blocks = static_cast<unsigned>((total + 255) / 256);
    append_kernel<D><<<blocks, 256, 0, stream>>>(p);
    FA_CUDA_CHECK_LAUNCH("decode append kernel d" + std::to_string(D));
  }
  if (L.q_rot != nullptr) {
    const long long total = static_cast<long long>(p.b) * p.s_q * p.h * (D / 8);
    rotary_q_kernel<D><<<static_cast<unsigned>((total + 255) / 256), 256, 0, stream>>>(p, L.q_rot);
    FA_CUDA_CHECK_LAUNCH("decode rotary q kernel d" + std::to_string(D));
    p.q = L.q_rot;  // the attention reads the rotated copy
    p.q_stride = contiguous_strides(p.s_q, p.h, D);
  }
  const plan::DeviceFacts dev = current_device_facts();
  if (L.m_total <= 16) {
    launch_split16<E, D>(p, L, dev, stream);
  } else {
    launch_split<E, D, 4>(p, L, dev, stream);
  }
  if (L.num_splits > 1 && L.counters == nullptr) {  // else the split kernel combined (fused)
    const long long rows = static_cast<long long>(p.b) * p.h_k * L.m_total;
    // sm_90+: a programmatic dependent launch, so its launch overlaps the split kernel's tail.
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3(static_cast<unsigned>((rows + 3) / 4));
    cfg.blockDim = dim3(128);
    cfg.stream = stream;
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[0].val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = attr;
    cfg.numAttrs = dev.major >= 9 ? 1 : 0;
    FA_CUDA_CHECK(cudaLaunchKernelEx(&cfg, combine_kernel<E, D>, p, L));
    FA_CUDA_CHECK_LAUNCH("decode combine kernel d" + std::to_string(D));
  }
}

// Defined in decode_hd{64,128,256}.cu, one translation unit per head dim (they build in parallel).
void run_decode_hd64(const DecodeParams& p, const DecodeLaunch& L, cudaStream_t stream);
void run_decode_hd128(const DecodeParams& p, const DecodeLaunch& L, cudaStream_t stream);
void run_decode_hd256(const DecodeParams& p, const DecodeLaunch& L, cudaStream_t stream);

}  // namespace flashattn::decode
