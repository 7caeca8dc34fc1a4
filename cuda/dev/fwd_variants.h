// fwd_variants.h — tile shapes the dev harness times against the production table (FwdConfig).
#pragma once

#include <vector>

#include <cuda_runtime.h>

#include "params.h"

struct FwdVariant {
  const char* name;  // "d128 A 128x64 w8 qreg=true s2 b1"
  int head_dim;
  int smem_bytes;
  void (*launch)(const flashattn::AttnParams&, cudaStream_t);  // bf16
};

std::vector<FwdVariant> fwd_variants();
