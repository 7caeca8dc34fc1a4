// bwd_params.h — what the sm90 backward kernels read, and the tile shapes they are built for.
#pragma once

#include <cstdint>
#include <cuda.h>

namespace flashattn::sm90 {

// Query rows per step of the main kernel, per block of the preprocess and convert kernels, and
// the row padding of the float32 workspaces (so no workspace load needs a bounds check).
constexpr int kBwdBlockM = 64;
constexpr int kBwdRowPad = 128;

// Rows of the float32 workspaces per (batch, head): s_q rounded up to kBwdRowPad.
inline int bwd_rows_padded(int s_q) { return (s_q + kBwdRowPad - 1) / kBwdRowPad * kBwdRowPad; }

// Built from AttnParams on the host (bwd_host.cu); one __grid_constant__ parameter.
struct BwdParams {
  CUtensorMap tma_q;   // (d, s_q, h,   b), box (64, kBwdBlockM)
  CUtensorMap tma_do;  // (d, s_q, h,   b), box (64, kBwdBlockM)
  CUtensorMap tma_k;   // (d, s_k, h_k, b), box (64, kBlockN)
  CUtensorMap tma_v;   // (d, s_k, h_k, b), box (64, kBlockN)
  CUtensorMap tma_o;   // (d, s_q, h,   b), box (64, kBwdBlockM): the preprocess's D = rowsum(dO∘O)
  const float* lse;    // (b, h, s_q) natural log, the forward's
  float* lse2;         // (b, h, s_q_pad) workspace: LSE, +inf for rows that see no key and padding
  float* delta;        // (b, h, s_q_pad) workspace: D_i = rowsum(dO_i∘O_i), 0 for padding rows
  float* dq_acc;       // (b, h, s_q_pad, D) workspace: dQ / scale, float32, row-major
  void* dq;            // (b, s_q, h,   d) dtype
  void* dk;            // (b, s_k, h_k, d) dtype
  void* dv;            // (b, s_k, h_k, d) dtype
  int64_t dq_batch, dq_row, dq_head;  // element strides
  int64_t dk_batch, dk_row, dk_head;
  int64_t dv_batch, dv_row, dv_head;
  int s_q, s_k, h, h_k, d;
  int group;     // h / h_k
  int s_q_pad;   // s_q rounded up to kBwdRowPad
  int window_left, window_right;  // normalized: < 0 unbounded
  float scale;       // natural units
  float scale_log2;  // scale · log2(e)
};

// One main-kernel shape. A block owns kBlockN keys of one (batch, kv head): two consumer
// warpgroups own 64 keys each (dK and dV of those keys in registers), one producer warpgroup
// loads K and V once and then, per step, 64 query rows of Q and dO (plus their LSE and D) into a
// kStages ring. dS goes through shared memory (two buffers) for dQ = dS K.
template <int kHeadDim_, int kStages_ = 2>
struct BwdTile {
  static constexpr int kHeadDim = kHeadDim_;
  static constexpr int kBlockM = kBwdBlockM;
  static constexpr int kBlockN = 128;
  static constexpr int kStages = kStages_;
  static constexpr int kConsumerWarpgroups = 2;
  static constexpr int kThreads = 128 * (1 + kConsumerWarpgroups);
  static constexpr int kConsumerWarps = 4 * kConsumerWarpgroups;
  // dQ = dS K (64 x D): at D >= 128 each consumer warpgroup computes 64 of its columns over all
  // kBlockN keys (both halves of dS); at D = 64 each computes a partial over its own 64 keys.
  static constexpr bool kDqSplitCols = kHeadDim >= 128;
  static constexpr int kDqCols = kDqSplitCols ? kHeadDim / kConsumerWarpgroups : kHeadDim;

  static constexpr int kPanels = kHeadDim / 64;
  static constexpr int kKVPanelBytes = kBlockN * 128;
  static constexpr int kQPanelBytes = kBlockM * 128;
  static constexpr int kKVBytes = kPanels * kKVPanelBytes;  // K (or V)
  static constexpr int kQBytes = kPanels * kQPanelBytes;    // Q (or dO) of one stage
  static constexpr int kDSBytes = kBlockN * kBlockM * 2;    // dSᵀ: kBlockN rows of 64 queries
  static constexpr int kRowFloatsBytes = kBlockM * 4;       // LSE (or D) of one stage

  static constexpr int kOffK = 0;
  static constexpr int kOffV = kOffK + kKVBytes;
  static constexpr int kOffQ = kOffV + kKVBytes;
  static constexpr int kOffDO = kOffQ + kStages * kQBytes;
  static constexpr int kOffDS = kOffDO + kStages * kQBytes;
  static constexpr int kOffLse = kOffDS + 2 * kDSBytes;
  static constexpr int kOffDelta = kOffLse + kStages * kRowFloatsBytes;
  static constexpr int kOffBars = kOffDelta + kStages * kRowFloatsBytes;
  static constexpr int kBars = 1 + 2 * kStages;  // kv_full, q_full[], q_empty[]
  static constexpr int kSmemBytes = kOffBars + kBars * 8 + 1024;

  static_assert(kHeadDim == 64 || kHeadDim == 128, "dK and dV of 64 keys x D live in registers: D <= 128");
  static_assert(kSmemBytes <= 227 * 1024, "fits one SM's shared memory");
};

}  // namespace flashattn::sm90
