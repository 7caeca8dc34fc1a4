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
#define OV kOverlap
#define MB kMbar
#define PP kPingPong

std::vector<FwdVariant> fwd_variants() {
  return {
      // d32 (run 3 best: overlap 128x64 w4 b2, 231)
      FWD_VARIANT("oC", 32, 128, 64, 4, T, 2, 2, OV),
      FWD_VARIANT("mA", 32, 128, 64, 8, T, 3, 1, MB),
      FWD_VARIANT("mB", 32, 128, 128, 8, T, 3, 1, MB),
      FWD_VARIANT("mD", 32, 256, 64, 8, T, 3, 1, MB),
      // d64 (run 3 best: ping-pong 256x64, 322 / 307)
      FWD_VARIANT("pD", 64, 256, 64, 8, T, 3, 1, PP),
      FWD_VARIANT("pD4", 64, 256, 64, 8, T, 4, 1, PP),
      FWD_VARIANT("mD", 64, 256, 64, 8, T, 3, 1, MB),
      FWD_VARIANT("mD4", 64, 256, 64, 8, T, 4, 1, MB),
      FWD_VARIANT("mA", 64, 128, 64, 8, T, 3, 1, MB),
      // d96 (run 3 best: ping-pong 128x128, 310 / 300)
      FWD_VARIANT("pB", 96, 128, 128, 8, T, 3, 1, PP),
      FWD_VARIANT("mB", 96, 128, 128, 8, T, 3, 1, MB),
      FWD_VARIANT("mA", 96, 128, 64, 8, T, 3, 1, MB),
      FWD_VARIANT("mF", 96, 256, 64, 8, F, 3, 1, MB),
      FWD_VARIANT("cA", 96, 128, 64, 8, T, 2, 1, PL),
      // d128 (run 3 best: mbar 128x128, 346 / 346)
      FWD_VARIANT("mB", 128, 128, 128, 8, T, 3, 1, MB),
      FWD_VARIANT("m96", 128, 128, 96, 8, T, 3, 1, MB),
      FWD_VARIANT("mF", 128, 256, 64, 8, F, 3, 1, MB),
      FWD_VARIANT("mH", 128, 256, 32, 8, F, 4, 1, MB),
      FWD_VARIANT("pF", 128, 256, 64, 8, F, 3, 1, PP),
      FWD_VARIANT("cA", 128, 128, 64, 8, T, 2, 1, PL),
      // d192 (run 3 best: ping-pong 128x64 qreg, 312 / 315)
      FWD_VARIANT("pA", 192, 128, 64, 8, T, 3, 1, PP),
      FWD_VARIANT("mA", 192, 128, 64, 8, T, 3, 1, MB),
      FWD_VARIANT("mAs", 192, 128, 64, 8, F, 3, 1, MB),
      FWD_VARIANT("cE", 192, 128, 32, 8, F, 2, 1, PL),
      // d256 (run 3 best: plain 128x64 qsmem 192 KB, 280 / 282)
      FWD_VARIANT("C", 256, 128, 64, 8, F, 2, 1, PL),
      FWD_VARIANT("mA", 256, 128, 32, 8, F, 3, 1, MB),
      FWD_VARIANT("mD", 256, 128, 32, 8, T, 3, 1, MB),
      FWD_VARIANT("m48", 256, 128, 48, 8, F, 3, 1, MB),
      FWD_VARIANT("m48r", 256, 128, 48, 8, T, 3, 1, MB),
      FWD_VARIANT("cE", 256, 64, 32, 4, F, 2, 2, PL),
  };
}
