// cache.h — make_plan's answers for real devices, cached per shape key, and the
// FLASHATTN_KERNEL_PATH override. Plain C++.
#pragma once

#include <string>
#include <vector>

#include "plan/plan.h"

namespace flashattn::plan {

// FLASHATTN_KERNEL_PATH, read once per process. An unreadable value makes *bad non-empty (every
// CUDA plan is then none with that message).
Force forced_path(std::string* bad);

// make_plan(op, p, dev, compiled, forced_path()), cached per plan_key when the answer is a path
// (refusals are not cached: they are errors, and their messages name the request). The tensor
// pointers' 16-byte alignment is checked on every call, outside the cache.
Plan plan_cached(Op op, const AttnParams& p, const DeviceFacts& dev, const std::vector<ArchTarget>& compiled);

}  // namespace flashattn::plan
