// bwd_hd192.cu — sm80 backward instantiations for kernel head dim 192 (fp16, bf16).
// One file per head dim keeps each file's compile short and lets the build run them in parallel.
#include "sm80/bwd_launch.h"

namespace flashattn::sm80::bwd {
void run_hd192(const AttnParams& p, cudaStream_t stream) { run_head_dim<Cfg192, Cfg192Big>(p, stream); }
}  // namespace flashattn::sm80::bwd
