// decode_tile.h — the compile-time shape of one split-KV decode CTA, and the per-launch values
// the host derives from DecodeParams.
//
// A CTA owns (one query tile, one split of the context, one (batch row, KV head)). Its query tile
// packs the h/h_k query heads that share the KV head and the s_q query tokens into rows
//   r = i * group + g        (i: query token, g: head within the group; hq = hk * group + g)
// so every K/V byte is read once per group. Four warps form a WM × WN grid: WM warps over 16-row
// slices of the tile, WN warps over the keys of each stage (WN = 4 / WM). WM = 1 (16 rows, four
// warps splitting every 64-key stage) is the decode case; WM = 4 (64 rows) serves large groups and
// speculative decoding.
//
// Deep: the same tile with a 6-stage ring (five 64-key stages in flight, 200 KB of shared memory
// at d128) for grids of at most one CTA per SM (b1 decode with the one-CTA-per-SM split rule),
// where each CTA streams only a few key blocks and the copies in flight per SM set the pace.
#pragma once

#include <cstddef>
#include <cstdint>

namespace flashattn::decode {

template <int D, int WM, bool Deep = false>
struct DecodeTile {
  static_assert(D == 64 || D == 128 || D == 256, "head dims 64, 128, 256");
  static_assert(WM == 1 || WM == 4, "1 or 4 warps along the query rows");
  static constexpr int kD = D;
  static constexpr int kThreads = 128;
  static constexpr int kWM = WM;
  static constexpr int kWN = 4 / WM;
  static constexpr int kBlockM = 16 * WM;            // packed query rows per CTA
  // Keys per pipeline stage. d256 with 64 rows holds O (128 floats) and S per thread; 32 keys a
  // stage keep it within 255 registers without spills.
  static constexpr int kBlockN = (D == 256 && WM == 4) ? 32 : 64;
  static constexpr int kWarpN = kBlockN / kWN;       // keys per warp per stage (16 or 64)
  static_assert(kWarpN % 16 == 0, "P·V takes keys 16 at a time");
  // Enough bytes in flight per SM for HBM3e at 2 CTAs/SM (d <= 128), 1 CTA/SM at d256.
  static constexpr int kStages = Deep ? 6 : (D == 64 ? 4 : (D == 128 ? 3 : (kBlockN == 32 ? 3 : 2)));
  static constexpr int kChunks = D / 8;                  // 16-byte chunks per row
  static constexpr int kRowsPerPass = kThreads / kChunks;  // rows one pass of 128 threads copies
  static constexpr int kLoadRows = kBlockN / kRowsPerPass;  // K (and V) rows per thread per stage
  static constexpr int kTileElems = kBlockN * D;
  static constexpr int kQElems = kBlockM * D;
  // Epilogue (reuses the stage buffers): O per key-warp, row stride D + 8 floats (bank spread).
  static constexpr int kOStride = D + 8;
  static constexpr size_t kEpilogueBytes = (size_t(kWN) * kBlockM * kOStride + 2 * kWN * kBlockM) * 4;
  static constexpr size_t kStageBytes = size_t(kStages) * 2 * kTileElems * 2;
  // The fused combine's shared memory (the stage buffers again): merge_smem_bytes of the tile's
  // rows and splits must fit, else it merges with combine_splits (one split after another).
  static constexpr size_t kMergeBytes = kEpilogueBytes > kStageBytes ? kEpilogueBytes : kStageBytes;
  // Paged caches: a ring of kTableRing stages' (physical block, row within it) per key row, looked
  // up kTableAhead iterations before the copies that use them, so the block-table reads' latency
  // never stalls the copy pipeline (and each row is looked up once, not by every thread).
  static constexpr int kTableRing = 8;
  static constexpr int kTableAhead = kTableRing - kStages + 1;
  static constexpr size_t kTableBytes = size_t(kTableRing) * kBlockN * 2 * 4;
  static constexpr size_t kSmemBytes =
      size_t(kQElems) * 2 + kMergeBytes + kTableBytes;
  // CTAs per SM the heuristic assumes (shared memory allows it; registers are checked by ptxas -v).
  static constexpr int kCtasPerSm = (D == 256 || Deep) ? 1 : 2;
};

// Values the host derives once per launch.
struct DecodeLaunch {
  int m_total = 0;      // packed rows per (batch row, KV head): s_q * group
  int group = 0;        // h / h_k
  int num_splits = 1;
  float scale_log2 = 0;  // scale * log2(e): scores go through exp2
  float* o_ws = nullptr;    // (splits, b * h_k, m_total, d) float32, when num_splits > 1
  float* lse_ws = nullptr;  // (splits, b * h_k, m_total) float32, natural log
  // Fused combine (split_kernel.cuh): (b * h_k, query tiles) arrival counts, zero before the launch
  // and left zero after it (decode.cu); null: combine_kernel merges the splits instead.
  int* counters = nullptr;
  // The deep-pipeline tile may serve grids of at most one CTA per SM (FLASHATTN_DECODE_DEEP, decode.cu).
  bool deep_ok = false;
  uint16_t* q_rot = nullptr;  // rotary: q rotated, contiguous (b, s_q, h, d), q's dtype
};

}  // namespace flashattn::decode
