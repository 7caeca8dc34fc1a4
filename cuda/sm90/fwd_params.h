// fwd_params.h — what the sm90 forward kernel reads, and the tile shapes it is built for.
#pragma once

#include <cstdint>
#include <cuda.h>

namespace flashattn::sm90 {

// Sequences one varlen launch schedules (the table below lives in the kernel's parameters).
constexpr int kVarlenMaxSeqs = 256;

// Built from AttnParams on the host (fwd_launch.cu). Passed as one __grid_constant__ parameter,
// so the tensor maps stay in parameter space, where the copy engine reads them.
struct FwdParams {
  CUtensorMap tma_q;  // (d, s_q, h,   b) in elements, box (64, 128, 1, 1), 128B swizzle
  CUtensorMap tma_k;  // (d, s_k, h_k, b), box (64, kBlockN, 1, 1)
  CUtensorMap tma_v;  // (d, s_k, h_k, b), box (64, kBlockN, 1, 1)
  void* o;            // (b, s_q, h, d)
  float* lse;         // (b, h, s_q)
  int64_t o_batch, o_row, o_head;  // strides in elements
  int s_q, s_k, h, d;
  int group;  // h / h_k
  int m_blocks;  // ceil(s_q / 128): query tiles per (batch, head)
  int tiles;     // m_blocks · h · b
  int window_left, window_right;
  float scale;       // natural units, for the LSE
  float scale_log2;  // scale · log2(e)

  // Varlen (cu_q non-null): the maps are (d, total, heads, 1), s_q / s_k the totals, o packed
  // [total_q, h, d], lse [h, total_q]; m_blocks is not used. Tiles run sequence by sequence in
  // `order` (most work first); sequence order[i] owns tiles [tile_end[i - 1], tile_end[i]),
  // ceil(its s_q / 128) · h of them. Lengths and first rows come from the device offsets.
  const int32_t* cu_q;  // (b + 1) device
  const int32_t* cu_k;  // (b + 1) device
  int seqs;             // entries of order / tile_end: sequences with queries
  int32_t order[kVarlenMaxSeqs];
  int32_t tile_end[kVarlenMaxSeqs];
};

// One kernel's compile-time shape. Two consumer warpgroups own 64 query rows each of a 128-row
// tile; one producer warpgroup issues the copies. K and V go through kStages buffers each.
// kPingpong: the two consumer warpgroups take turns issuing their wgmma (two named barriers),
// so one warpgroup's softmax runs while the other's products occupy the tensor cores.
template <int kHeadDim_, int kBlockN_, int kStages_, bool kPingpong_ = true>
struct FwdTile {
  static constexpr int kHeadDim = kHeadDim_;  // compiled head dim D (runtime d <= D)
  static constexpr int kBlockM = 128;
  static constexpr int kBlockN = kBlockN_;
  static constexpr int kStages = kStages_;
  static constexpr bool kPingpong = kPingpong_;
  static constexpr int kConsumerWarpgroups = 2;
  static constexpr int kThreads = 128 * (1 + kConsumerWarpgroups);
  static constexpr int kConsumerWarps = 4 * kConsumerWarpgroups;

  static constexpr int kPanels = kHeadDim / 64;            // 64-column, 128-byte-swizzled panels
  static constexpr int kQPanelBytes = kBlockM * 128;
  static constexpr int kKVPanelBytes = kBlockN * 128;
  static constexpr int kQBytes = kPanels * kQPanelBytes;
  static constexpr int kKVBytes = kPanels * kKVPanelBytes;  // one K (or V) stage
  static constexpr int kOffK = kQBytes;
  static constexpr int kOffV = kOffK + kStages * kKVBytes;
  static constexpr int kOffBars = kOffV + kStages * kKVBytes;
  static constexpr int kBars = 2 + 4 * kStages;  // q_full, q_empty, k_full[], k_empty[], v_full[], v_empty[]
  // + 1024 so the kernel can round its base up to the swizzle's 1024-byte alignment.
  static constexpr int kSmemBytes = kOffBars + kBars * 8 + 1024;

  static_assert(kHeadDim % 64 == 0 && kHeadDim <= 256, "whole 64-column panels");
  static_assert(kBlockN % 16 == 0 && kBlockN <= 256, "P·V consumes 16 keys per wgmma");
  static_assert(kKVPanelBytes % 1024 == 0, "every panel 1024-byte aligned");
  static_assert(kSmemBytes <= 227 * 1024, "fits one SM's shared memory");
};

}  // namespace flashattn::sm90
