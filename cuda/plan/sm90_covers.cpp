// sm90_covers.cpp — the plan's slots for the Hopper kernels' coverage rules (plan.h).
//
// In a build with the sm90 kernels (CMake defines FLASHATTN_WITH_SM90 when 90a is among the archs
// and cuda/sm90/ has sources) the rule is theirs: sm90::sm90_forward_covers (dtype, head dim,
// sizes, strides and alignment the copy engine takes). Elsewhere (the CPU-only build, or a CUDA
// build without 90a) nothing is covered, and the plan never picks KernelPath::kSm90.
#include <string>

#include "plan/plan.h"

#if FLASHATTN_WITH_SM90
#include "sm90/api.h"
#endif

namespace flashattn::plan {

bool sm90_forward_covers(const AttnParams& params, std::string* why) {
#if FLASHATTN_WITH_SM90
  return sm90::sm90_forward_covers(params, why);
#else
  (void)params;
  if (why) *why = "this build has no sm90 (wgmma + TMA) forward kernels";
  return false;
#endif
}

bool sm90_backward_covers(const AttnParams& params, std::string* why) {
#if FLASHATTN_WITH_SM90
  return sm90::sm90_backward_covers(params, why);
#else
  (void)params;
  if (why) *why = "this build has no sm90 (wgmma + TMA) backward kernels";
  return false;
#endif
}

size_t sm90_backward_workspace_bytes(const AttnParams& params) {
#if FLASHATTN_WITH_SM90
  return sm90::sm90_backward_workspace_bytes(params);
#else
  (void)params;
  return 0;
#endif
}

}  // namespace flashattn::plan
