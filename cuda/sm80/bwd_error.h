// bwd_error.h — how the backward reports failure: CUDA calls through common/check.h
// (FA_CUDA_CHECK / FA_CUDA_CHECK_LAUNCH), requests it cannot run through fail(). Never exits.
#pragma once

#include <string>

#include "api.h"
#include "common/check.h"

namespace flashattn::sm80::bwd {

[[noreturn]] inline void fail(const std::string& what) { throw cuda::Error("backward: " + what, -1, false); }

}  // namespace flashattn::sm80::bwd
