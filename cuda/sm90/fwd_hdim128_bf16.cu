// One instantiation of the sm90 forward: head dim 128, bf16. (One per file keeps builds parallel.)
#include "sm90/fwd_launch.cuh"

namespace flashattn::sm90 {
template void launch_fwd<sm80::Bf16, 128>(const AttnParams&, cudaStream_t);
}  // namespace flashattn::sm90
