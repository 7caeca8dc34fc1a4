// bwd_variants.h — alternative block shapes of the sm80 backward, compiled only into the dev
// harness (cuda/dev/bwd_check.cu) so one GPU run can time them next to the shipped ones.
#pragma once

#include <cuda_runtime.h>

#include <vector>

#include "params.h"

namespace flashattn::sm80::bwd::dev {

struct Variant {
  const char* name;  // e.g. "d128 Br64 Bc128 S32x32 KV32x64 Q32x32"
  int kernel_hd;
  bool shipped;      // the shape bwd_config.h uses
  void (*run)(const AttnParams& p, cudaStream_t stream);  // bf16 only
};

const std::vector<Variant>& variants();

}  // namespace flashattn::sm80::bwd::dev
