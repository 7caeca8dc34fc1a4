// flat.h — the forward request as the TypeScript layer sends it on its hot path (binding.ts
// forwardFlat): one Float64Array header of numbers, the options and, per tensor role, its dtype,
// shape, strides and offset; the Stream and each role's data (a typed array or DeviceBuffer,
// undefined when absent) as arguments. The synchronous part of a call then reads no properties:
// the request object, its tensors and their shape arrays are never listed or looked up.
//
//   forwardFlat(header, stream, q, k, v, out, lse, qDescale, kDescale, vDescale)
//
// The header is the TypeScript layer's, filled from a request it built and validated; every
// value is still checked here (a malformed one is E_INTERNAL: a bug, not user input), and the
// tensors go through read_tensor's own steps (request/tensor.h), so what the addon accepts and
// how it says no is the object request's. src-ts/flat.ts mirrors this layout.
#pragma once

#include <napi.h>

#include "request/request.h"

namespace flashattn::native {

namespace flat {

// Options, then kRoles slots of kSlotSize numbers.
enum Field : int {
  kBackend = 0,   // 0 cpu, 1 cuda
  kDevice = 1,
  kScale = 2,
  kWindowLeft = 3,
  kWindowRight = 4,
  kThreads = 5,
  kPoison = 6,    // 0 or 1
  kNaive = 7,     // 0 or 1
  kOutDtype = 8,  // a DType code, or -1: not given
  kSlots = 10,
};
enum Role : int { kQ, kK, kV, kOut, kLse, kQDescale, kKDescale, kVDescale, kRoles };
// One tensor: present (0/1), DType code, shape[4], strides given (0/1), strides[4], offset (-1: none).
enum Slot : int { kPresent = 0, kDType = 1, kShape = 2, kHasStrides = 6, kStrides = 7, kOffset = 11, kSlotSize = 12 };
inline constexpr int kHeaderLength = kSlots + kRoles * kSlotSize;

}  // namespace flat

// The forward request of forwardFlat's arguments.
AttentionJob parse_forward_flat(const Napi::CallbackInfo& info);

}  // namespace flashattn::native
