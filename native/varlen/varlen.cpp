// varlen.cpp — the varlen exports: their requests, run by the attention call kind.
#include "varlen/varlen.h"

#include "varlen/varlen_request.h"
#include "workers.h"

namespace flashattn::native {

Napi::Value VarlenForward(const Napi::CallbackInfo& info) {
  return QueueAttention(info, "varlen_forward", parse_varlen_forward);
}

Napi::Value VarlenBackward(const Napi::CallbackInfo& info) {
  return QueueAttention(info, "varlen_backward", parse_varlen_backward);
}

}  // namespace flashattn::native
