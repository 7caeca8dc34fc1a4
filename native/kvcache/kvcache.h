// kvcache.h — binding.ts kvcache(req): flashAttentionWithKVCache's native call.
//
// Host tensors run on the CPU backend (native/cpu/kvcache.h): the inputs and the caches are
// copied when the call starts, the backend appends and attends on a libuv pool thread, and when
// the call settles (on the JS thread) out/lse are handed back and the cache positions this call
// appended are written into the caller's kCache/vCache arrays; nothing else in them is touched.
// DeviceBuffers run on the split-KV decode kernels (cuda/decode/), enqueued on the call's stream;
// the caches are updated in place, in stream order.
#pragma once

#include <napi.h>

namespace flashattn::native {

Napi::Value KvCache(const Napi::CallbackInfo& info);

}  // namespace flashattn::native
