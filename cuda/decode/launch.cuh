// launch.cuh — launches the append, split and combine kernels for one head dim; the decode_hd*.cu
// files instantiate it, decode.cu picks the head dim.
#pragma once

#include <string>

#include <cuda_runtime.h>

#include "common/check.h"
#include "sm80/mma.h"
#include "decode/append_kernel.cuh"
#include "decode/combine_kernel.cuh"
#include "decode/decode_params.h"
#include "decode/decode_tile.h"
#include "decode/split_kernel.cuh"

namespace flashattn::decode {

template <typename E, int D, int WM>
void launch_split(const DecodeParams& p, const DecodeLaunch& L, cudaStream_t stream) {
  using Tile = DecodeTile<D, WM>;
  auto kernel = split_kernel<E, D, WM>;
  const int smem = static_cast<int>(Tile::kSmemBytes);
  // A100/H100/H200 allow 163–227 KB per block; sm_86/89 GPUs allow 99 KB, less than the d128 and
  // d256 tiles ask for (a shallower-pipeline instantiation would be needed there).
  int dev = 0, optin = 0;
  FA_CUDA_CHECK(cudaGetDevice(&dev));
  FA_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
  if (smem > optin)
    throw cuda::Error("decode: the d" + std::to_string(D) + " decode tile needs " + std::to_string(smem / 1024) +
                          " KB of shared memory per block and this GPU allows " + std::to_string(optin / 1024) +
                          " KB; decode at this head dim is not supported on it yet",
                      -1, false);
  FA_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  const dim3 grid((L.m_total + Tile::kBlockM - 1) / Tile::kBlockM, L.num_splits, p.b * p.h_k);
  kernel<<<grid, Tile::kThreads, smem, stream>>>(p, L);
  FA_CUDA_CHECK_LAUNCH("decode split kernel d" + std::to_string(D) + " m" + std::to_string(Tile::kBlockM));
}

// The head-dim-specific part of decode_forward: append, attend (WM chosen by the packed rows),
// combine when split.
template <typename E, int D>
void run_decode(const DecodeParams& p, const DecodeLaunch& L, cudaStream_t stream) {
  if (p.k_new != nullptr && p.s_new > 0) {
    const long long total = static_cast<long long>(p.b) * p.s_new * p.h_k * (D / 8);
    const unsigned blocks = static_cast<unsigned>((total + 255) / 256);
    append_kernel<D><<<blocks, 256, 0, stream>>>(p);
    FA_CUDA_CHECK_LAUNCH("decode append kernel d" + std::to_string(D));
  }
  if (L.m_total <= 16) {
    launch_split<E, D, 1>(p, L, stream);
  } else {
    launch_split<E, D, 4>(p, L, stream);
  }
  if (L.num_splits > 1) {
    const long long rows = static_cast<long long>(p.b) * p.h_k * L.m_total;
    combine_kernel<E, D><<<static_cast<unsigned>((rows + 3) / 4), 128, 0, stream>>>(p, L);
    FA_CUDA_CHECK_LAUNCH("decode combine kernel d" + std::to_string(D));
  }
}

// Defined in decode_hd{64,128,256}.cu, one translation unit per head dim (they build in parallel).
void run_decode_hd64(const DecodeParams& p, const DecodeLaunch& L, cudaStream_t stream);
void run_decode_hd128(const DecodeParams& p, const DecodeLaunch& L, cudaStream_t stream);
void run_decode_hd256(const DecodeParams& p, const DecodeLaunch& L, cudaStream_t stream);

}  // namespace flashattn::decode
