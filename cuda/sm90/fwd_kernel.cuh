// fwd_kernel.cuh — the sm90 attention forward (FlashAttention-3's design). A work tile is 128
// query rows of one (batch, head) against every key block those rows may see; a block runs one
// tile, or (persistent grid) every gridDim.x-th tile.
//
//   warpgroup 0   producer: one thread issues the copy engine's loads (Q once; K and V per key
//                 block into a kStages ring), waiting on each slot's "empty" barrier first.
//                 Gives its registers to the consumers (setmaxnreg).
//   warpgroups    consumers, 64 query rows each:
//     1, 2          S = Q Kᵀ    wgmma, A and B from shared memory (both K-major)
//                   softmax     online, in registers (fwd_softmax.h)
//                   O += P V    wgmma, P from registers (bf16/fp16), V from shared memory (N-major)
//                   epilogue    O / l and LSE straight from registers (fwd_epilogue.h)
//
// e4m3 operands (FwdTile::kElemBytes == 1, Elem = E4m3, Out = the output's bf16/fp16): the same
// kernel with k32 QGMMA for both products. fp8 wgmma takes B K-major only, so V arrives as Vᵀ
// (fp8_vt.h: (d, keys) per (b, h_k), written by a pass before the kernel, keys permuted inside each
// 32 so the S accumulators pack into P's A fragments without shuffles). P is e4m3 in [0, 256]
// (exp2 offset by kFp8PLog2 = 8, folded back through l and the LSE), scores carry the q and k
// descales, O the v descale.
//
// Overlap inside a warpgroup: at key block j the consumer issues S_j = Q K_jᵀ, then O += P_{j-1}
// V_{j-1}, and runs the softmax of S_j while the P V product is still on the tensor cores; O is
// rescaled (once per row per block) only after that product has landed. Between the two
// consumer warpgroups (FwdTile::kPingpong): they take turns issuing, so one's softmax runs under
// the other's products.
//
// Key blocks are visited newest first. Blocks outside the window are never loaded: the block's
// key range is the union of its rows' ranges (key_range in params.h is monotone in the row), and
// only blocks that cut through some row's range (or the s_k tail) pay for the element mask.
#pragma once

#include <cstdint>
#include <cuda.h>
#include <cuda_runtime.h>

#include "params.h"
#include "sm90/fwd_epilogue.h"
#include "sm90/fwd_params.h"
#include "sm90/fwd_softmax.h"
#include "sm90/mbarrier.h"
#include "sm90/tma.h"
#include "sm90/warpgroup.h"
#include "sm90/wgmma.h"

namespace flashattn::sm90 {

constexpr int kProducerRegs = 24;
constexpr int kConsumerRegs = 240;

// Shared-memory addresses of one block's buffers and barriers.
template <typename Tile>
struct FwdSmem {
  uint32_t q, k, v, bars;
  __device__ __forceinline__ explicit FwdSmem(uint32_t base)
      : q(base), k(base + Tile::kOffK), v(base + Tile::kOffV), bars(base + Tile::kOffBars) {}
  __device__ __forceinline__ uint32_t k_stage(int s) const { return k + s * Tile::kKVBytes; }
  __device__ __forceinline__ uint32_t v_stage(int s) const { return v + s * Tile::kVBytes; }
  __device__ __forceinline__ uint32_t q_full() const { return bars; }
  __device__ __forceinline__ uint32_t q_empty() const { return bars + 8; }
  __device__ __forceinline__ uint32_t k_full(int s) const { return bars + 8 * (2 + s); }
  __device__ __forceinline__ uint32_t k_empty(int s) const { return bars + 8 * (2 + Tile::kStages + s); }
  __device__ __forceinline__ uint32_t v_full(int s) const { return bars + 8 * (2 + 2 * Tile::kStages + s); }
  __device__ __forceinline__ uint32_t v_empty(int s) const { return bars + 8 * (2 + 3 * Tile::kStages + s); }
};

// One work tile: 128 query rows of one (batch, head). Tiles are numbered with the query block
// fastest and descending, so the blocks running at once share one head's K/V in L2 and, under a
// causal mask, the longest tiles go first. Varlen: the same within each sequence, the sequences
// in the host's order (most work first).
//
// m0 and every row and key index are the sequence's own (what the mask reads); q0 / k0 move them
// to the maps' row coordinate (0 padded; the sequence's first packed row in varlen).
struct WorkTile {
  int m0, head;
  int batch;     // the maps' batch coordinate and o's batch index (0 in varlen)
  int q0, k0;    // first row of the sequence in q / o and in k / v
  int s_q, s_k;  // the sequence's lengths
  int64_t lse0;  // lse index of (head, row 0); rows are consecutive
};
__device__ __forceinline__ WorkTile work_tile(const FwdParams& p, int t) {
  WorkTile w;
  if (p.cu_q == nullptr) {
    w.m0 = (p.m_blocks - 1 - t % p.m_blocks) * 128;
    w.head = (t / p.m_blocks) % p.h;
    w.batch = t / (p.m_blocks * p.h);
    w.q0 = w.k0 = 0;
    w.s_q = p.s_q;
    w.s_k = p.s_k;
    w.lse0 = (static_cast<int64_t>(w.batch) * p.h + w.head) * p.s_q;
    return w;
  }
  int i = 0, hi = p.seqs - 1;  // the first entry whose tiles end past t
  while (i < hi) {
    const int mid = (i + hi) / 2;
    if (p.tile_end[mid] > t) hi = mid; else i = mid + 1;
  }
  const int start = i > 0 ? p.tile_end[i - 1] : 0, local = t - start;
  const int m_blocks = (p.tile_end[i] - start) / p.h;
  const int seq = p.order[i];
  w.m0 = (m_blocks - 1 - local % m_blocks) * 128;
  w.head = local / m_blocks;
  w.batch = 0;
  // Clamped to the totals, so no offsets can move a copy or a store outside the packed tensors.
  w.q0 = min(max(__ldg(p.cu_q + seq), 0), p.s_q);
  w.s_q = min(max(__ldg(p.cu_q + seq + 1), w.q0), p.s_q) - w.q0;
  w.k0 = min(max(__ldg(p.cu_k + seq), 0), p.s_k);
  w.s_k = min(max(__ldg(p.cu_k + seq + 1), w.k0), p.s_k) - w.k0;
  w.lse0 = static_cast<int64_t>(w.head) * p.s_q + w.q0;
  return w;
}

// The key blocks [n_begin, n_end) a query tile visits, and the keys that need no mask:
// [lo of its last row, hi of its first row) holds only keys every row of the tile sees.
struct KeyBlocks {
  int n_begin, n_end;
  int full_lo, full_hi;
  __device__ __forceinline__ bool empty() const { return n_end <= n_begin; }
};

template <typename Tile>
__device__ __forceinline__ KeyBlocks key_blocks(const FwdParams& p, const WorkTile& w) {
  const int m0 = w.m0, last = max(min(m0 + Tile::kBlockM, w.s_q) - 1, m0);
  int lo_first, hi_first, lo_last, hi_last;
  key_range(m0, w.s_q, w.s_k, p.window_left, p.window_right, &lo_first, &hi_first);
  key_range(last, w.s_q, w.s_k, p.window_left, p.window_right, &lo_last, &hi_last);
  KeyBlocks kb;
  kb.n_begin = lo_first / Tile::kBlockN;
  kb.n_end = hi_last > lo_first ? (hi_last + Tile::kBlockN - 1) / Tile::kBlockN : kb.n_begin;
  kb.full_lo = lo_last;
  kb.full_hi = hi_first;
  return kb;
}

// ---- producer -----------------------------------------------------------------------------
// Per work tile: Q once the consumers have released the previous tile's Q, then K and V of each
// key block, newest first, into the ring as slots free up. Tiles without keys load nothing.
template <typename Tile>
__device__ __forceinline__ void produce(const FwdParams& p, const FwdSmem<Tile>& sm) {
  tma_prefetch_map(&p.tma_q);
  tma_prefetch_map(&p.tma_k);
  tma_prefetch_map(&p.tma_v);
  int it = 0, q_round = 0;
  for (int t = blockIdx.x; t < p.tiles; t += gridDim.x) {
    const WorkTile w = work_tile(p, t);
    const KeyBlocks kb = key_blocks<Tile>(p, w);
    if (kb.empty()) continue;
    const int head_k = w.head / p.group;
    mbar_wait(sm.q_empty(), (q_round & 1) ^ 1);
    mbar_arrive_expect_tx(sm.q_full(), Tile::kQBytes);
#pragma unroll
    for (int c = 0; c < Tile::kPanels; ++c) {
      tma_load_4d(sm.q + c * Tile::kQPanelBytes, &p.tma_q, sm.q_full(), Tile::kPanelElems * c, w.q0 + w.m0, w.head, w.batch);
    }
    for (int n = kb.n_end - 1; n >= kb.n_begin; --n, ++it) {
      const int s = stage_of<Tile>(it);
      const uint32_t free_parity = parity_of<Tile>(it) ^ 1;
      mbar_wait(sm.k_empty(s), free_parity);
      mbar_arrive_expect_tx(sm.k_full(s), Tile::kKVBytes);
#pragma unroll
      for (int c = 0; c < Tile::kPanels; ++c) {
        tma_load_4d(sm.k_stage(s) + c * Tile::kKVPanelBytes, &p.tma_k, sm.k_full(s), Tile::kPanelElems * c, w.k0 + n * Tile::kBlockN,
                    head_k, w.batch);
      }
      mbar_wait(sm.v_empty(s), free_parity);
      mbar_arrive_expect_tx(sm.v_full(s), Tile::kVBytes);
      if constexpr (Tile::kFp8) {  // Vᵀ: keys innermost, all D rows in one box
        tma_load_4d(sm.v_stage(s), &p.tma_v, sm.v_full(s), w.k0 + n * Tile::kBlockN, 0, head_k, w.batch);
      } else {
#pragma unroll
        for (int c = 0; c < Tile::kPanels; ++c) {
          tma_load_4d(sm.v_stage(s) + c * Tile::kKVPanelBytes, &p.tma_v, sm.v_full(s), 64 * c, w.k0 + n * Tile::kBlockN, head_k,
                      w.batch);
        }
      }
    }
    ++q_round;
  }
}

// ---- consumers ----------------------------------------------------------------------------
// Every consumer warp arrives once on an empty barrier (count kConsumerWarps) after its own
// wgmma reading that slot have completed.
__device__ __forceinline__ void release(uint32_t bar, int lane) {
  __syncwarp();
  if (lane == 0) mbar_arrive(bar);
}

// Pingpong turn-taking between the two consumer warpgroups: warpgroup w waits on barrier 1 + w
// before issuing its wgmma and then lets the other one go. Warpgroup 0 starts (warpgroup 1 arrives
// once up front) and takes one last turn at the end, so every bar.sync meets its bar.arrive.
template <typename Tile>
struct Turns {
  int wg;
  __device__ __forceinline__ void wait_mine() const {
    if constexpr (Tile::kPingpong) named_barrier_sync(1 + wg, 2 * kWarpgroupThreads);
  }
  __device__ __forceinline__ void pass() const {
    if constexpr (Tile::kPingpong) named_barrier_arrive(2 - wg, 2 * kWarpgroupThreads);
  }
};

// The score scale, O factor and LSE terms of one (batch, head): the softmax scale alone, or for
// e4m3 operands times the descales (null pointers meaning 1), with P's exp2 offset.
template <typename Tile>
__device__ __forceinline__ OutScale tile_scale(const FwdParams& p, int batch, int head) {
  OutScale os{p.scale, p.scale_log2, 1.f, 0.f};
  if constexpr (Tile::kFp8) {
    const int bh = batch * p.h + head, bhk = batch * (p.h / p.group) + head / p.group;
    const float qk = (p.q_descale ? p.q_descale[bh] : 1.f) * (p.k_descale ? p.k_descale[bhk] : 1.f);
    os.lse_scale = p.scale * qk;
    os.scale_log2 = p.scale_log2 * qk;
    os.o_mul = p.v_descale ? p.v_descale[bhk] : 1.f;
    os.lse_shift = kFp8PLog2 * kLn2;
  }
  return os;
}

// One work tile of one consumer warpgroup. `it` is the ring counter (advanced past this tile's
// key blocks), q_round the number of earlier tiles that loaded Q.
template <typename Tile, typename Elem, typename Out>
__device__ __forceinline__ void consume_tile(const FwdParams& p, const FwdSmem<Tile>& sm, const WorkTile& w, int& it,
                                             int q_round) {
  const int m0 = w.m0, head = w.head, batch = w.batch;  // batch: 0 in varlen (which takes no e4m3)
  const KeyBlocks kb = key_blocks<Tile>(p, w);
  constexpr int D = Tile::kHeadDim, N = Tile::kBlockN;
  constexpr int kS = N / 2, kO = D / 2;  // accumulator registers per thread
  constexpr int kKeyStep = 32 / Tile::kElemBytes;          // keys per P·V wgmma
  constexpr int kQkSteps = Tile::kPanels * 4;              // 32-byte reduction steps of Q Kᵀ
  constexpr int kPLog2 = Tile::kFp8 ? kFp8PLog2 : 0;
  const int t = threadIdx.x - kWarpgroupThreads;
  const int wg = t / kWarpgroupThreads;  // 0 or 1: which 64 rows
  const int warp = (t % kWarpgroupThreads) / 32, lane = t % 32;
  // This thread's two rows. Kept as an expression of the thread index, not in registers across
  // the key loop (each register counts at d256; the rows are needed only at masked blocks and in
  // the epilogue).
  auto rows = [&](int (&row)[2]) {
    row[0] = m0 + wg * 64 + warp * 16 + lane / 4;
    row[1] = row[0] + 8;
  };

  SoftmaxState st;
  float o[kO];
#pragma unroll
  for (int i = 0; i < kO; ++i) o[i] = 0.f;
  if (kb.empty()) {  // no row of this tile sees a key
    int row[2];
    rows(row);
    store_output<Out>(p, o, st, tile_scale<Tile>(p, batch, head), w, row, lane);
    return;
  }

  const uint32_t q_rows = sm.q + wg * 64 * 128;  // this warpgroup's 64 rows inside each Q panel
  float s[kS];
  uint32_t pa[N / kKeyStep][4];
  float corr[2];
  const float scale_log2 = tile_scale<Tile>(p, batch, head).scale_log2;

  auto issue_qk = [&](int stage) {
    const uint32_t q_tile = opaque(q_rows), k_tile = opaque(sm.k_stage(stage));
    fence_operands(s);
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < kQkSteps; ++kk) {
      const uint64_t a = desc_k_major(q_tile, kk, Tile::kQPanelBytes), b = desc_k_major(k_tile, kk, Tile::kKVPanelBytes);
      if constexpr (Tile::kFp8) {
        Wgmma<N, Elem>::ss(s, a, b, kk > 0);
      } else {
        Wgmma<N, Elem>::template ss<0>(s, a, b, kk > 0);
      }
    }
    wgmma_commit();
  };
  auto issue_pv = [&](int stage) {
    const uint32_t v_tile = opaque(sm.v_stage(stage));
    fence_operands(o);
    fence_operands(pa);
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < N / kKeyStep; ++kk) {
      if constexpr (Tile::kFp8) {  // Vᵀ: K-major, one panel of kBlockN keys
        Wgmma<D, Elem>::rs(o, pa[kk], desc_k_major(v_tile, kk, Tile::kVBytes), 1);
      } else {
        Wgmma<D, Elem>::template rs<1>(o, pa[kk], desc_n_major(v_tile, kk, Tile::kKVPanelBytes), 1);
      }
    }
    wgmma_commit();
  };
  auto mask_if_needed = [&](int n) {
    const int k0 = n * N;
    if (k0 < kb.full_lo || k0 + N > kb.full_hi) {
      int row[2], lo[2], hi[2];
      rows(row);
#pragma unroll
      for (int r = 0; r < 2; ++r) key_range(row[r], w.s_q, w.s_k, p.window_left, p.window_right, &lo[r], &hi[r]);
      apply_mask(s, k0 + 2 * (lane % 4), lo, hi);
    }
  };

  const Turns<Tile> turns{wg};
  if (wg == 1) turns.pass();
  mbar_wait(sm.q_full(), q_round & 1);

  // First (newest) key block: S, softmax, P; nothing to overlap with yet.
  int n = kb.n_end - 1;
  mbar_wait(sm.k_full(stage_of<Tile>(it)), parity_of<Tile>(it));
  turns.wait_mine();
  issue_qk(stage_of<Tile>(it));
  turns.pass();
  wgmma_wait<0>();
  fence_operands(s);
  release(sm.k_empty(stage_of<Tile>(it)), lane);
  mask_if_needed(n);
  online_softmax<true, kPLog2>(s, st, scale_log2, corr);
  to_operand_a<Elem>(s, pa);

  for (--n, ++it; n >= kb.n_begin; --n, ++it) {
    const int cur = stage_of<Tile>(it), prev = stage_of<Tile>(it - 1);
    mbar_wait(sm.k_full(cur), parity_of<Tile>(it));
    mbar_wait(sm.v_full(prev), parity_of<Tile>(it - 1));
    turns.wait_mine();
    issue_qk(cur);
    issue_pv(prev);
    turns.pass();
    wgmma_wait<1>();  // S_j has landed; P_{j-1} V_{j-1} may still run
    fence_operands(s);
    release(sm.k_empty(cur), lane);
    mask_if_needed(n);
    online_softmax<false, kPLog2>(s, st, scale_log2, corr);
    wgmma_wait<0>();
    fence_operands(o);
    fence_operands(pa);
    release(sm.v_empty(prev), lane);
    rescale(o, corr);
    to_operand_a<Elem>(s, pa);
  }
  release(sm.q_empty(), lane);  // every S of this tile has landed: Q is free for the next tile
  const int last = stage_of<Tile>(it - 1);
  mbar_wait(sm.v_full(last), parity_of<Tile>(it - 1));
  turns.wait_mine();
  issue_pv(last);
  turns.pass();
  if (wg == 0) turns.wait_mine();  // matches warpgroup 1's last pass
  wgmma_wait<0>();
  fence_operands(o);
  release(sm.v_empty(last), lane);

  int row[2];
  rows(row);
  store_output<Out>(p, o, st, tile_scale<Tile>(p, batch, head), w, row, lane);
}

// grid: one block per work tile, or (persistent) fewer blocks that each take every
// gridDim.x-th tile, so one tile's epilogue overlaps the copies of the next.
//
// wgmma and setmaxnreg exist only in the sm_90a target. A build that also compiles this file for
// other targets (CMake's arch list applies to every source it globs) gets an empty body there;
// dispatch never launches it off capability 9.0, and a launch that did would trap, not misbehave.
// Elem: the operands' type (sm80::Bf16, sm80::Fp16 or E4m3); Out: the output's (Elem for 16-bit
// operands, sm80::Bf16 or sm80::Fp16 for e4m3).
template <typename Tile, typename Elem, typename Out = Elem>
__global__ void __launch_bounds__(Tile::kThreads, 1) fwd_kernel(const __grid_constant__ FwdParams p) {
#if defined(__CUDA_ARCH__) && !defined(__CUDA_ARCH_FEAT_SM90_ALL)
  __trap();
#else
  extern __shared__ uint8_t smem_raw[];
  const FwdSmem<Tile> sm((smem_addr(smem_raw) + 1023u) & ~1023u);

  if (threadIdx.x == 0) {
    mbar_init(sm.q_full(), 1);
    mbar_init(sm.q_empty(), Tile::kConsumerWarps);
    for (int s = 0; s < Tile::kStages; ++s) {
      mbar_init(sm.k_full(s), 1);
      mbar_init(sm.v_full(s), 1);
      mbar_init(sm.k_empty(s), Tile::kConsumerWarps);
      mbar_init(sm.v_empty(s), Tile::kConsumerWarps);
    }
    mbar_init_fence();
  }
  __syncthreads();

  if (warpgroup_index() == 0) {
    warpgroup_reg_dealloc<kProducerRegs>();
    if (threadIdx.x == 0) produce<Tile>(p, sm);
  } else {
    warpgroup_reg_alloc<kConsumerRegs>();
    int it = 0, q_round = 0;
    for (int t = blockIdx.x; t < p.tiles; t += gridDim.x) {
      const WorkTile w = work_tile(p, t);
      const int before = it;
      consume_tile<Tile, Elem, Out>(p, sm, w, it, q_round);
      q_round += it != before;  // tiles without keys load no Q
    }
  }
#endif
}

}  // namespace flashattn::sm90
