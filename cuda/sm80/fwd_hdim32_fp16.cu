// One instantiation of the sm80 forward: head dim 32, fp16. (One per file keeps builds parallel.)
#include "sm80/fwd_launch.cuh"

namespace flashattn::sm80 {
template void launch_fwd<Fp16, 32>(const AttnParams&, cudaStream_t, FwdTier);
}  // namespace flashattn::sm80
