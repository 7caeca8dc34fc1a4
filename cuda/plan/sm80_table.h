// sm80_table.h — what the plan needs to know about the sm80 (mma.sync) kernels, as plain C++.
//
// The forward's shared memory per tile lives in templates that need CUDA headers
// (sm80/fwd_launch.cuh), so it is written out here and sm80/fwd_launch.cu static_asserts that
// every entry equals the template's value: the two cannot drift apart. The backward's configs
// (sm80/bwd_config.h) are plain C++ and are read directly.
#pragma once

#include <cstddef>

#include "plan/plan.h"
#include "sm80/bwd_config.h"

namespace flashattn::plan::sm80 {

// Head dims with a compiled kernel; any d % 8 == 0 <= 256 runs on the next larger one.
constexpr int kHeadDims[] = {32, 64, 96, 128, 192, 256};

// The compiled head dim that runs head dim d, or 0 when none does.
constexpr int kernel_head_dim(int d) { return next_compiled_head_dim(d, kHeadDims); }

// Dynamic shared memory of one forward block: FwdConfig<hd>::{Full, Masked, Compact}::kSmemBytes.
constexpr size_t fwd_smem_bytes(int kernel_hd, Sm80Tile tile) {
  struct Row { int hd; size_t full, masked, compact; };
  constexpr Row rows[] = {
      {32, 65592, 65592, 65592},     {64, 81976, 81976, 81976},     {96, 163896, 163896, 98304},
      {128, 163896, 229432, 98304},  {192, 196664, 196664, 98304},  {256, 163896, 163896, 98304},
  };
  for (const Row& r : rows) {
    if (r.hd != kernel_hd) continue;
    switch (tile) {
      case Sm80Tile::kFull: return r.full;
      case Sm80Tile::kMasked: return r.masked;
      case Sm80Tile::kCompact: return r.compact;
      case Sm80Tile::kNone: return 0;
    }
  }
  return 0;
}

// The backward's two configs per head dim (bwd_config.h): Cfg runs everywhere the head dim does;
// Big, where it exists, runs instead when its one-stage main kernel fits.
struct BwdShape {
  size_t min_smem = 0;      // Cfg::min_smem(): what the device must offer at all
  size_t big_smem = 0;      // Big::main_smem(1), 0 when there is no Big
  int br = 0, big_br = 0;   // query rows per step (workspace layout)
};

template <typename Cfg, typename Big>
constexpr BwdShape bwd_shape() {
  return {Cfg::min_smem(), Big::main_smem(1), Cfg::kBr, Big::kBr};
}
template <typename Cfg>
constexpr BwdShape bwd_shape() {
  return {Cfg::min_smem(), 0, Cfg::kBr, 0};
}

constexpr BwdShape bwd_shape_for(int kernel_hd) {
  namespace b = ::flashattn::sm80::bwd;
  switch (kernel_hd) {
    case 32: return bwd_shape<b::Cfg32>();
    case 64: return bwd_shape<b::Cfg64, b::Cfg64Big>();
    case 96: return bwd_shape<b::Cfg96>();
    case 128: return bwd_shape<b::Cfg128, b::Cfg128Big>();
    case 192: return bwd_shape<b::Cfg192, b::Cfg192Big>();
    case 256: return bwd_shape<b::Cfg256, b::Cfg256Big>();
    default: return {};
  }
}

constexpr int kBwdRowPad = ::flashattn::sm80::bwd::kRowPad;

}  // namespace flashattn::plan::sm80
