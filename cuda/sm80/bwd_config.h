// bwd_config.h — block shapes and warp layouts of the sm80 backward, one per kernel head dim.
//
// Two kernels do the gradients (bwd_kernel.h):
//   main: one block per (key block of Bc rows, kv head, batch); dK_j, dV_j live in registers, the
//         loop runs over the (query head of the group, query block of Br rows) pairs the window allows.
//   dq:   deterministic mode only; one block per (query block of BrQ rows, query head, batch), dQ_i
//         in registers, the loop runs over the key blocks of BcQ rows the window allows.
// Every block has 8 warps. Each of the five products of the main kernel is split over the 8 warps
// as a WM x (8/WM) grid of warp tiles; a warp tile is MT m16 tiles by NT n8 tiles of mma.sync.
// The shapes below were picked by timing alternatives (cuda/dev/bwd_variants.cu) on an H200.
#pragma once

#include <cstddef>

namespace flashattn::sm80::bwd {

constexpr int kWarps = 8;
constexpr int kThreads = kWarps * 32;
// Query rows of the float32 workspaces (LSE*log2e, D) are padded to a multiple of this, which
// every Br and BrQ below divides, so tile loads of them never need a bounds check.
constexpr int kRowPad = 128;
// Query rows per block of the deterministic dQ kernel: 8 warps of 16.
constexpr int kBrQ = kWarps * 16;

template <int kD_, int kBr_, int kBc_, int kWmS_, int kWmKV_, int kWmQ_, int kQParts_, int kBcQ_>
struct Config {
  static constexpr int kD = kD_;    // kernel head dim (runtime d <= kD; columns >= d are zero-filled)
  static constexpr int kBr = kBr_;  // query rows per step of the main kernel
  static constexpr int kBc = kBc_;  // key rows per main-kernel block

  // S = Q K^T and dP = dO V^T  (Br x Bc, k = D): warps kWmS along queries x kWnS along keys.
  static constexpr int kWmS = kWmS_, kWnS = kWarps / kWmS_;
  static constexpr int kMtS = kBr / kWmS / 16, kNtS = kBc / kWnS / 8;
  // dV = P^T dO and dK = dS^T Q  (Bc x D, k = Br): warps kWmKV along keys x kWnKV along d.
  static constexpr int kWmKV = kWmKV_, kWnKV = kWarps / kWmKV_;
  static constexpr int kMtKV = kBc / kWmKV / 16, kNtKV = kD / kWnKV / 8;
  // dQ = dS K  (Br x D, k = Bc): warps kWmQ along queries x kWnQ along d.
  static constexpr int kWmQ = kWmQ_, kWnQ = kWarps / kWmQ_;
  static constexpr int kMtQ = kBr / kWmQ / 16, kNtQ = kD / kWnQ / 8;
  // ... computed kQParts n tiles at a time (fewer live accumulators next to dK/dV at large d).
  static constexpr int kQParts = kQParts_, kNtQPart = kNtQ / kQParts_;

  // The deterministic dQ kernel: 8 warps of 16 query rows each, key blocks of kBcQ rows.
  static constexpr int kBcQ = kBcQ_;

  static_assert(kWmS * kWnS == kWarps && kWmKV * kWnKV == kWarps && kWmQ * kWnQ == kWarps, "warp grid");
  static_assert(kMtS * kWmS * 16 == kBr && kNtS * kWnS * 8 == kBc, "S warp tiles must cover Br x Bc");
  static_assert(kMtKV * kWmKV * 16 == kBc && kNtKV * kWnKV * 8 == kD, "dK/dV warp tiles must cover Bc x D");
  static_assert(kMtQ * kWmQ * 16 == kBr && kNtQ * kWnQ * 8 == kD, "dQ warp tiles must cover Br x D");
  static_assert(kNtQPart * kQParts == kNtQ && (kQParts == 1 || kNtQPart % 2 == 0), "dQ parts: even n tiles");
  static_assert(kD % 32 == 0 && kBc % 32 == 0 && kBcQ % 16 == 0, "tile widths the swizzle supports");
  static_assert(kRowPad % kBr == 0 && kRowPad % kBrQ == 0, "workspace row padding");

  // Dynamic shared memory of the main kernel with `stages` buffers of Q/dO/LSE/D:
  //   K, V (Bc x D) | stages x [Q, dO (Br x D)] | P, dS (Br x Bc) | stages x [LSE, D (Br floats)]
  static constexpr size_t main_smem(int stages) {
    return size_t(2) * kBc * kD * 2 + size_t(stages) * (2 * kBr * kD * 2 + 2 * kBr * 4) + size_t(2) * kBr * kBc * 2;
  }
  // The dq kernel: Q, dO (BrQ x D) | stages x [K, V (BcQ x D)].
  static constexpr size_t dq_smem(int stages) {
    return size_t(2) * kBrQ * kD * 2 + size_t(stages) * 2 * kBcQ * kD * 2;
  }
  // What the device must offer per block for this head dim to run at all (one stage each).
  static constexpr size_t min_smem() { return main_smem(1) > dq_smem(1) ? main_smem(1) : dq_smem(1); }
};

// Per head dim: CfgNN runs on every device the kernel head dim supports, and is what
// bwd_smem_bytes reports (one stage: d <= 128 fits sm86/89's 99 KB, all fit sm80's 163 KB);
// CfgNNBig, where there is one, is a faster shape used instead on devices with the shared memory
// for it (sm80: 163 KB, sm90: 227 KB). Measured in docs/perf-notes.md, "Backward (sm80)".
//                       D   Br   Bc WmS WmKV WmQ QParts BcQ    1 stage / 2 stages
using Cfg32     = Config<32, 128, 128, 4,  4,   4,  1,     64>;  //  97 KB / 114 KB
using Cfg64     = Config<64,  64, 128, 2,  4,   2,  1,     64>;  //  81 KB /  97 KB
using Cfg64Big  = Config<64, 128, 128, 4,  4,   4,  1,     64>;  // 129 KB / 162 KB
using Cfg96     = Config<96,  64,  64, 2,  4,   4,  1,     64>;  //  64 KB /  88 KB
using Cfg128    = Config<128, 64,  64, 2,  4,   2,  1,     32>;  //  81 KB / 113 KB
using Cfg128Big = Config<128, 64, 128, 2,  4,   2,  1,     32>;  // 129 KB / 161 KB
using Cfg192    = Config<192, 64,  64, 4,  2,   2,  3,     16>;  // 113 KB / 161 KB
using Cfg192Big = Config<192, 128, 64, 4,  2,   4,  3,     16>;  // 177 KB (one stage only)
using Cfg256    = Config<256, 64,  64, 4,  2,   2,  2,     16>;  // 145 KB / 209 KB
using Cfg256Big = Config<256, 128, 64, 4,  2,   4,  4,     16>;  // 225 KB (one stage only)

}  // namespace flashattn::sm80::bwd
