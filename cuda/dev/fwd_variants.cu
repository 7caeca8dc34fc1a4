// fwd_variants.cu — bf16 instantiations of other tile shapes, for cuda/dev/fwd_check.cu to time.
// FwdTile<D, BlockM, BlockN, warps, Q in registers, stages, min blocks per SM>.
#include "dev/fwd_variants.h"
#include "sm80/fwd_launch.cuh"

using namespace flashattn::sm80;

#define FWD_VARIANT(label, D, BM, BN, W, QR, ST, MB, OV)                                                      \
  FwdVariant{"d" #D " " label " " #BM "x" #BN " w" #W " q" #QR " s" #ST " b" #MB " sch" #OV, D,                  \
             FwdTile<D, BM, BN, W, QR, ST, MB, OV>::kSmemBytes, &launch_fwd_tile<Bf16, FwdTile<D, BM, BN, W, QR, ST, MB, OV>>}
#define T true
#define F false
#define PL kPlain
#define MB kMbar

// Alternatives to the production tiles (FwdConfig) worth re-measuring: fewer spilled registers
// than the 32-rows-per-warp Full tiles, at more key blocks per query block.
std::vector<FwdVariant> fwd_variants() {
  return {
      FWD_VARIANT("mH", 128, 256, 32, 8, F, 4, 1, MB),
      FWD_VARIANT("m48", 128, 256, 48, 8, F, 3, 1, MB),
      FWD_VARIANT("m48", 96, 256, 48, 8, F, 3, 1, MB),
      FWD_VARIANT("B", 128, 128, 128, 8, T, 2, 1, PL),
  };
}
