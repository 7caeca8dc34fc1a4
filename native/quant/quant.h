// quant.h — binding.ts quantizeFp8(req): quantizeFp8() of a DeviceTensor, on its device.
//
// The tensor is read in place (stream-ordered behind earlier work on the call's stream); the
// kernels of cuda/quant/ write the e4m3 data and the float32 descales into new stream-ordered
// allocations, which the promise resolves to as DeviceBuffers. Host tensors never come here
// (src-ts/fp8.ts quantizes them in TypeScript, with the same rules). The CPU-only build rejects
// the call with E_NO_DEVICE.
#pragma once

#include <napi.h>

namespace flashattn::native {

Napi::Value QuantizeFp8(const Napi::CallbackInfo& info);

}  // namespace flashattn::native
