// fwd_launch.cu — launch.h's forward entry points: shared memory per head dim, and the
// dtype × head dim switch onto the instantiations in fwd_hdim{D}_{fp16,bf16}.cu.
#include <string>

#include "sm80/fwd_launch.cuh"
#include "sm80/launch.h"

namespace flashattn::sm80 {

// The plan reads the forward's shared memory from a plain table; it must equal the tiles'.
#define FLASHATTN_PIN_FWD_SMEM(D)                                                                               \
  static_assert(plan::sm80::fwd_smem_bytes(D, plan::Sm80Tile::kFull) == FwdConfig<D>::Full::kSmemBytes, "plan table"); \
  static_assert(plan::sm80::fwd_smem_bytes(D, plan::Sm80Tile::kMasked) == FwdConfig<D>::Masked::kSmemBytes,          \
                "plan table");                                                                                     \
  static_assert(plan::sm80::fwd_smem_bytes(D, plan::Sm80Tile::kCompact) == FwdConfig<D>::Compact::kSmemBytes,        \
                "plan table");
FLASHATTN_PIN_FWD_SMEM(32)
FLASHATTN_PIN_FWD_SMEM(64)
FLASHATTN_PIN_FWD_SMEM(96)
FLASHATTN_PIN_FWD_SMEM(128)
FLASHATTN_PIN_FWD_SMEM(192)
FLASHATTN_PIN_FWD_SMEM(256)
#undef FLASHATTN_PIN_FWD_SMEM

// The least shared memory a forward at this head dim runs with: its Compact tile (launch_fwd
// takes a larger tile where the device offers enough).
size_t fwd_smem_bytes(int kernel_hd) {
  switch (kernel_hd) {
    case 32: return FwdConfig<32>::Compact::kSmemBytes;
    case 64: return FwdConfig<64>::Compact::kSmemBytes;
    case 96: return FwdConfig<96>::Compact::kSmemBytes;
    case 128: return FwdConfig<128>::Compact::kSmemBytes;
    case 192: return FwdConfig<192>::Compact::kSmemBytes;
    case 256: return FwdConfig<256>::Compact::kSmemBytes;
    default: return 0;  // no forward kernel at this head dim
  }
}

namespace {

template <typename E>
void run_fwd_typed(const AttnParams& p, int kernel_hd, FwdTier tier, cudaStream_t stream) {
  switch (kernel_hd) {
    case 32: return launch_fwd<E, 32>(p, stream, tier);
    case 64: return launch_fwd<E, 64>(p, stream, tier);
    case 96: return launch_fwd<E, 96>(p, stream, tier);
    case 128: return launch_fwd<E, 128>(p, stream, tier);
    case 192: return launch_fwd<E, 192>(p, stream, tier);
    case 256: return launch_fwd<E, 256>(p, stream, tier);
    default: break;
  }
  cuda::fail("sm80 forward: no kernel for head dim " + std::to_string(kernel_hd));
}

}  // namespace

void run_fwd(const AttnParams& p, int kernel_hd, cudaStream_t stream) { run_fwd_tier(p, kernel_hd, FwdTier::kAuto, stream); }

void run_fwd_planned(const AttnParams& p, int kernel_hd, plan::Sm80Tile tile, cudaStream_t stream) {
  switch (tile) {
    case plan::Sm80Tile::kFull: return run_fwd_tier(p, kernel_hd, FwdTier::kFull, stream);
    case plan::Sm80Tile::kMasked: return run_fwd_tier(p, kernel_hd, FwdTier::kMasked, stream);
    case plan::Sm80Tile::kCompact: return run_fwd_tier(p, kernel_hd, FwdTier::kCompact, stream);
    case plan::Sm80Tile::kNone: break;
  }
  cuda::fail("sm80 forward: the plan chose no tile");
}

void run_fwd_tier(const AttnParams& p, int kernel_hd, FwdTier tier, cudaStream_t stream) {
  if (p.d <= 0 || p.d % 8 != 0 || p.d > kernel_hd) {
    cuda::fail("sm80 forward: head dim " + std::to_string(p.d) + " does not run on the d" +
                   std::to_string(kernel_hd) + " kernel (needs d % 8 == 0 and d <= " + std::to_string(kernel_hd) + ")");
  }
  if (p.b < 0 || p.s_q < 0 || p.s_k < 0 || p.h <= 0 || p.h_k <= 0 || p.h % p.h_k != 0) {
    cuda::fail("sm80 forward: bad sizes (b=" + std::to_string(p.b) + ", s_q=" + std::to_string(p.s_q) +
                   ", s_k=" + std::to_string(p.s_k) + ", h=" + std::to_string(p.h) + ", h_k=" + std::to_string(p.h_k) + ")");
  }
  if (p.b == 0 || p.s_q == 0) return;  // no query rows: nothing to write
  switch (p.dtype) {
    case DType::kFloat16: return run_fwd_typed<Fp16>(p, kernel_hd, tier, stream);
    case DType::kBFloat16: return run_fwd_typed<Bf16>(p, kernel_hd, tier, stream);
    case DType::kFloat32:
    case DType::kFloat8E4M3:
    case DType::kInt32: break;
  }
  cuda::fail(std::string("sm80 forward: dtype ") + dtype_name(p.dtype) + " has no sm80 kernel");
}

}  // namespace flashattn::sm80
