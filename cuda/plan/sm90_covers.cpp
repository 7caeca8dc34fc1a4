// sm90_covers.cpp — placeholder for the Hopper forward's coverage rule (plan.h).
//
// No sm90 (wgmma + TMA) kernel is built yet, so nothing is covered and the plan never picks
// KernelPath::kSm90. The sm90 kernel work replaces this file with the real rule (dtype, head dim,
// masks, strides it supports) next to its kernels; nothing else in the plan changes.
#include <string>

#include "plan/plan.h"

namespace flashattn::plan {

bool sm90_forward_covers(const AttnParams& /*params*/, std::string* why) {
  if (why) *why = "this build has no sm90 (wgmma + TMA) forward kernels";
  return false;
}

}  // namespace flashattn::plan
