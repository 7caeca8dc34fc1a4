// fp8_workspace.h — the size of the e4m3 forward's Vᵀ workspace (fp8_vt.h), in plain C++ so the
// plan (cuda/plan/plan.cpp, compiled in every build) reports it without the CUDA headers.
#pragma once

#include <cstddef>

#include "params.h"

namespace flashattn::sm90 {

// Keys per (b, h_k, row) of Vᵀ: s_k rounded up to the Vᵀ pass's 64-key tiles (at least one tile,
// so the tensor map has a nonzero extent when s_k = 0).
inline int fp8_vt_keys(int s_k) { return (s_k > 0 ? s_k + 63 : 64) / 64 * 64; }

// Bytes of the Vᵀ workspace for request p (e4m3 v).
inline size_t fp8_vt_bytes(const AttnParams& p) {
  return static_cast<size_t>(p.b) * p.h_k * p.d * fp8_vt_keys(p.s_k);
}

}  // namespace flashattn::sm90
