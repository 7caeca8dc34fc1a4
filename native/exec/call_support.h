// call_support.h — pieces every call kind shares: a tensor bound to where the backend reads or
// writes it, copying host inputs into memory the addon owns, and handing results back to JS
// (fresh arrays, or the caller's arrays when they are still alive and unchanged).
#pragma once

#include <napi.h>

#include <cstddef>
#include <memory>

#include "device_buffer.h"
#include "exec/env_state.h"
#include "exec/host_memory.h"
#include "request/tensor.h"

namespace flashattn::native {

// One tensor of a call, bound to where the backend reads or writes it.
struct Bound {
  TensorArg* arg = nullptr;
  void* ptr = nullptr;                     // what the backend's params point at
  HostBlock host;                          // owned host copy: the data (CPU) or pinned staging (CUDA)
  std::shared_ptr<DeviceAllocation> dev;   // the user's buffer, a staging copy, or an allocated output
  int ref = -1;                            // index into Work::refs of a caller-provided host output
};

// The user's typed array behind `ref`, if it still has exactly `bytes` bytes (not detached, not
// resized): its data pointer, else nullptr.
void* live_array_data(napi_env env, napi_ref ref, size_t bytes);

// A new typed array of `dtype` holding `block`'s bytes; a plain block is handed over without a copy.
napi_value new_host_array(napi_env env, HostBlock& block, DType dtype);

// b.host = block, filled with b's host input (strides gathered to a dense copy).
void copy_in(Bound& b, HostBlock block);

// A caller-provided host output: keeps a reference to its array in work->refs (b.ref) so the
// settle step can write into it.
void keep_output(napi_env env, Work* work, Bound& b);

}  // namespace flashattn::native
