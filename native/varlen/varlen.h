// varlen.h — binding.ts varlenForward(req) / varlenBackward(req): flashAttentionVarlen and
// flashAttentionVarlenBackward's native calls.
//
// The attention call kind of exec/calls.cpp runs them: host inputs (the int32 offsets included)
// are copied when the call starts, the CPU backend (native/cpu/varlen.h) attends each packed
// sequence on a libuv pool thread, and the outputs are handed back when the call settles. Only
// host arrays are taken for now (varlen_request.h).
#pragma once

#include <napi.h>

namespace flashattn::native {

Napi::Value VarlenForward(const Napi::CallbackInfo& info);
Napi::Value VarlenBackward(const Napi::CallbackInfo& info);

}  // namespace flashattn::native
