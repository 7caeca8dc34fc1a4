// tensor_io.h — reading and writing rows of (b, s, heads, d) host tensors as float.
// Internal to native/cpu/. Strides are in elements of the tensor's dtype (cuda/params.h); the d
// stride is 1. 16-bit dtypes are raw bits, converted with half.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "cuda/params.h"
#include "native/cpu/half.h"

namespace flashattn::cpu {

// A typed view of one (b, s, heads, d) tensor.
struct TensorView {
  const void* data = nullptr;
  DType dtype = DType::kFloat32;
  Strides st;

  int64_t offset(int b, int s, int h) const {
    return static_cast<int64_t>(b) * st.batch + static_cast<int64_t>(s) * st.row +
           static_cast<int64_t>(h) * st.head;
  }

  // dst[c] = mul * row(b, s, h)[c] for c < d.
  void load_row(int b, int s, int h, int d, float* dst, float mul = 1.f) const {
    const int64_t off = offset(b, s, h);
    switch (dtype) {
      case DType::kFloat32: {
        const float* src = static_cast<const float*>(data) + off;
        for (int c = 0; c < d; ++c) dst[c] = src[c] * mul;
        return;
      }
      case DType::kFloat16: {
        const uint16_t* src = static_cast<const uint16_t*>(data) + off;
        for (int c = 0; c < d; ++c) dst[c] = half_to_float(src[c]) * mul;
        return;
      }
      case DType::kBFloat16: {
        const uint16_t* src = static_cast<const uint16_t*>(data) + off;
        for (int c = 0; c < d; ++c) dst[c] = bf16_to_float(src[c]) * mul;
        return;
      }
      case DType::kFloat8E4M3:
      case DType::kInt32:
        break;
    }
    throw std::invalid_argument(std::string("flashattn cpu: cannot read dtype ") + dtype_name(dtype));
  }
};

struct MutTensorView {
  void* data = nullptr;
  DType dtype = DType::kFloat32;
  Strides st;

  int64_t offset(int b, int s, int h) const {
    return static_cast<int64_t>(b) * st.batch + static_cast<int64_t>(s) * st.row +
           static_cast<int64_t>(h) * st.head;
  }

  // row(b, s, h)[c] = mul * src[c] for c < d, rounded to the dtype (nearest even).
  void store_row(int b, int s, int h, int d, const float* src, float mul = 1.f) const {
    const int64_t off = offset(b, s, h);
    switch (dtype) {
      case DType::kFloat32: {
        float* dst = static_cast<float*>(data) + off;
        for (int c = 0; c < d; ++c) dst[c] = src[c] * mul;
        return;
      }
      case DType::kFloat16: {
        uint16_t* dst = static_cast<uint16_t*>(data) + off;
        for (int c = 0; c < d; ++c) dst[c] = float_to_half(src[c] * mul);
        return;
      }
      case DType::kBFloat16: {
        uint16_t* dst = static_cast<uint16_t*>(data) + off;
        for (int c = 0; c < d; ++c) dst[c] = float_to_bf16(src[c] * mul);
        return;
      }
      case DType::kFloat8E4M3:
      case DType::kInt32:
        break;
    }
    throw std::invalid_argument(std::string("flashattn cpu: cannot write dtype ") + dtype_name(dtype));
  }

  void store_zero_row(int b, int s, int h, int d) const {
    const int64_t off = offset(b, s, h);
    const size_t bytes = static_cast<size_t>(d) * dtype_size(dtype);
    char* dst = static_cast<char*>(data) + off * dtype_size(dtype);
    for (size_t i = 0; i < bytes; ++i) dst[i] = 0;
  }
};

// dst (n, ld) rows r < n = mul * row(b, s0 + r, h).
inline void load_rows(const TensorView& t, int b, int s0, int n, int h, int d, float* dst, int ld,
                      float mul = 1.f) {
  for (int r = 0; r < n; ++r) t.load_row(b, s0 + r, h, d, dst + static_cast<ptrdiff_t>(r) * ld, mul);
}

// How many rows load_rows_transposed converts at a time: its `rows` scratch holds this many rows.
constexpr int kTransposeRows = 16;

// dst (d, ld) column r < n = mul * row(b, s0 + r, h): a block laid out as the B operand of
// C = A . B^T products. Rows are converted kTransposeRows at a time into `rows` (kTransposeRows, d)
// and written out as runs of kTransposeRows consecutive floats per column, not one float per
// cache line.
inline void load_rows_transposed(const TensorView& t, int b, int s0, int n, int h, int d, float* dst,
                                 int ld, float* rows, float mul = 1.f) {
  for (int r0 = 0; r0 < n; r0 += kTransposeRows) {
    const int nr = n - r0 < kTransposeRows ? n - r0 : kTransposeRows;
    load_rows(t, b, s0 + r0, nr, h, d, rows, d, mul);
    for (int c = 0; c < d; ++c) {
      float* out = dst + static_cast<ptrdiff_t>(c) * ld + r0;
      for (int r = 0; r < nr; ++r) out[r] = rows[static_cast<ptrdiff_t>(r) * d + c];
    }
  }
}

// Rows [s0, s0 + n) of head h as float rows with leading dim *ld: float32 data are used where they
// lie (no copy; *ld = the row stride); 16-bit data are converted into `scratch` (n, d), *ld = d.
inline const float* rows_as_float(const TensorView& t, int b, int s0, int n, int h, int d, float* scratch,
                                  ptrdiff_t* ld) {
  if (t.dtype == DType::kFloat32) {
    *ld = static_cast<ptrdiff_t>(t.st.row);
    return static_cast<const float*>(t.data) + t.offset(b, s0, h);
  }
  load_rows(t, b, s0, n, h, d, scratch, d);
  *ld = d;
  return scratch;
}

inline TensorView view(const void* data, DType t, const Strides& st) { return TensorView{data, t, st}; }
inline MutTensorView mut_view(void* data, DType t, const Strides& st) { return MutTensorView{data, t, st}; }

}  // namespace flashattn::cpu
