// fp8_vt.cu — the Vᵀ pass of the e4m3 forward (fp8_vt.h). One block per (64 keys, 64 dims) of
// one (b, h_k): 8-byte loads along d into shared memory, 8-byte stores along the keys.
#include <cstdint>

#include "common/check.h"
#include "sm90/fp8_vt.h"

namespace flashattn::sm90 {
namespace {

constexpr int kTile = 64;
constexpr int kPitch = kTile + 8;  // bytes per key row in shared memory (8-byte aligned)

// grid (b · h_k, keys / 64, ceil(d / 64)), 256 threads.
__global__ void __launch_bounds__(256) transpose_v_kernel(const uint8_t* __restrict__ v,  // (b, s_k, h_k, d)
                                                          uint8_t* __restrict__ vt,       // (b, h_k, d, keys)
                                                          int s_k, int h_k, int d, int keys, int64_t v_batch, int64_t v_row,
                                                          int64_t v_head) {
  __shared__ __align__(8) uint8_t tile[kTile][kPitch];  // [key][dim]
  const int k0 = blockIdx.y * kTile, x0 = blockIdx.z * kTile;
  const int bh = blockIdx.x, b = bh / h_k, hk = bh % h_k;
  const uint8_t* v_bh = v + b * v_batch + hk * v_head;
  for (int i = threadIdx.x; i < kTile * kTile / 8; i += blockDim.x) {
    const int key = i / 8, x = 8 * (i % 8);
    uint2 val = make_uint2(0u, 0u);
    if (k0 + key < s_k && x0 + x < d) val = *reinterpret_cast<const uint2*>(v_bh + (k0 + key) * v_row + x0 + x);
    *reinterpret_cast<uint2*>(&tile[key][x]) = val;
  }
  __syncthreads();
  uint8_t* vt_bh = vt + static_cast<int64_t>(bh) * d * keys;
  for (int i = threadIdx.x; i < kTile * kTile / 8; i += blockDim.x) {
    const int x = i / 8, j0 = 8 * (i % 8);
    if (x0 + x >= d) continue;
    uint32_t w[2] = {0u, 0u};
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const int col = j0 + j;
      const int key = 32 * (col / 32) + fp8_key_of_column(col % 32);
      w[j / 4] |= static_cast<uint32_t>(tile[key][x]) << (8 * (j % 4));
    }
    *reinterpret_cast<uint2*>(vt_bh + static_cast<int64_t>(x0 + x) * keys + k0 + j0) = make_uint2(w[0], w[1]);
  }
}

}  // namespace

void fp8_transpose_v(const AttnParams& p, void* vt, cudaStream_t stream) {
  const int keys = fp8_vt_keys(p.s_k);
  if (p.b == 0 || p.s_k == 0) return;
  const dim3 grid(p.b * p.h_k, keys / kTile, (p.d + kTile - 1) / kTile);
  transpose_v_kernel<<<grid, 256, 0, stream>>>(static_cast<const uint8_t*>(p.v), static_cast<uint8_t*>(vt), p.s_k, p.h_k, p.d, keys,
                                               p.v_stride.batch, p.v_stride.row, p.v_stride.head);
  cuda::check(cudaGetLastError(), "fp8 Vᵀ pass launch");
}

}  // namespace flashattn::sm90
