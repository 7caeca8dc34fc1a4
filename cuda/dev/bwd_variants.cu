// bwd_variants.cu — see bwd_variants.h. Each entry instantiates the backward for bf16 with one
// Config; the verdicts live in docs/perf-notes.md, "Backward (sm80)".
#include "dev/bwd_variants.h"
#include "sm80/bwd_launch.h"

namespace flashattn::sm80::bwd::dev {
namespace {

//                  D   Br   Bc WmS WmKV WmQ QParts BcQ
using V128a = Config<128, 128, 128, 4, 4, 4, 2, 32>;  // Br128 Bc128, 1 stage (192 KB): S 32x64, KV 32x64, Q 32x64/2

template <typename Cfg>
void run_bf16(const AttnParams& p, cudaStream_t s) { run<Bf16, Cfg>(p, s); }

}  // namespace

const std::vector<Variant>& variants() {
  static const std::vector<Variant> v = {
      {"d64  Br64  Bc128 S32x32 KV32x32 Q32x16 (99 KB fallback)", 64, false, run_bf16<Cfg64>},
      {"d128 Br64  Bc64  S32x16 KV16x64 Q32x32 (99 KB fallback)", 128, false, run_bf16<Cfg128>},
      {"d128 Br64  Bc128 S32x32 KV32x64 Q32x32 (shipped big)", 128, true, run_bf16<Cfg128Big>},
      {"d128 Br128 Bc128 S32x64 KV32x64 Q32x64/2 1stage", 128, false, run_bf16<V128a>},
      {"d192 Br64  Bc64  S16x32 KV32x48 Q32x48/3 (fallback)", 192, false, run_bf16<Cfg192>},
      {"d192 Br128 Bc64  S32x32 KV32x48 Q32x96/3 (shipped big)", 192, true, run_bf16<Cfg192Big>},
      {"d256 Br64  Bc64  S16x32 KV32x64 Q32x64/2 (fallback)", 256, false, run_bf16<Cfg256>},
      {"d256 Br128 Bc64  S32x32 KV32x64 Q32x128/4 (shipped big)", 256, true, run_bf16<Cfg256Big>},
  };
  return v;
}

}  // namespace flashattn::sm80::bwd::dev
