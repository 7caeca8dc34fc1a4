// bwd_kernel.cuh — the sm90 attention backward (wgmma + tensor copy engine).
//
//   preprocess  per 64 query rows: D_i = rowsum(dO_i∘O_i) as the diagonal of one wgmma O dOᵀ (the
//               same instruction and k order as the main kernel's dPᵀ = V dOᵀ, so where the
//               forward's row is one-hot and O_i is V_j bit for bit, dP_ij - D_i is exactly 0);
//               LSE into a padded workspace (+inf for rows that see no key); zeroes the dQ rows.
//   main        per (key block of 128, kv head, batch): K and V stay in shared memory, dK and dV
//               of this warpgroup's 64 keys in registers; for every (query head of the group,
//               query block of 64 the mask allows):
//                 Sᵀ  = K Qᵀ,  dPᵀ = V dOᵀ            wgmma, both operands from shared memory
//                 Pᵀ  = exp(round(Sᵀ·scale) - LSE),  dSᵀ = Pᵀ∘(dPᵀ - D)   in registers
//                 dV += Pᵀ dO,  dK += dSᵀ Q            wgmma, A from registers, B N-major
//                 dSᵀ → shared memory;  dQ_i += dS K   wgmma (A M-major), float32 atomics
//   convert     dq = scale · dQ accumulator, in the dtype.
// GQA: a main block loops over the h/h_k query heads sharing its kv head, so dK/dV are summed in
// registers in a fixed order. dQ's atomics make it non-deterministic in the last bits; the plan
// sends deterministic requests to the sm80 backward.
#pragma once

#include <cstdint>
#include <cuda.h>
#include <cuda_runtime.h>

#include "common/reduce.h"
#include "params.h"
#include "sm80/mma.h"
#include "sm90/bwd_params.h"
#include "sm90/fwd_softmax.h"
#include "sm90/mbarrier.h"
#include "sm90/tma.h"
#include "sm90/warpgroup.h"
#include "sm90/wgmma.h"

namespace flashattn::sm90 {

constexpr int kBwdProducerRegs = 24;
constexpr int kBwdConsumerRegs = 240;

// Makes this thread's generic-proxy shared-memory writes visible to the async proxy (wgmma).
__device__ __forceinline__ void fence_async_shared() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }

// Shared-memory layout of one main block (addresses in the shared window, and generic pointers
// for the plain loads and stores).
template <typename Tile>
struct BwdSmem {
  uint32_t base;
  uint8_t* ptr;
  __device__ __forceinline__ BwdSmem(uint32_t b, uint8_t* p) : base(b), ptr(p) {}
  __device__ __forceinline__ uint32_t k() const { return base + Tile::kOffK; }
  __device__ __forceinline__ uint32_t v() const { return base + Tile::kOffV; }
  __device__ __forceinline__ uint32_t q(int s) const { return base + Tile::kOffQ + s * Tile::kQBytes; }
  __device__ __forceinline__ uint32_t dout(int s) const { return base + Tile::kOffDO + s * Tile::kQBytes; }
  __device__ __forceinline__ uint32_t ds(int buf) const { return base + Tile::kOffDS + buf * Tile::kDSBytes; }
  __device__ __forceinline__ uint8_t* ds_ptr(int buf) const { return ptr + Tile::kOffDS + buf * Tile::kDSBytes; }
  __device__ __forceinline__ uint32_t lse(int s) const { return base + Tile::kOffLse + s * Tile::kRowFloatsBytes; }
  __device__ __forceinline__ const float* lse_ptr(int s) const {
    return reinterpret_cast<const float*>(ptr + Tile::kOffLse + s * Tile::kRowFloatsBytes);
  }
  __device__ __forceinline__ uint32_t delta(int s) const { return base + Tile::kOffDelta + s * Tile::kRowFloatsBytes; }
  __device__ __forceinline__ const float* delta_ptr(int s) const {
    return reinterpret_cast<const float*>(ptr + Tile::kOffDelta + s * Tile::kRowFloatsBytes);
  }
  __device__ __forceinline__ uint32_t kv_full() const { return base + Tile::kOffBars; }
  __device__ __forceinline__ uint32_t q_full(int s) const { return base + Tile::kOffBars + 8 * (1 + s); }
  __device__ __forceinline__ uint32_t q_empty(int s) const { return base + Tile::kOffBars + 8 * (1 + Tile::kStages + s); }
};

// The 1024-aligned base of the dynamic shared memory (the 128-byte swizzle's alignment).
__device__ __forceinline__ uint8_t* aligned_smem(uint8_t* raw) {
  const uint32_t a = smem_addr(raw);
  return raw + (((a + 1023u) & ~1023u) - a);
}

// The query blocks [m_begin, m_end) whose rows see some key of [n0, n1): a row i sees
// [i + off - wl, i + off + wr] ∩ [0, s_k) with off = s_k - s_q (params.h, key_range), both ends
// monotone in i.
struct QueryBlocks {
  int m_begin, m_end;
  __device__ __forceinline__ bool empty() const { return m_end <= m_begin; }
};
__device__ __forceinline__ QueryBlocks query_blocks(const BwdParams& p, int n0, int n1) {
  const long long off = static_cast<long long>(p.s_k) - p.s_q;
  long long lo = p.window_right < 0 ? 0 : n0 - off - p.window_right;
  long long hi = p.window_left < 0 ? p.s_q : n1 - off + p.window_left;
  lo = lo < 0 ? 0 : lo;
  hi = hi > p.s_q ? p.s_q : hi;
  QueryBlocks qb;
  qb.m_begin = static_cast<int>(lo / kBwdBlockM);
  qb.m_end = hi > lo ? static_cast<int>((hi + kBwdBlockM - 1) / kBwdBlockM) : qb.m_begin;
  return qb;
}

// The dQ accumulator of one (batch, head, query block) holds 64 x D floats in the order the main
// kernel's threads hold them: thread (warpgroup x, warp w, lane l) owns, for each 8-column block c
// of its kDq columns, the float4 {row 16w + l/4: columns 8c + 2(l%4) + {0,1}; row + 8: the same}
// of columns x·kDq + 8c + ... (x = 0 when every warpgroup adds all columns).
template <int kDq>
__device__ __forceinline__ int dq_frag_index(int x, int warp, int c, int lane) {
  return ((x * 4 + warp) * (kDq / 8) + c) * 32 + lane;
}

// ---- preprocess -------------------------------------------------------------------------------
// grid (s_q_pad / 64, h, b), one warpgroup. Shared memory: O and dO tiles (D/64 panels of 64 rows)
// and one barrier.
template <int D>
constexpr int bwd_preprocess_smem() {
  return 2 * (D / 64) * kBwdBlockM * 128 + 8 + 1024;
}

template <typename Elem, int D>
__global__ void __launch_bounds__(kWarpgroupThreads, 1) bwd_preprocess_kernel(const __grid_constant__ BwdParams p) {
#if defined(__CUDA_ARCH__) && !defined(__CUDA_ARCH_FEAT_SM90_ALL)
  __trap();
#else
  constexpr int kPanelBytes = kBwdBlockM * 128, kTileBytes = (D / 64) * kPanelBytes;
  extern __shared__ uint8_t smem_raw[];
  const uint32_t base = smem_addr(aligned_smem(smem_raw));
  const uint32_t o_tile = base, do_tile = base + kTileBytes, bar = base + 2 * kTileBytes;
  const int m0 = blockIdx.x * kBwdBlockM, head = blockIdx.y, batch = blockIdx.z;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;

  // Blocks past s_q load the copy engine's zero fill and find D = 0 (they write padding only).
  float acc[32];
  if (threadIdx.x == 0) {
    mbar_init(bar, 1);
    mbar_init_fence();
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    mbar_arrive_expect_tx(bar, 2 * kTileBytes);
#pragma unroll
    for (int c = 0; c < D / 64; ++c) {
      tma_load_4d(o_tile + c * kPanelBytes, &p.tma_o, bar, 64 * c, m0, head, batch);
      tma_load_4d(do_tile + c * kPanelBytes, &p.tma_do, bar, 64 * c, m0, head, batch);
    }
  }
  mbar_wait(bar, 0);
  fence_operands(acc);
  wgmma_fence();
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
    Wgmma<64, Elem>::template ss<0>(acc, desc_k_major(o_tile, kk, kPanelBytes), desc_k_major(do_tile, kk, kPanelBytes), kk > 0);
  }
  wgmma_commit();
  wgmma_wait<0>();
  fence_operands(acc);

  // Entry (i, i) of the 64 x 64 product: row i = 16 warp + l/4 (+ 8) sits in column block i / 8 at
  // column 2 (l % 4) + e, so lane l with l % 4 == (l / 4) / 2 holds it, element e = (l / 4) & 1.
  const int g = lane / 4;
  if (lane % 4 == g / 2) {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int row = m0 + warp * 16 + g + 8 * r;
      const int64_t i = (static_cast<int64_t>(batch) * p.h + head) * p.s_q_pad + row;
      const bool in = row < p.s_q;
      const float lse = in ? p.lse[(static_cast<int64_t>(batch) * p.h + head) * p.s_q + row] : kNegInf;
      float diag = 0.f;  // acc[4 (2 warp + r) + 2 r + (g & 1)], picked with constant indices
#pragma unroll
      for (int w = 0; w < 4; ++w) {
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          if (w == warp && e == (g & 1)) diag = acc[4 * (2 * w + r) + 2 * r + e];
        }
      }
      p.delta[i] = in ? diag : 0.f;
      // A row that sees no key has LSE -inf; +inf here makes every P of it exp(-inf) = 0 (NaN stays NaN).
      p.lse2[i] = lse == kNegInf ? __int_as_float(0x7f800000) : lse;
    }
  }

  // The dQ accumulator rows of this block start at zero.
  float4* acc_rows = reinterpret_cast<float4*>(p.dq_acc + ((static_cast<int64_t>(batch) * p.h + head) * p.s_q_pad + m0) * D);
  for (int i = threadIdx.x; i < kBwdBlockM * D / 4; i += kWarpgroupThreads) acc_rows[i] = make_float4(0.f, 0.f, 0.f, 0.f);
#endif
}

// ---- main kernel: producer ----------------------------------------------------------------------
template <typename Tile>
__device__ __forceinline__ void bwd_produce(const BwdParams& p, const BwdSmem<Tile>& sm, int n0, int head_k, int batch,
                                            const QueryBlocks& qb) {
  tma_prefetch_map(&p.tma_q);
  tma_prefetch_map(&p.tma_do);
  mbar_arrive_expect_tx(sm.kv_full(), 2 * Tile::kKVBytes);
#pragma unroll
  for (int c = 0; c < Tile::kPanels; ++c) {
    tma_load_4d(sm.k() + c * Tile::kKVPanelBytes, &p.tma_k, sm.kv_full(), 64 * c, n0, head_k, batch);
    tma_load_4d(sm.v() + c * Tile::kKVPanelBytes, &p.tma_v, sm.kv_full(), 64 * c, n0, head_k, batch);
  }
  int it = 0;
  for (int gi = 0; gi < p.group; ++gi) {
    const int head = head_k * p.group + gi;
    const int64_t rows = (static_cast<int64_t>(batch) * p.h + head) * p.s_q_pad;
    for (int m = qb.m_begin; m < qb.m_end; ++m, ++it) {
      const int s = stage_of<Tile>(it);
      mbar_wait(sm.q_empty(s), parity_of<Tile>(it) ^ 1);
      mbar_arrive_expect_tx(sm.q_full(s), 2 * Tile::kQBytes + 2 * Tile::kRowFloatsBytes);
      const int m0 = m * Tile::kBlockM;
#pragma unroll
      for (int c = 0; c < Tile::kPanels; ++c) {
        tma_load_4d(sm.q(s) + c * Tile::kQPanelBytes, &p.tma_q, sm.q_full(s), 64 * c, m0, head, batch);
        tma_load_4d(sm.dout(s) + c * Tile::kQPanelBytes, &p.tma_do, sm.q_full(s), 64 * c, m0, head, batch);
      }
      bulk_load(sm.lse(s), p.lse2 + rows + m0, Tile::kRowFloatsBytes, sm.q_full(s));
      bulk_load(sm.delta(s), p.delta + rows + m0, Tile::kRowFloatsBytes, sm.q_full(s));
    }
  }
}

// ---- main kernel: consumers ---------------------------------------------------------------------
// Whether a query i sees key j (window normalized: < 0 unbounded; off = s_k - s_q).
__device__ __forceinline__ bool bwd_visible(int i, int j, int s_k, int off, int wl, int wr) {
  return j < s_k && (wl < 0 || j >= i + off - wl) && (wr < 0 || j <= i + off + wr);
}

// Stores a (64 x D) fp32 accumulator (rows key0 + 16 warp + l/4 (+8)) times `mul` as dtype rows.
template <typename Elem, int kN>
__device__ __forceinline__ void store_rows(void* base, int64_t batch_stride, int64_t row_stride, int64_t head_stride,
                                           int batch, int head, int key0, int s_k, int d, const float (&acc)[kN],
                                           float mul, int warp, int lane) {
  using T = typename Elem::T;
  T* const bh = static_cast<T*>(base) + batch * batch_stride + head * head_stride;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int row = key0 + warp * 16 + lane / 4 + 8 * r;
    if (row >= s_k) continue;
    T* const out = bh + static_cast<int64_t>(row) * row_stride;
#pragma unroll
    for (int c = 0; c < kN / 4; ++c) {
      const int col = c * 8 + 2 * (lane % 4);
      if (col < d) *reinterpret_cast<uint32_t*>(out + col) = sm80::pack2<Elem>(acc[4 * c + 2 * r] * mul, acc[4 * c + 2 * r + 1] * mul);
    }
  }
}

template <typename Tile, typename Elem>
__device__ __forceinline__ void bwd_consume(const BwdParams& p, const BwdSmem<Tile>& sm, int n0, int head_k, int batch,
                                            const QueryBlocks& qb) {
  constexpr int D = Tile::kHeadDim;
  constexpr int kDq = Tile::kDqCols;
  const int t = threadIdx.x - kWarpgroupThreads;
  const int wg = t / kWarpgroupThreads;  // which 64 keys of the block
  const int warp = (t % kWarpgroupThreads) / 32, lane = t % 32;
  const int key_w = n0 + wg * 64;  // this warpgroup's first key
  const int off = p.s_k - p.s_q;

  float dv[D / 2], dk[D / 2];
#pragma unroll
  for (int i = 0; i < D / 2; ++i) dv[i] = dk[i] = 0.f;

  if (!qb.empty()) {
    const uint32_t k_rows = sm.k() + wg * 64 * 128, v_rows = sm.v() + wg * 64 * 128;
    mbar_wait(sm.kv_full(), 0);
    int it = 0;
    for (int gi = 0; gi < p.group; ++gi) {
      const int head = head_k * p.group + gi;
      for (int m = qb.m_begin; m < qb.m_end; ++m, ++it) {
        const int s = stage_of<Tile>(it);
        const int m0 = m * Tile::kBlockM;
        mbar_wait(sm.q_full(s), parity_of<Tile>(it));

        // Sᵀ = K Qᵀ and dPᵀ = V dOᵀ (64 keys x 64 queries each), two commit groups: P is formed
        // while dPᵀ is still on the tensor cores, and dV = Pᵀ dO is issued before dPᵀ is waited on.
        float st[32], dpt[32];
        const uint32_t qt = opaque(sm.q(s)), dot = opaque(sm.dout(s));
        {
          const uint32_t kt = opaque(k_rows), vt = opaque(v_rows);
          fence_operands(st);
          fence_operands(dpt);
          wgmma_fence();
#pragma unroll
          for (int kk = 0; kk < D / 16; ++kk) {
            Wgmma<64, Elem>::template ss<0>(st, desc_k_major(kt, kk, Tile::kKVPanelBytes), desc_k_major(qt, kk, Tile::kQPanelBytes), kk > 0);
          }
          wgmma_commit();
#pragma unroll
          for (int kk = 0; kk < D / 16; ++kk) {
            Wgmma<64, Elem>::template ss<0>(dpt, desc_k_major(vt, kk, Tile::kKVPanelBytes), desc_k_major(dot, kk, Tile::kQPanelBytes), kk > 0);
          }
          wgmma_commit();
          wgmma_wait<1>();
          fence_operands(st);
        }

        // Pᵀ in place. Element i: key key_w + 16 warp + l/4 + 8 ((i % 4) / 2), query
        // m0 + 8 (i / 4) + 2 (l % 4) + (i & 1). Only tiles that cut the window or reach past s_k
        // pay for the element mask; rows past s_q have LSE +inf (P = 0) from the preprocess.
        const float* lse = sm.lse_ptr(s);
        const float* dl = sm.delta_ptr(s);
        {
          const int last = min(m0 + Tile::kBlockM, p.s_q) - 1;
          const bool masked = key_w + 64 > p.s_k || (p.window_left >= 0 && key_w < last + off - p.window_left) ||
                              (p.window_right >= 0 && key_w + 63 > m0 + off + p.window_right);
#pragma unroll
          for (int i = 0; i < 32; i += 2) {
            const int qc = 8 * (i / 4) + 2 * (lane % 4);
            const float2 l2 = *reinterpret_cast<const float2*>(lse + qc);
            float pr[2];
            pr[0] = fast_exp2((__fmul_rn(st[i], p.scale) - l2.x) * kLog2e);
            pr[1] = fast_exp2((__fmul_rn(st[i + 1], p.scale) - l2.y) * kLog2e);
            if (masked) {
              const int key = key_w + warp * 16 + lane / 4 + 8 * ((i % 4) / 2);
#pragma unroll
              for (int e = 0; e < 2; ++e) {
                if (!bwd_visible(m0 + qc + e, key, p.s_k, off, p.window_left, p.window_right)) pr[e] = 0.f;
              }
            }
            st[i] = pr[0];
            st[i + 1] = pr[1];
          }
        }

        // dV += Pᵀ dO (64 keys x D, k = 64 queries), behind dPᵀ.
        {
          uint32_t pa[4][4];
          to_operand_a<Elem>(st, pa);
          fence_operands(dv);
          fence_operands(pa);
          wgmma_fence();
#pragma unroll
          for (int kk = 0; kk < 4; ++kk) {
            Wgmma<D, Elem>::template rs<1>(dv, pa[kk], desc_n_major(dot, kk, Tile::kQPanelBytes), 1);
          }
          wgmma_commit();
          wgmma_wait<1>();  // dPᵀ has landed; dV may still run
          fence_operands(dpt);
          fence_operands(pa);
        }

        // dSᵀ = Pᵀ∘(dPᵀ - D), then dK += dSᵀ Q behind dV.
        uint32_t da[4][4];
#pragma unroll
        for (int i = 0; i < 32; i += 2) {
          const float2 d2 = *reinterpret_cast<const float2*>(dl + 8 * (i / 4) + 2 * (lane % 4));
          dpt[i] = st[i] * (dpt[i] - d2.x);
          dpt[i + 1] = st[i + 1] * (dpt[i + 1] - d2.y);
        }
        to_operand_a<Elem>(dpt, da);
        fence_operands(dk);
        fence_operands(da);
        wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < 4; ++kk) {
          Wgmma<D, Elem>::template rs<1>(dk, da[kk], desc_n_major(qt, kk, Tile::kQPanelBytes), 1);
        }
        wgmma_commit();

        // dSᵀ into shared memory: row = key (of the block), 64 queries = 128 bytes, 16-byte chunks
        // swizzled by row % 8 (the copy engine's 128-byte swizzle, which the descriptors expect).
        // da[kk][2 h + r] holds row 16 warp + l/4 + 8 r, queries 16 kk + 8 h + 2 (l % 4) + {0, 1}.
        const int buf = it & 1;
        {
          uint8_t* ds = sm.ds_ptr(buf);
#pragma unroll
          for (int kk = 0; kk < 4; ++kk) {
#pragma unroll
            for (int hh = 0; hh < 2; ++hh) {
#pragma unroll
              for (int r = 0; r < 2; ++r) {
                const int row = wg * 64 + warp * 16 + lane / 4 + 8 * r;
                const int chunk = 2 * kk + hh;
                *reinterpret_cast<uint32_t*>(ds + row * 128 + ((chunk ^ (row & 7)) << 4) + 4 * (lane % 4)) = da[kk][2 * hh + r];
              }
            }
          }
        }
        fence_async_shared();
        named_barrier_sync(1, Tile::kConsumerWarpgroups * kWarpgroupThreads);

        // dQ (64 queries x kDq columns) = dS K: A = dS, M-major (rows of dSᵀ are keys); B = K,
        // N-major. D >= 128 (kDqSplitCols): this warpgroup's 64 columns (K's panel wg) over all
        // kBlockN keys; D = 64: all columns over this warpgroup's own 64 keys (rows 64 wg of dS and
        // K; the two partials meet in the accumulator).
        float dq[kDq / 2];
        {
          const uint32_t dst = opaque(sm.ds(buf)), kt = opaque(sm.k());
          fence_operands(dq);
          wgmma_fence();
          constexpr int kKeySteps = (Tile::kDqSplitCols ? Tile::kBlockN : 64) / 16;
          const uint32_t ds_keys = Tile::kDqSplitCols ? dst : dst + wg * 64 * 128;
          const uint32_t k_part = kt + (Tile::kDqSplitCols ? wg * Tile::kKVPanelBytes : wg * 64 * 128);
#pragma unroll
          for (int kk = 0; kk < kKeySteps; ++kk) {
            Wgmma<kDq, Elem>::template ss<1, 1>(dq, desc_n_major(ds_keys, kk, Tile::kDSBytes),
                                                 desc_n_major(k_part, kk, Tile::kKVPanelBytes), kk > 0);
          }
          wgmma_commit();
          wgmma_wait<0>();  // dV, dK and dQ have landed: Q, dO (and this dS buffer) are free
          fence_operands(dv);
          fence_operands(dk);
          fence_operands(dq);
          fence_operands(da);
        }
        // Every consumer thread arrives (count = consumer threads), so the release is each
        // thread's own and compute-sanitizer's racecheck can follow it.
        mbar_arrive(sm.q_empty(s));

        // dQ += this block's part: float32 reductions of 4 floats, in the accumulator's fragment
        // order (dq_frag_index), so a warp's instruction covers 512 contiguous bytes. Query
        // blocks past s_q add nothing.
        if (m0 < p.s_q) {
          float4* acc = reinterpret_cast<float4*>(p.dq_acc + ((static_cast<int64_t>(batch) * p.h + head) * p.s_q_pad + m0) * D);
          const int wgx = Tile::kDqSplitCols ? wg : 0;
#pragma unroll
          for (int c = 0; c < kDq / 8; ++c) {
            atomicAdd(acc + dq_frag_index<kDq>(wgx, warp, c, lane), make_float4(dq[4 * c], dq[4 * c + 1], dq[4 * c + 2], dq[4 * c + 3]));
          }
        }
      }
    }
  }

  store_rows<Elem>(p.dk, p.dk_batch, p.dk_row, p.dk_head, batch, head_k, key_w, p.s_k, p.d, dk, p.scale, warp, lane);
  store_rows<Elem>(p.dv, p.dv_batch, p.dv_row, p.dv_head, batch, head_k, key_w, p.s_k, p.d, dv, 1.f, warp, lane);
}

// grid (ceil(s_k / 128), h_k, b): key blocks in order, so under a causal mask (bottom-right) the
// blocks with the most query blocks start first.
template <typename Tile, typename Elem>
__global__ void __launch_bounds__(Tile::kThreads, 1) bwd_main_kernel(const __grid_constant__ BwdParams p) {
#if defined(__CUDA_ARCH__) && !defined(__CUDA_ARCH_FEAT_SM90_ALL)
  __trap();
#else
  extern __shared__ uint8_t smem_raw[];
  uint8_t* const aligned = aligned_smem(smem_raw);
  const BwdSmem<Tile> sm(smem_addr(aligned), aligned);
  const int n0 = blockIdx.x * Tile::kBlockN, head_k = blockIdx.y, batch = blockIdx.z;
  const QueryBlocks qb = query_blocks(p, n0, min(n0 + Tile::kBlockN, p.s_k));

  if (threadIdx.x == 0) {
    mbar_init(sm.kv_full(), 1);
    for (int s = 0; s < Tile::kStages; ++s) {
      mbar_init(sm.q_full(s), 1);
      mbar_init(sm.q_empty(s), Tile::kConsumerWarpgroups * kWarpgroupThreads);
    }
    mbar_init_fence();
  }
  __syncthreads();

  if (warpgroup_index() == 0) {
    warpgroup_reg_dealloc<kBwdProducerRegs>();
    if (threadIdx.x == 0 && !qb.empty()) bwd_produce<Tile>(p, sm, n0, head_k, batch, qb);
  } else {
    warpgroup_reg_alloc<kBwdConsumerRegs>();
    bwd_consume<Tile, Elem>(p, sm, n0, head_k, batch, qb);
  }
#endif
}

// ---- convert -------------------------------------------------------------------------------------
// grid (s_q_pad / 64, h, b), one warpgroup: dq = scale · accumulator (fragment order, above) for
// rows < s_q and columns < d.
template <typename Elem, int D, int kDq>
__global__ void __launch_bounds__(kWarpgroupThreads) bwd_dq_convert_kernel(const __grid_constant__ BwdParams p) {
  using T = typename Elem::T;
  const int m0 = blockIdx.x * kBwdBlockM, head = blockIdx.y, batch = blockIdx.z;
  const float4* acc = reinterpret_cast<const float4*>(p.dq_acc + ((static_cast<int64_t>(batch) * p.h + head) * p.s_q_pad + m0) * D);
  T* const dq = static_cast<T*>(p.dq) + batch * p.dq_batch + head * p.dq_head;
  for (int f = threadIdx.x; f < kBwdBlockM * D / 4; f += kWarpgroupThreads) {
    const int lane = f % 32, c = (f / 32) % (kDq / 8), warp = (f / (32 * (kDq / 8))) % 4, x = f / (128 * (kDq / 8));
    const int row = warp * 16 + lane / 4, col = x * kDq + 8 * c + 2 * (lane % 4);
    if (col >= p.d) continue;
    const float4 v = acc[f];
    if (m0 + row < p.s_q) {
      *reinterpret_cast<uint32_t*>(dq + static_cast<int64_t>(m0 + row) * p.dq_row + col) = sm80::pack2<Elem>(v.x * p.scale, v.y * p.scale);
    }
    if (m0 + row + 8 < p.s_q) {
      *reinterpret_cast<uint32_t*>(dq + static_cast<int64_t>(m0 + row + 8) * p.dq_row + col) = sm80::pack2<Elem>(v.z * p.scale, v.w * p.scale);
    }
  }
}

}  // namespace flashattn::sm90
