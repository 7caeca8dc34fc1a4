// bwd_hd96.cu — sm80 backward instantiations for kernel head dim 96 (fp16, bf16).
// One file per head dim keeps each file's compile short and lets the build run them in parallel.
#include "sm80/bwd_launch.h"

namespace flashattn::sm80::bwd {
void run_hd96(const AttnParams& p, cudaStream_t stream) { run_head_dim<Cfg96>(p, stream); }
}  // namespace flashattn::sm80::bwd
