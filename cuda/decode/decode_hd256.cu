// decode_hd256.cu — the decode kernels for head dim 256 (fp16 and bf16).
#include "decode/launch.cuh"

namespace flashattn::decode {

void run_decode_hd256(const DecodeParams& p, const DecodeLaunch& L, cudaStream_t stream) {
  if (p.dtype == DType::kBFloat16) {
    run_decode<sm80::Bf16, 256>(p, L, stream);
  } else {
    run_decode<sm80::Fp16, 256>(p, L, stream);
  }
}

}  // namespace flashattn::decode
