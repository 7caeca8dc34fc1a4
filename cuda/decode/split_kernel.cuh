// split_kernel.cuh — one split of the context for one packed query tile (flash-decoding).
//
// Grid: (query tiles, splits, b * h_k). Each CTA streams its slice of key blocks through a
// cp.async ring of kStages stages (K and V tiles of 64 keys, 16-byte copies, XOR-swizzled), runs
// S = Q·Kᵀ and O += P·V on mma.sync m16n8k16 with an online softmax per warp, then merges the
// WN key-warps' (max, sum, O) through shared memory. With one split it writes out/lse directly;
// otherwise the normalized partial O and its LSE go to the workspace for combine_kernel.
#pragma once

#include <cstdint>

#include "sm80/copy.h"
#include "sm80/mma.h"
#include "common/reduce.h"
#include "decode/cache_index.cuh"
#include "decode/combine_kernel.cuh"
#include "decode/decode_params.h"
#include "decode/decode_tile.h"
#include "params.h"

namespace flashattn::decode {

using sm80::cp_async_16;
using sm80::cp_async_commit;
using sm80::cp_async_wait;
using sm80::ldmatrix_x4;
using sm80::ldmatrix_x4_trans;
using sm80::mma_16x8x16;
using sm80::pack2;
using sm80::smem_u32;
using sm80::swizzled_offset;

template <typename E, int D, int WM, bool Deep>
__global__ void __launch_bounds__(128, DecodeTile<D, WM, Deep>::kCtasPerSm)
    split_kernel(const DecodeParams p, const DecodeLaunch L) {
  using Tile = DecodeTile<D, WM, Deep>;
  using T = typename E::T;
  constexpr int kBlockM = Tile::kBlockM, kBlockN = Tile::kBlockN, kWarpN = Tile::kWarpN;
  constexpr int kStages = Tile::kStages, kChunks = Tile::kChunks;

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  // Let the combine kernel launch now; it waits on this grid's completion (combine_kernel.cuh).
  asm volatile("griddepcontrol.launch_dependents;");
#endif
  extern __shared__ __align__(128) unsigned char smem[];
  T* q_s = reinterpret_cast<T*>(smem);           // (kBlockM, D) swizzled
  T* kv_s = q_s + Tile::kQElems;                 // kStages x {K (64, D), V (64, D)} swizzled

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int wm = warp % WM, wn = warp / WM;
  const int m0 = blockIdx.x * kBlockM;
  const int split = blockIdx.y;
  const int bh = blockIdx.z;
  const int bi = bh / p.h_k, hk = bh % p.h_k;
  const CacheRow row = cache_row(p, bi);
  const int sk = row.seqlen_k;

  // ---- this lane's two rows (t/4 and t/4 + 8 of its warp's 16) and their key ranges ----------
  int lo[2], hi[2];
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const int r = m0 + wm * 16 + (lane >> 2) + half * 8;
    lo[half] = 0;
    hi[half] = 0;
    if (r < L.m_total) key_range(r / L.group, p.s_q, sk, p.window_left, p.window_right, &lo[half], &hi[half]);
  }
  // The CTA's keys: the union of its rows' ranges (lo and hi grow with the query token).
  int klo, khi, unused;
  {
    const int r_last = min(m0 + kBlockM, L.m_total) - 1;
    key_range(m0 / L.group, p.s_q, sk, p.window_left, p.window_right, &klo, &unused);
    key_range(r_last / L.group, p.s_q, sk, p.window_left, p.window_right, &unused, &khi);
    khi = min(khi, sk);
  }
  int blk_begin = 0, blk_end = 0;
  if (klo < khi) {
    const int nb0 = klo / kBlockN, nb1 = (khi + kBlockN - 1) / kBlockN;
    const int per = (nb1 - nb0 + L.num_splits - 1) / L.num_splits;
    blk_begin = min(nb0 + split * per, nb1);
    blk_end = min(blk_begin + per, nb1);
  }

  // ---- Q tile -> shared (rows past m_total zero-filled) ---------------------------------------
  for (int c = tid; c < kBlockM * kChunks; c += Tile::kThreads) {
    const int rr = c / kChunks, ch = c % kChunks;
    const int r = m0 + rr;
    const bool valid = r < L.m_total;
    const int i = valid ? r / L.group : 0, g = valid ? r % L.group : 0;
    const T* src = static_cast<const T*>(p.q) + bi * p.q_stride.batch + static_cast<int64_t>(i) * p.q_stride.row +
                   static_cast<int64_t>(hk * L.group + g) * p.q_stride.head + ch * 8;
    cp_async_16(smem_u32(q_s + swizzled_offset(rr, ch * 8, D)), src, valid);
  }
  cp_async_commit();

  // ---- K/V stage copies. Thread t copies chunk t % kChunks of rows t / kChunks + k * kRowsPerPass.
  const int ld_chunk = tid % kChunks, ld_row0 = tid / kChunks;
  const T* kbase = static_cast<const T*>(p.k_cache);
  const T* vbase = static_cast<const T*>(p.v_cache);
  // Paged: (physical block, row within it) of every key row of a stage, in a ring in shared memory
  // after the stage/epilogue buffers; block X's entries sit in slot X % kTableRing and are written
  // kTableAhead iterations before load_stage(X) reads them (decode_tile.h). Contiguous caches use
  // the cache row and j directly.
  constexpr int kRing = Tile::kTableRing;
  int* table_blk = reinterpret_cast<int*>(smem + Tile::kSmemBytes - Tile::kTableBytes);
  int* table_row = table_blk + kRing * kBlockN;
  const bool paged = p.paged();
  auto lookup = [&](int blk) {  // block `blk` of this CTA's keys (absolute block index)
    if (tid < kBlockN) {
      const int j = blk * kBlockN + tid;
      const int slot = (blk % kRing) * kBlockN + tid;
      table_blk[slot] = j < sk ? physical_block(p, bi, j) : -1;
      table_row[slot] = row_in_unit(p, j);
    }
  };
  auto load_stage = [&](int blk, int stage) {
    T* k_s = kv_s + stage * 2 * Tile::kTileElems;
    T* v_s = k_s + Tile::kTileElems;
#pragma unroll
    for (int k = 0; k < Tile::kLoadRows; ++k) {
      const int rr = ld_row0 + k * Tile::kRowsPerPass;
      const int j = blk * kBlockN + rr;
      const int slot = (blk % kRing) * kBlockN + rr;
      const int unit = paged ? table_blk[slot] : row.cache_batch;  // physical block or cache row
      const int pos = paged ? table_row[slot] : j;                 // row within it
      const bool valid = j < sk && unit >= 0;
      const int64_t ko = valid ? unit_offset(p.k_stride, unit, pos, hk) + ld_chunk * 8 : 0;
      const int64_t vo = valid ? unit_offset(p.v_stride, unit, pos, hk) + ld_chunk * 8 : 0;
      const int so = swizzled_offset(rr, ld_chunk * 8, D);
      cp_async_16(smem_u32(k_s + so), kbase + ko, valid);
      cp_async_16(smem_u32(v_s + so), vbase + vo, valid);
    }
  };

  const int nblk = blk_end - blk_begin;
  if (paged) {
    // Blocks 0 .. kStages - 2 + kTableAhead of the split: every slot of the ring once.
    for (int x = 0; x < kStages - 1 + Tile::kTableAhead && x < nblk; ++x) lookup(blk_begin + x);
    __syncthreads();
  }
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < nblk) load_stage(blk_begin + s, s);
    cp_async_commit();
  }

  // ---- main loop --------------------------------------------------------------------------------
  float o[D / 8][4];
#pragma unroll
  for (int x = 0; x < D / 8; ++x) o[x][0] = o[x][1] = o[x][2] = o[x][3] = 0.f;
  float m_run[2] = {-INFINITY, -INFINITY};  // running max, log2 units
  float l_run[2] = {0.f, 0.f};              // this lane's share of the running sum

  const uint32_t q_addr_row = wm * 16 + (lane & 7) + ((lane >> 3) & 1) * 8;
  for (int it = 0; it < nblk; ++it) {
    cp_async_wait<kStages - 2>();
    __syncthreads();  // stage `it` visible to all; everyone is done with the stage refilled below
    {
      const int nxt = it + kStages - 1;
      if (nxt < nblk) load_stage(blk_begin + nxt, nxt % kStages);
      // Into the slot of block nxt + kTableAhead - kTableRing, whose copies were issued before
      // the barrier above; read after kTableAhead more barriers.
      if (paged && nxt + Tile::kTableAhead < nblk) lookup(blk_begin + nxt + Tile::kTableAhead);
      cp_async_commit();
    }
    const T* k_s = kv_s + (it % kStages) * 2 * Tile::kTileElems;
    const T* v_s = k_s + Tile::kTileElems;
    const int n_warp0 = wn * kWarpN;  // this warp's first key within the stage

    // S = Q Kᵀ over this warp's kWarpN keys: kWarpN/8 accumulators of m16n8.
    float s[kWarpN / 8][4];
#pragma unroll
    for (int x = 0; x < kWarpN / 8; ++x) s[x][0] = s[x][1] = s[x][2] = s[x][3] = 0.f;
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      uint32_t qa[4];
      ldmatrix_x4(qa, smem_u32(q_s + swizzled_offset(q_addr_row, (2 * kk + (lane >> 4)) * 8, D)));
#pragma unroll
      for (int np = 0; np < kWarpN / 16; ++np) {
        const int key = n_warp0 + np * 16 + (lane & 7) + ((lane >> 4) << 3);
        uint32_t kb[4];
        ldmatrix_x4(kb, smem_u32(k_s + swizzled_offset(key, (2 * kk + ((lane >> 3) & 1)) * 8, D)));
        const uint32_t b0[2] = {kb[0], kb[1]}, b1[2] = {kb[2], kb[3]};
        mma_16x8x16<E>(s[2 * np], qa, b0);
        mma_16x8x16<E>(s[2 * np + 1], qa, b1);
      }
    }

    // Scale into log2 units and mask: key j counts for a row iff lo <= j < hi.
    const int key_lane0 = (blk_begin + it) * kBlockN + n_warp0 + 2 * (lane & 3);
#pragma unroll
    for (int x = 0; x < kWarpN / 8; ++x) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int j = key_lane0 + x * 8 + (e & 1);
        const int half = e >> 1;
        s[x][e] = (j >= lo[half] && j < hi[half]) ? s[x][e] * L.scale_log2 : -INFINITY;
      }
    }
    // Online softmax per row. A row that has seen only masked keys keeps max -inf; exp2 against
    // a reference of 0 then gives p = 0 and alpha = 0 instead of (-inf) - (-inf) = NaN.
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      float mx = -INFINITY;
#pragma unroll
      for (int x = 0; x < kWarpN / 8; ++x) mx = fmaxf(mx, fmaxf(s[x][2 * half], s[x][2 * half + 1]));
      mx = quad_max(mx);
      const float m_new = fmaxf(m_run[half], mx);
      const float m_ref = m_new == -INFINITY ? 0.f : m_new;
      const float alpha = fast_exp2(m_run[half] - m_ref);
      m_run[half] = m_new;
      float sum = 0.f;
#pragma unroll
      for (int x = 0; x < kWarpN / 8; ++x) {
        s[x][2 * half] = fast_exp2(s[x][2 * half] - m_ref);
        s[x][2 * half + 1] = fast_exp2(s[x][2 * half + 1] - m_ref);
        sum += s[x][2 * half] + s[x][2 * half + 1];
      }
      l_run[half] = l_run[half] * alpha + sum;
#pragma unroll
      for (int x = 0; x < D / 8; ++x) {
        o[x][2 * half] *= alpha;
        o[x][2 * half + 1] *= alpha;
      }
    }

    // O += P V: P's accumulators become A fragments 16 keys at a time; V through ldmatrix.trans.
#pragma unroll
    for (int kg = 0; kg < kWarpN / 16; ++kg) {
      const uint32_t pa[4] = {pack2<E>(s[2 * kg][0], s[2 * kg][1]), pack2<E>(s[2 * kg][2], s[2 * kg][3]),
                              pack2<E>(s[2 * kg + 1][0], s[2 * kg + 1][1]),
                              pack2<E>(s[2 * kg + 1][2], s[2 * kg + 1][3])};
      const int key = n_warp0 + kg * 16 + (lane & 7) + ((lane >> 3) & 1) * 8;
#pragma unroll
      for (int dp = 0; dp < D / 16; ++dp) {
        uint32_t vb[4];
        ldmatrix_x4_trans(vb, smem_u32(v_s + swizzled_offset(key, (2 * dp + (lane >> 4)) * 8, D)));
        const uint32_t b0[2] = {vb[0], vb[1]}, b1[2] = {vb[2], vb[3]};
        mma_16x8x16<E>(o[2 * dp], pa, b0);
        mma_16x8x16<E>(o[2 * dp + 1], pa, b1);
      }
    }
  }
  cp_async_wait<0>();
  __syncthreads();  // the stage buffers become the epilogue's

  // ---- merge the WN key-warps: (max, sum, O) per row through shared memory ---------------------
  float* o_s = reinterpret_cast<float*>(kv_s);                       // (kWN, kBlockM, kOStride)
  float* m_s = o_s + Tile::kWN * kBlockM * Tile::kOStride;            // (kWN, kBlockM)
  float* l_s = m_s + Tile::kWN * kBlockM;                             // (kWN, kBlockM)
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const int rr = wm * 16 + (lane >> 2) + half * 8;
    const float l_row = quad_sum(l_run[half]);
    if ((lane & 3) == 0) {
      m_s[wn * kBlockM + rr] = m_run[half];
      l_s[wn * kBlockM + rr] = l_row;
    }
    float* orow = o_s + (wn * kBlockM + rr) * Tile::kOStride + 2 * (lane & 3);
#pragma unroll
    for (int x = 0; x < D / 8; ++x)
      *reinterpret_cast<float2*>(orow + x * 8) = make_float2(o[x][2 * half], o[x][2 * half + 1]);
  }
  __syncthreads();

  constexpr int kQuads = D / 4;  // 4-float groups per row
  const bool direct = L.num_splits == 1;
  const int64_t rows_per_split = static_cast<int64_t>(gridDim.z) * L.m_total;  // workspace rows per split
  for (int item = tid; item < kBlockM * kQuads; item += Tile::kThreads) {
    const int rr = item / kQuads, c = (item % kQuads) * 4;
    const int r = m0 + rr;
    if (r >= L.m_total) continue;
    float mx = -INFINITY;
#pragma unroll
    for (int w = 0; w < Tile::kWN; ++w) mx = fmaxf(mx, m_s[w * kBlockM + rr]);
    const float m_ref = mx == -INFINITY ? 0.f : mx;
    float lsum = 0.f;
    float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll
    for (int w = 0; w < Tile::kWN; ++w) {
      const float wgt = fast_exp2(m_s[w * kBlockM + rr] - m_ref);
      lsum += l_s[w * kBlockM + rr] * wgt;
      const float4 ow = *reinterpret_cast<const float4*>(o_s + (w * kBlockM + rr) * Tile::kOStride + c);
      acc.x += ow.x * wgt;
      acc.y += ow.y * wgt;
      acc.z += ow.z * wgt;
      acc.w += ow.w * wgt;
    }
    // lsum == 0 only when the row saw no key: zeros and LSE -inf.
    const float inv = lsum > 0.f ? 1.f / lsum : 0.f;
    acc.x *= inv;
    acc.y *= inv;
    acc.z *= inv;
    acc.w *= inv;
    const float lse = lsum > 0.f ? (mx + __log2f(lsum)) * 0.6931471805599453f : -INFINITY;
    if (direct) {
      const float out4[4] = {acc.x, acc.y, acc.z, acc.w};
      store_row<E>(p, L, bi, hk, r, c, out4, lse);
    } else {
      const int64_t ws_row = static_cast<int64_t>(split) * rows_per_split + static_cast<int64_t>(bh) * L.m_total + r;
      __stcg(reinterpret_cast<float4*>(L.o_ws + ws_row * D + c), acc);
      if (c == 0) __stcg(L.lse_ws + ws_row, lse);
    }
  }
  if (direct || L.counters == nullptr) return;

  // ---- fused combine: the last of this tile's split CTAs to arrive merges all the partials ------
  // Release: the barrier orders every thread's partial stores before thread 0's arrival, a
  // gpu-scope acq_rel atomic (cumulative over what the barrier ordered before it; one release per
  // CTA instead of a fence per thread). Acquire: the same atomic in the CTA that sees the count
  // reach num_splits, then the barrier, then reads through L2 (merge_tile_splits). The last CTA
  // zeroes the counter: every split has counted, so no other CTA touches it again in this launch
  // and the next call finds it zero.
  __shared__ int is_last;
  __syncthreads();
  if (tid == 0) {
    int* counter = L.counters + static_cast<int64_t>(bh) * gridDim.x + blockIdx.x;
    int before;
    asm volatile("atom.acq_rel.gpu.global.add.s32 %0, [%1], 1;" : "=r"(before) : "l"(counter) : "memory");
    const bool last = before + 1 == L.num_splits;
    is_last = last;
    if (last) *counter = 0;
  }
  __syncthreads();
  if (!is_last) return;
  const int rows_here = min(kBlockM, L.m_total - m0);
  if (merge_smem_bytes(rows_here, L.num_splits) <= Tile::kMergeBytes) {
    merge_tile_splits<E, D, Tile::kThreads>(p, L, rows_per_split, bi, hk, bh, m0, rows_here,
                                            reinterpret_cast<float*>(kv_s));
    return;
  }
  for (int item = tid; item < kBlockM * kQuads; item += Tile::kThreads) {
    const int rr = item / kQuads, c = (item % kQuads) * 4;
    const int r = m0 + rr;
    if (r >= L.m_total) continue;
    float acc[4];
    const float lse = combine_splits<D>(L, rows_per_split, static_cast<int64_t>(bh) * L.m_total + r, c, acc);
    store_row<E>(p, L, bi, hk, r, c, acc, lse);
  }
}

}  // namespace flashattn::decode
