// One instantiation of the sm80 forward: head dim 96, bf16. (One per file keeps builds parallel.)
#include "sm80/fwd_launch.cuh"

namespace flashattn::sm80 {
template void launch_fwd<Bf16, 96>(const AttnParams&, cudaStream_t, FwdTier);
}  // namespace flashattn::sm80
