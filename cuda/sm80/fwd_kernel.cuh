// fwd_kernel.cuh — the sm80 (mma.sync) attention forward: one block computes kBlockM query rows
// of one (batch, head) against every key its rows may see.
//
// Per block:  O = softmax(scale · Q Kᵀ, masked) V   and   LSE = log Σ exp(scale · Q Kᵀ)
//   Q tile    (kBlockM, D)   cp.async → shared → registers (ldmatrix), or read per k-step from shared
//   K, V      (kBlockN, D)   streamed through kStages shared buffers by cp.async, newest key block first
//   S = Q Kᵀ  mma.sync m16n8k16, fp32 accumulators; each warp owns kRowsPerWarp rows
//   softmax   online, in registers, exp2 with scale·log2(e) folded into one FFMA
//   O += P V  P taken straight from the S accumulators (the C layout of one m16n8 pair is the A
//             layout of one m16k16), so P never goes through shared memory
//   epilogue  O / l staged through the warp's own rows of the Q buffer, then 16-byte stores
//
// Schedules of the key loop (FwdTile::kSchedule):
//   plain  per block j: S_j = Q K_jᵀ; softmax(S_j); O += P_j V_j, with one __syncthreads per block
//          that both publishes block j's copies and frees block j-1's buffer.
//   mbar   the same step, with the block-wide barrier replaced by per-stage "full" and "empty"
//          mbarriers (fwd_sync.cuh). Warps are no longer forced into lockstep, so one warp's
//          softmax (MUFU/FP32) runs while the other warp of its SM sub-partition keeps the tensor
//          core busy: +10-15% on an H200 (docs/perf-notes.md). Needs >= 3 stages.
// Two other schedules were measured and dropped (an in-warp software pipeline of S_{j+1} against
// softmax(S_j), and FlashAttention-3's warp-group ping-pong); docs/perf-notes.md has the numbers and
// the commit (d6e87d8) whose cuda/dev/fwd_kernel_run4_snapshot.cuh keeps their code.
//
// Key blocks outside the window are never visited: the block's key range is the union of its rows'
// ranges (key_range in params.h is monotone in the row), and only blocks that cut through a row's
// range, or the s_k tail, pay for the element mask.
#pragma once

#include <cstdint>
#include <cuda_runtime.h>

#include "sm80/copy.h"
#include "sm80/mma.h"
#include "common/reduce.h"
#include "params.h"
#include "sm80/fwd_sync.cuh"

namespace flashattn::sm80 {

// Schedules of the key loop (see the file comment).
enum FwdSchedule : int { kPlain = 0, kMbar = 1 };

// The tile shape and schedule of one forward kernel. Everything here is a compile-time constant;
// masks, windows, GQA and sequence lengths are runtime values in FwdArgs.
template <int kHeadDim_, int kBlockM_, int kBlockN_, int kNWarps_, bool kQInRegs_, int kStages_, int kMinBlocks_,
          int kSchedule_ = kPlain>
struct FwdTile {
  static constexpr int kHeadDim = kHeadDim_;  // compiled head dim D (runtime d <= D)
  static constexpr int kBlockM = kBlockM_;    // query rows per block
  static constexpr int kBlockN = kBlockN_;    // keys per pipeline stage
  static constexpr int kNWarps = kNWarps_;
  static constexpr bool kQInRegs = kQInRegs_;  // Q fragments live in registers for the whole block
  static constexpr int kStages = kStages_;     // K/V shared buffers; loads run kStages-1 blocks ahead
  static constexpr int kMinBlocks = kMinBlocks_;  // __launch_bounds__ occupancy hint
  static constexpr int kSchedule = kSchedule_;

  static constexpr int kThreads = kNWarps * 32;
  static constexpr int kRowsPerWarp = kBlockM / kNWarps;
  static constexpr int kMTiles = kRowsPerWarp / 16;  // m16 tiles per warp
  // Shared rows are padded to a multiple of 64 columns so that every row holds a whole number of
  // 8-chunk swizzle groups (copy.h's XOR swizzle needs that); D = 32 and 96 waste the padding.
  static constexpr int kSmemCols = (kHeadDim + 63) / 64 * 64;
  static constexpr int kChunks = kHeadDim / 8;    // 16-byte chunks per row that carry data
  static constexpr int kKSteps = kHeadDim / 16;   // k-steps of Q Kᵀ
  static constexpr int kSTiles = kBlockN / 8;     // n8 tiles of S per m16 tile
  static constexpr int kOTiles = kHeadDim / 8;    // n8 tiles of O per m16 tile
  static constexpr int kRowBytes = kSmemCols * 2;
  static constexpr int kQBytes = kBlockM * kRowBytes;
  static constexpr int kKVBytes = kBlockN * kRowBytes;
  static constexpr int kBarBytes = kSchedule >= kMbar ? (2 * kStages + 1) * 8 : 0;  // mbarriers
  static constexpr int kSmemBytes = kQBytes + 2 * kStages * kKVBytes + kBarBytes;

  static_assert(kHeadDim % 32 == 0 && kHeadDim <= 256, "compiled head dims are multiples of 32");
  static_assert(kRowsPerWarp % 16 == 0, "each warp owns whole m16 tiles");
  static_assert(kBlockN % 16 == 0, "P·V consumes keys 16 at a time");
  static_assert(kStages >= 2, "at least double buffering");
  static_assert(kSchedule == kPlain || kSchedule == kMbar, "unknown schedule");
  static_assert(kSchedule != kMbar || kStages >= 3, "mbar refills a stage one block after its release");
};

// What the kernel reads; built from AttnParams on the host (make_fwd_args).
struct FwdArgs {
  const void* __restrict__ q;  // (b, s_q, h,   d)
  const void* __restrict__ k;  // (b, s_k, h_k, d)
  const void* __restrict__ v;  // (b, s_k, h_k, d)
  void* __restrict__ o;        // (b, s_q, h,   d)
  float* __restrict__ lse;     // (b, h, s_q)
  int64_t q_batch, q_row, q_head;  // strides in elements
  int64_t k_batch, k_row, k_head;
  int64_t v_batch, v_row, v_head;
  int64_t o_batch, o_row, o_head;
  int s_q, s_k, h, d;
  int group;  // h / h_k: query heads per KV head
  int window_left, window_right;
  float scale;       // softmax scale (natural units), for the LSE
  float scale_log2;  // scale · log2(e): scores go straight into exp2
};

inline FwdArgs make_fwd_args(const AttnParams& p) {
  FwdArgs a;
  a.q = p.q; a.k = p.k; a.v = p.v; a.o = p.out; a.lse = p.lse;
  a.q_batch = p.q_stride.batch; a.q_row = p.q_stride.row; a.q_head = p.q_stride.head;
  a.k_batch = p.k_stride.batch; a.k_row = p.k_stride.row; a.k_head = p.k_stride.head;
  a.v_batch = p.v_stride.batch; a.v_row = p.v_stride.row; a.v_head = p.v_stride.head;
  a.o_batch = p.o_stride.batch; a.o_row = p.o_stride.row; a.o_head = p.o_stride.head;
  a.s_q = p.s_q; a.s_k = p.s_k; a.h = p.h; a.d = p.d;
  a.group = p.h / p.h_k;
  a.window_left = p.window_left; a.window_right = p.window_right;
  a.scale = p.scale;
  a.scale_log2 = p.scale * kLog2e;
  return a;
}

namespace fwd_detail {

constexpr float kNegInf = -__builtin_huge_valf();

// The thread index, read so that the compiler rematerializes what derives from it at each use
// instead of holding per-chunk copy offsets in registers across the whole key loop. (Measured:
// frees the registers the 255-register tiles need; costs d32/d64 time, docs/perf-notes.md.)
__device__ __forceinline__ int fresh_tid() {
  int t;
  asm volatile("mov.u32 %0, %%tid.x;\n" : "=r"(t));
  return t;
}

// Issues cp.async for one (kRows, D) tile: rows [row_begin, row_begin + kRows) of a tensor whose
// row stride is row_stride. Rows >= rows_valid and chunks >= d_chunks are zero-filled in shared
// memory without reading global memory (sequence tails, and columns past the runtime head dim).
template <typename Tile, int kRows, typename T>
__device__ __forceinline__ void load_tile(uint32_t smem, const T* __restrict__ g, int64_t row_stride, int row_begin,
                                          int rows_valid, int d_chunks) {
  const int tid = fresh_tid();
  constexpr int kTotal = kRows * Tile::kChunks;
  constexpr int kIters = (kTotal + Tile::kThreads - 1) / Tile::kThreads;
#pragma unroll
  for (int i = 0; i < kIters; ++i) {
    const int idx = tid + i * Tile::kThreads;
    if (kTotal % Tile::kThreads == 0 || idx < kTotal) {
      const int r = idx / Tile::kChunks;
      const int c = idx % Tile::kChunks;
      const bool valid = (row_begin + r < rows_valid) && (c < d_chunks);
      const T* src = valid ? g + static_cast<int64_t>(row_begin + r) * row_stride + c * 8 : g;
      cp_async_16(smem + swizzled_offset(r, c * 8, Tile::kSmemCols) * 2, src, valid);
    }
  }
}

// Byte offset of the 16-column step j inside a swizzled row, for a lane whose row is ≡ r (mod 8)
// and whose 8x8 tile is at chunk offset `bit` (0/1): chunk (2j + bit) ^ r = (2j) ^ x, x = bit ^ r.
__device__ __forceinline__ uint32_t chunk_bytes(int j, int x) {
  return static_cast<uint32_t>((((2 * j) & ~7) | (((2 * j) & 7) ^ x)) * 16);
}

// Per-lane ldmatrix addressing (lane l supplies row l%8 of 8x8 tile l/8).
struct LaneAddr {
  uint32_t q_row;  // this lane's Q row address (A operand: tiles rows +0/+8 × cols +0/+8 = a0..a3)
  int q_x;
  uint32_t k_row;  // K (B of Q Kᵀ, not transposed): tiles (keys+0,d+0) (keys+0,d+8) (keys+8,d+0) (keys+8,d+8)
  int k_x;
  uint32_t v_row;  // V (B of P V, transposed): tiles (keys+0,d+0) (keys+8,d+0) (keys+0,d+8) (keys+8,d+8)
  int v_x;
};

template <typename Tile>
__device__ __forceinline__ LaneAddr lane_addr(uint32_t sQ, int warp, int lane) {
  const int lq = lane / 8, lr = lane % 8;
  LaneAddr la;
  la.q_row = sQ + (warp * Tile::kRowsPerWarp + (lq & 1) * 8 + lr) * Tile::kRowBytes;
  la.q_x = (lq >> 1) ^ lr;
  la.k_row = ((lq >> 1) * 8 + lr) * Tile::kRowBytes;
  la.k_x = (lq & 1) ^ lr;
  la.v_row = ((lq & 1) * 8 + lr) * Tile::kRowBytes;
  la.v_x = (lq >> 1) ^ lr;
  return la;
}

template <typename Tile>
using QFrag = uint32_t[Tile::kQInRegs ? Tile::kMTiles : 1][Tile::kQInRegs ? Tile::kKSteps : 1][4];
template <typename Tile>
using SAcc = float[Tile::kMTiles][Tile::kSTiles][4];
template <typename Tile>
using OAcc = float[Tile::kMTiles][Tile::kOTiles][4];
template <typename Tile>
using RowStat = float[Tile::kMTiles][2];

template <typename Tile>
__device__ __forceinline__ void load_q_frags(QFrag<Tile>& qf, const LaneAddr& la) {
  if constexpr (Tile::kQInRegs) {
#pragma unroll
    for (int mi = 0; mi < Tile::kMTiles; ++mi) {
#pragma unroll
      for (int kk = 0; kk < Tile::kKSteps; ++kk) {
        ldmatrix_x4(qf[mi][kk], la.q_row + mi * 16 * Tile::kRowBytes + chunk_bytes(kk, la.q_x));
      }
    }
  }
}

// s = Q Kᵀ for this warp's rows and the kBlockN keys of the K tile at k_tile.
template <typename E, typename Tile>
__device__ __forceinline__ void qk_gemm(SAcc<Tile>& s, const QFrag<Tile>& qf, const LaneAddr& la, uint32_t k_tile) {
#pragma unroll
  for (int mi = 0; mi < Tile::kMTiles; ++mi) {
#pragma unroll
    for (int j = 0; j < Tile::kSTiles; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) s[mi][j][e] = 0.f;
    }
  }
  const uint32_t k_base = k_tile + la.k_row;
#pragma unroll
  for (int kk = 0; kk < Tile::kKSteps; ++kk) {
    uint32_t qa[Tile::kMTiles][4];
#pragma unroll
    for (int mi = 0; mi < Tile::kMTiles; ++mi) {
      if constexpr (Tile::kQInRegs) {
#pragma unroll
        for (int e = 0; e < 4; ++e) qa[mi][e] = qf[mi][kk][e];
      } else {
        ldmatrix_x4(qa[mi], la.q_row + mi * 16 * Tile::kRowBytes + chunk_bytes(kk, la.q_x));
      }
    }
#pragma unroll
    for (int p = 0; p < Tile::kBlockN / 16; ++p) {
      uint32_t kb[4];
      ldmatrix_x4(kb, k_base + p * 16 * Tile::kRowBytes + chunk_bytes(kk, la.k_x));
      const uint32_t b0[2] = {kb[0], kb[1]};
      const uint32_t b1[2] = {kb[2], kb[3]};
#pragma unroll
      for (int mi = 0; mi < Tile::kMTiles; ++mi) {
        mma_16x8x16<E>(s[mi][2 * p], qa[mi], b0);
        mma_16x8x16<E>(s[mi][2 * p + 1], qa[mi], b1);
      }
    }
  }
}

// Sets s to -inf outside each row's key range. row_base is the block's first row plus the warp's
// first row; the range is recomputed per row here rather than kept in registers.
template <typename Tile>
__device__ __forceinline__ void mask_scores(SAcc<Tile>& s, const FwdArgs& a, int n0, int row_base, int lane) {
  const int col0 = n0 + 2 * (lane % 4);
#pragma unroll
  for (int mi = 0; mi < Tile::kMTiles; ++mi) {
#pragma unroll
    for (int hf = 0; hf < 2; ++hf) {
      const int r = row_base + mi * 16 + lane / 4 + hf * 8;
      int lo, hi;
      key_range(r, a.s_q, a.s_k, a.window_left, a.window_right, &lo, &hi);
#pragma unroll
      for (int j = 0; j < Tile::kSTiles; ++j) {
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int col = col0 + j * 8 + e;
          if (col < lo || col >= hi) s[mi][j][2 * hf + e] = kNegInf;
        }
      }
    }
  }
}

// Online softmax step: s (raw scores) becomes p = exp2((s - m)·scale_log2) for the new running max
// m, and o, l are rescaled by exp2((m_old - m)·scale_log2). The subtraction comes first, on the raw
// scores, so the max's own p is exactly 1 and alpha is exactly 1 when the max did not change: a
// one-hot row (large inputs) then has l = 1 and O = V_argmax bit for bit, which the backward's
// D = rowsum(dO∘O) needs to cancel dP exactly. (The FFMA form exp2(s·scale_log2 - round(m·scale_log2))
// gives the max p = 2^r for the rounding residual r; P rounded to fp16 then no longer matches l
// and O can be one ulp off V.) A row that has seen no key keeps m = -inf; its offset is then 0
// (not -inf), so exp2(-inf - 0) = 0 instead of exp2(-inf + inf) = NaN. A NaN score (NaN/Inf
// inputs) is skipped by fmaxf but makes its p, hence l and o, NaN. l is this lane's share only;
// the quad is summed once, at the end.
template <typename Tile>
__device__ __forceinline__ void softmax_step(SAcc<Tile>& s, OAcc<Tile>& o, RowStat<Tile>& row_max, RowStat<Tile>& row_sum,
                                             float scale_log2) {
#pragma unroll
  for (int mi = 0; mi < Tile::kMTiles; ++mi) {
#pragma unroll
    for (int hf = 0; hf < 2; ++hf) {
      float mx = row_max[mi][hf];
#pragma unroll
      for (int j = 0; j < Tile::kSTiles; ++j) mx = fmaxf(mx, fmaxf(s[mi][j][2 * hf], s[mi][j][2 * hf + 1]));
      mx = quad_max(mx);
      const float offset = mx == kNegInf ? 0.f : mx;
      const float alpha = fast_exp2(__fmul_rn(row_max[mi][hf] - offset, scale_log2));  // old max -inf: 0
      row_max[mi][hf] = mx;
      float sum = 0.f;
#pragma unroll
      for (int j = 0; j < Tile::kSTiles; ++j) {
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const float p = fast_exp2(__fmul_rn(s[mi][j][2 * hf + e] - offset, scale_log2));
          s[mi][j][2 * hf + e] = p;
          sum += p;
        }
      }
      row_sum[mi][hf] = row_sum[mi][hf] * alpha + sum;
#pragma unroll
      for (int j = 0; j < Tile::kOTiles; ++j) {
        o[mi][j][2 * hf] *= alpha;
        o[mi][j][2 * hf + 1] *= alpha;
      }
    }
  }
}

// o += p V for the kBlockN keys of the V tile at v_tile. S n-tiles (2t, 2t+1) of one m16 tile are
// exactly the A fragment of keys 16t..16t+15, so p goes from accumulators to operands in registers.
template <typename E, typename Tile>
__device__ __forceinline__ void pv_gemm(OAcc<Tile>& o, const SAcc<Tile>& p, const LaneAddr& la, uint32_t v_tile) {
  const uint32_t v_base = v_tile + la.v_row;
#pragma unroll
  for (int t = 0; t < Tile::kBlockN / 16; ++t) {
    uint32_t pa[Tile::kMTiles][4];
#pragma unroll
    for (int mi = 0; mi < Tile::kMTiles; ++mi) {
      pa[mi][0] = pack2<E>(p[mi][2 * t][0], p[mi][2 * t][1]);
      pa[mi][1] = pack2<E>(p[mi][2 * t][2], p[mi][2 * t][3]);
      pa[mi][2] = pack2<E>(p[mi][2 * t + 1][0], p[mi][2 * t + 1][1]);
      pa[mi][3] = pack2<E>(p[mi][2 * t + 1][2], p[mi][2 * t + 1][3]);
    }
#pragma unroll
    for (int dp = 0; dp < Tile::kHeadDim / 16; ++dp) {
      uint32_t vb[4];
      ldmatrix_x4_trans(vb, v_base + t * 16 * Tile::kRowBytes + chunk_bytes(dp, la.v_x));
      const uint32_t b0[2] = {vb[0], vb[1]};
      const uint32_t b1[2] = {vb[2], vb[3]};
#pragma unroll
      for (int mi = 0; mi < Tile::kMTiles; ++mi) {
        mma_16x8x16<E>(o[mi][2 * dp], pa[mi], b0);
        mma_16x8x16<E>(o[mi][2 * dp + 1], pa[mi], b1);
      }
    }
  }
}

}  // namespace fwd_detail

template <typename E, typename Tile>
__global__ void __launch_bounds__(Tile::kThreads, Tile::kMinBlocks) fwd_kernel(const FwdArgs a) {
  using namespace fwd_detail;
  using T = typename E::T;
  constexpr int BM = Tile::kBlockM;
  constexpr int BN = Tile::kBlockN;
  constexpr int MT = Tile::kMTiles;
  constexpr int kStages = Tile::kStages;

  extern __shared__ __align__(128) unsigned char smem_raw[];
  const uint32_t sQ = smem_u32(smem_raw);
  const uint32_t sK = sQ + Tile::kQBytes;             // kStages tiles (BN, D)
  const uint32_t sV = sK + kStages * Tile::kKVBytes;  // kStages tiles (BN, D)

  // Longest rows first: with a causal mask the last query blocks see the most keys.
  const int m_block = gridDim.x - 1 - blockIdx.x;
  const int head = blockIdx.y;
  const int batch = blockIdx.z;
  const int kv_head = head / a.group;
  const int tid = threadIdx.x;
  const int warp = tid / 32;
  const int lane = tid % 32;
  const int row0 = m_block * BM;
  const int warp_row0 = warp * Tile::kRowsPerWarp;

  const T* __restrict__ gq = static_cast<const T*>(a.q) + batch * a.q_batch + head * a.q_head;
  const T* __restrict__ gk = static_cast<const T*>(a.k) + batch * a.k_batch + kv_head * a.k_head;
  const T* __restrict__ gv = static_cast<const T*>(a.v) + batch * a.v_batch + kv_head * a.v_head;
  T* __restrict__ go = static_cast<T*>(a.o) + batch * a.o_batch + head * a.o_head;

  // Key blocks this query block needs: [n_begin, n_end), visited from the last down. lo and hi
  // only grow with the row, so the first row gives the lowest key and the last (valid) row the
  // highest; a block needs the element mask unless it lies inside every row's range.
  const int row_last = min(row0 + BM, a.s_q) - 1;
  int lo_first, hi_first, lo_last, hi_last;
  key_range(row0, a.s_q, a.s_k, a.window_left, a.window_right, &lo_first, &hi_first);
  key_range(row_last, a.s_q, a.s_k, a.window_left, a.window_right, &lo_last, &hi_last);
  const int n_begin = lo_first / BN;
  const int n_end = hi_last > lo_first ? (hi_last + BN - 1) / BN : n_begin;
  const int n_blocks = n_end - n_begin;
  const int d_chunks = a.d / 8;
  auto needs_mask = [&](int n0) { return !(n0 >= lo_last && n0 + BN <= hi_first); };
  auto load_k = [&](int stage, int it) {
    load_tile<Tile, BN>(sK + stage * Tile::kKVBytes, gk, a.k_row, (n_end - 1 - it) * BN, a.s_k, d_chunks);
  };
  auto load_v = [&](int stage, int it) {
    load_tile<Tile, BN>(sV + stage * Tile::kKVBytes, gv, a.v_row, (n_end - 1 - it) * BN, a.s_k, d_chunks);
  };

  const LaneAddr la = lane_addr<Tile>(sQ, warp, lane);
  QFrag<Tile> q_frag;
  OAcc<Tile> o_acc;
  RowStat<Tile> row_max, row_sum;  // raw (unscaled) running max of Q Kᵀ; this lane's Σ exp2
#pragma unroll
  for (int mi = 0; mi < MT; ++mi) {
#pragma unroll
    for (int j = 0; j < Tile::kOTiles; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) o_acc[mi][j][e] = 0.f;
    }
    row_max[mi][0] = row_max[mi][1] = kNegInf;
    row_sum[mi][0] = row_sum[mi][1] = 0.f;
  }
  const float scale_log2 = a.scale_log2;

  if constexpr (Tile::kSchedule == kPlain) {
    // ---- plain schedule: Q in its own group, then kStages-1 key blocks ahead ----
    load_tile<Tile, BM>(sQ, gq, a.q_row, row0, a.s_q, d_chunks);
    cp_async_commit();
#pragma unroll
    for (int s = 0; s < kStages - 1; ++s) {
      if (s < n_blocks) {
        load_k(s, s);
        load_v(s, s);
      }
      cp_async_commit();
    }
    cp_async_wait<kStages - 1>();
    __syncthreads();
    load_q_frags<Tile>(q_frag, la);

    for (int it = 0; it < n_blocks; ++it) {
      const int stage = it % kStages;
      cp_async_wait<kStages - 2>();
      __syncthreads();  // block `it` landed for everyone; everyone is done with block it-1's stage
      const int pf = it + kStages - 1;
      if (pf < n_blocks) {
        load_k(pf % kStages, pf);
        load_v(pf % kStages, pf);
      }
      cp_async_commit();

      SAcc<Tile> s;
      qk_gemm<E, Tile>(s, q_frag, la, sK + stage * Tile::kKVBytes);
      const int n0 = (n_end - 1 - it) * BN;
      if (needs_mask(n0)) mask_scores<Tile>(s, a, n0, row0 + warp_row0, lane);
      softmax_step<Tile>(s, o_acc, row_max, row_sum, scale_log2);
      pv_gemm<E, Tile>(o_acc, s, la, sV + stage * Tile::kKVBytes);
    }
  } else {
    // ---- mbar schedule ----
    // No block-wide barrier in the loop: stage s's "full" mbarrier completes when every thread's
    // copies of its block have landed (cp.async arrive), its "empty" mbarrier when every thread has
    // finished reading it. Block b goes to stage b % kStages; a thread refills a stage only after
    // the previous block there was released, so warps may drift apart by up to a stage.
    constexpr int S = kStages;
    const uint32_t q_bar = sV + S * Tile::kKVBytes;
    const uint32_t full_bar = q_bar + 8;
    const uint32_t empty_bar = full_bar + 8 * S;
    if (tid == 0) {
      mbar_init(q_bar, Tile::kThreads);
#pragma unroll
      for (int st = 0; st < S; ++st) {
        mbar_init(full_bar + 8 * st, Tile::kThreads);
        mbar_init(empty_bar + 8 * st, Tile::kThreads);
      }
    }
    __syncthreads();
    load_tile<Tile, BM>(sQ, gq, a.q_row, row0, a.s_q, d_chunks);
    mbar_arrive_on_copies(q_bar);
    auto produce = [&](int b) {
      if (b < n_blocks) {
        const int st = b % S, use = b / S;
        if (use > 0) mbar_wait(empty_bar + 8 * st, (use - 1) & 1);
        load_k(st, b);
        load_v(st, b);
        mbar_arrive_on_copies(full_bar + 8 * st);
      }
    };
#pragma unroll
    for (int b = 0; b < S - 1; ++b) produce(b);
    mbar_wait(q_bar, 0);
    load_q_frags<Tile>(q_frag, la);

    for (int it = 0; it < n_blocks; ++it) {
      const int st = it % S;
      mbar_wait(full_bar + 8 * st, (it / S) & 1);
      // Lane addresses rebuilt from a fresh thread index each block: a few integer ops instead
      // of a dozen registers held across the loop (the 32-rows-per-warp tiles run at 255).
      const LaneAddr lb = lane_addr<Tile>(sQ, fresh_tid() / 32, fresh_tid() % 32);
      SAcc<Tile> s;
      qk_gemm<E, Tile>(s, q_frag, lb, sK + st * Tile::kKVBytes);
      const int n0 = (n_end - 1 - it) * BN;
      if (needs_mask(n0)) mask_scores<Tile>(s, a, n0, row0 + warp_row0, lane);
      softmax_step<Tile>(s, o_acc, row_max, row_sum, scale_log2);
      pv_gemm<E, Tile>(o_acc, s, lb, sV + st * Tile::kKVBytes);
      // Every thread releases the stage itself, after its own last read of it. (One lane per warp
      // after __syncwarp would also be ordered, but compute-sanitizer's racecheck cannot follow a
      // release made on other lanes' behalf, and flagged it as a WAR hazard.)
      mbar_arrive(empty_bar + 8 * st);
      produce(it + S - 1);
    }
  }
  cp_async_wait<0>();  // nothing may still be writing shared memory when the block exits

  // ---- epilogue: O / l and LSE; rows that see no key get O = 0 and LSE = -inf ----
  // "Sees no key" is the mask's word alone: l = 0 or NaN in a row that sees keys comes from NaN/Inf
  // inputs and gives NaN, as it does in PyTorch. The LSE is round(m·scale) + ln(l), the form the
  // backward's P = exp(round(S·scale) - LSE) is built on: a one-hot row has l = 1, so its LSE is
  // round(m·scale) exactly and the backward recomputes its P as exactly 1.
  float* __restrict__ glse = a.lse + (static_cast<int64_t>(batch) * a.h + head) * a.s_q;
  const uint32_t q_out = sQ;  // this warp's rows of the Q buffer (no other warp touches them)
#pragma unroll
  for (int mi = 0; mi < MT; ++mi) {
#pragma unroll
    for (int hf = 0; hf < 2; ++hf) {
      const float l = quad_sum(row_sum[mi][hf]);
      const float mx = row_max[mi][hf];
      const int r_local = warp_row0 + mi * 16 + lane / 4 + hf * 8;
      int key_lo, key_hi;
      key_range(row0 + r_local, a.s_q, a.s_k, a.window_left, a.window_right, &key_lo, &key_hi);
      const bool empty = key_lo >= key_hi;
      const float inv = empty ? 0.f : 1.f / l;
      if (lane % 4 == 0 && row0 + r_local < a.s_q) {
        glse[row0 + r_local] = empty ? kNegInf
                               : l > 0.f ? __fmul_rn(mx, a.scale) + logf(l)
                                         : __int_as_float(0x7fc00000);  // NaN
      }
#pragma unroll
      for (int j = 0; j < Tile::kOTiles; ++j) {
        const uint32_t packed = pack2<E>(o_acc[mi][j][2 * hf] * inv, o_acc[mi][j][2 * hf + 1] * inv);
        const int col = j * 8 + 2 * (lane % 4);
        const uint32_t addr = q_out + swizzled_offset(r_local, col, Tile::kSmemCols) * 2;
        asm volatile("st.shared.u32 [%0], %1;\n" ::"r"(addr), "r"(packed));
      }
    }
  }
  __syncwarp();
  constexpr int kOutChunks = Tile::kRowsPerWarp * Tile::kChunks;
#pragma unroll
  for (int i = 0; i < (kOutChunks + 31) / 32; ++i) {
    const int idx = lane + i * 32;
    if (kOutChunks % 32 == 0 || idx < kOutChunks) {
      const int r_local = warp_row0 + idx / Tile::kChunks;
      const int c = idx % Tile::kChunks;
      const int row = row0 + r_local;
      if (row < a.s_q && c < d_chunks) {
        uint4 val;
        const uint32_t addr = q_out + swizzled_offset(r_local, c * 8, Tile::kSmemCols) * 2;
        asm volatile("ld.shared.v4.u32 {%0,%1,%2,%3}, [%4];\n"
                     : "=r"(val.x), "=r"(val.y), "=r"(val.z), "=r"(val.w) : "r"(addr));
        *reinterpret_cast<uint4*>(go + static_cast<int64_t>(row) * a.o_row + c * 8) = val;
      }
    }
  }
}

}  // namespace flashattn::sm80
