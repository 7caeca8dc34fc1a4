// bwd_hd64.cu — sm80 backward instantiations for kernel head dim 64 (fp16, bf16).
// One file per head dim keeps each file's compile short and lets the build run them in parallel.
#include "sm80/bwd_launch.h"

namespace flashattn::sm80::bwd {
void run_hd64(const AttnParams& p, cudaStream_t stream) { run_head_dim<Cfg64, Cfg64Big>(p, stream); }
}  // namespace flashattn::sm80::bwd
