// tensor.h — one tensor argument ({data, shape, dtype}) read from a request and checked.
//
// A TensorArg is plain data read on the JS thread. Its host pointer is valid only during the
// synchronous part of the call (the user may detach or resize the buffer afterwards): the
// execution layer (native/exec/) copies host inputs into memory it owns before returning.
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "device_buffer.h"
#include "fields.h"
#include "params.h"

namespace flashattn::native {

using KeepAlive = std::vector<Napi::ObjectReference>;

struct TensorArg {
  std::string name;  // as the request names it: "q", "dout", ...
  DType dtype = DType::kFloat32;
  int rank = 0;
  int64_t shape[4] = {0, 0, 0, 0};
  size_t bytes = 0;  // what the shape needs: product(shape) * dtype_size(dtype)
  // Element strides per dim (contiguous unless the request gives others) and, for a DeviceBuffer,
  // the element offset of element [0, ...] from the buffer's start: a view into a larger buffer.
  int64_t strides[4] = {0, 0, 0, 0};
  int64_t offset = 0;
  size_t span_bytes = 0;   // from data() to one past the last element the strides reach
  size_t array_bytes = 0;  // a host typed array's byteLength when read (checked again at completion)

  void* host = nullptr;                       // a host typed array's first element
  std::shared_ptr<DeviceAllocation> device;   // or a DeviceBuffer's allocation
  std::string kind;                           // "Float32Array", ..., or "DeviceBuffer" (for messages)
  napi_value value = nullptr;                 // the typed array (valid during the synchronous call only)
  bool absent = false;                        // an output the caller did not provide: the addon allocates it

  bool on_device() const { return device != nullptr; }
  void* data() const {
    return device ? static_cast<char*>(device->ptr) + offset * dtype_size(dtype) : host;
  }
  bool contiguous() const;
  int dim(int i) const { return static_cast<int>(shape[i]); }
};

// The dtype names as they cross the boundary (binding.ts NativeDType), in DType order.
DType read_dtype(Napi::Value value, const FieldPath& path);

// Reads req[name] = {data, shape, dtype, strides?, offset?} (own properties only) and checks what
// one tensor can check alone:
//   dtype    one of the dtype names (int32 included)                       (E_DTYPE)
//   shape    an array of `rank` positive integers that fit an int          (E_SHAPE)
//   strides  optional: `rank` non-negative element strides, the last one 1 (E_ARG / E_UNSUPPORTED)
//   offset   optional, DeviceBuffers only: an element offset               (E_ARG)
//   data     the typed array of that dtype (Float32Array, Uint16Array of bits for 16-bit types,
//            Uint8Array for fp8, Int32Array for int32) with exactly product(shape) elements when
//            contiguous (at least what the strides reach otherwise), or a live DeviceBuffer that
//            holds offset + the strides' reach                             (E_DTYPE / E_SHAPE / E_DISPOSED)
// `shape_legend` names the dims for messages, e.g. "[batch, seqlenQ, headsQ, headDim]".
// Nothing is retained: host data is copied by the caller before the call returns, and a
// DeviceBuffer's memory is held by the shared_ptr in TensorArg::device.
TensorArg read_tensor(const OwnFields& req, const char* name, int rank, const char* shape_legend);

// The steps of read_tensor, shared with requests that carry their fields another way (the flat
// forward header, request/flat.h), in the order read_tensor takes them. t.name, t.rank, t.dtype
// and t.shape (positive ints) are set first.
//   set_extent     elements (E_SHAPE past 2^53), bytes, contiguous strides
//   check_strides  given strides (non-negative) end in 1                   (E_UNSUPPORTED)
//   set_span       span_bytes from the strides (E_SHAPE past 2^53)
//   bind_data      data: a live DeviceBuffer (at `offset`, undefined = 0) or the typed array of
//                  t.dtype, big enough for the view                        (as read_tensor)
void set_extent(TensorArg& t);
void check_strides(TensorArg& t);
void set_span(TensorArg& t);
void bind_data(TensorArg& t, Napi::Value data, Napi::Value offset);

// "[2, 128, 8, 64]"
std::string shape_text(const TensorArg& t);

// Whether no two elements of the view share memory (what an output must satisfy).
bool non_overlapping(const TensorArg& t);

// The 4-D strides of a (b, s, heads, d) tensor as AttnParams takes them.
inline Strides strides_of(const TensorArg& t) {
  Strides st;
  st.batch = t.strides[0];
  st.row = t.strides[1];
  st.head = t.strides[2];
  return st;
}

// Host views: copy a (possibly strided) view into contiguous memory, and back.
void gather(const TensorArg& t, const void* base, void* dst);
void scatter(const TensorArg& t, const void* src, void* base);

// The data pointer and size of a host typed array (its first element, past byteOffset).
struct HostView {
  void* data = nullptr;
  size_t length = 0;      // elements
  size_t byte_length = 0;
  napi_typedarray_type type = napi_uint8_array;
};
HostView host_view(const Napi::TypedArray& array);

// Bytes per element of a typed array type (TypedArray.BYTES_PER_ELEMENT); 0 for a type these
// headers may not name (Float16Array).
size_t element_bytes(napi_typedarray_type type);

// Outputs must not share memory with any input or with each other (inputs may share with inputs).
// Each range is [data, data + bytes); all tensors of one request are in one address space.
void check_no_overlap(const std::vector<const TensorArg*>& outputs, const std::vector<const TensorArg*>& inputs);

}  // namespace flashattn::native
