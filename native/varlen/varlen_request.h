// varlen_request.h — the variable-length requests of binding.ts (NativeVarlenForwardRequest,
// NativeVarlenBackwardRequest), read from JS and checked on the JS thread into an AttentionJob
// with varlen set (request/request.h says how its tensors are laid out).
//
// Everything a bad request can get wrong is refused here with the field path: shapes and dtypes
// (E_SHAPE, E_DTYPE), and the int32 offsets' values (cuSeqlensQ/K: 0 first, non-decreasing, the
// packed total last, one batch for both; maxSeqlenQ/K at least the longest sequence), so the CPU
// backend never reads or writes outside the arrays it was given. DeviceBuffers and backend 'cuda'
// are E_UNSUPPORTED until the varlen kernels are wired (docs/varlen-notes.md).
#pragma once

#include <napi.h>

#include "request/request.h"

namespace flashattn::native {

AttentionJob parse_varlen_forward(Napi::Value request);
AttentionJob parse_varlen_backward(Napi::Value request);

}  // namespace flashattn::native
