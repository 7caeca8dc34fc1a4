// tma_map.h — host side of the tensor copy engine: the tensor maps of (b, s, heads, d) operands
// and the rules for what it can read (fwd_host.cu defines them; the forward and backward use them).
#pragma once

#include <cstdint>

#include <cuda.h>

#include "params.h"

namespace flashattn::sm90 {

bool aligned16(const void* ptr);

// A stride the copy engine accepts: a positive multiple of 16 bytes below 2^40 (any stride for a
// dim of extent <= 1, which never steps), for elements of elem_bytes.
bool stride_ok(int64_t stride_elems, int extent, int elem_bytes = 2);

// stride_ok for the row, head and batch strides of one (b, s, heads, d) operand.
bool strides_ok(const Strides& st, int s, int heads, int b, int elem_bytes = 2);

// Tensor map of one (b, s, heads, d) operand (16-bit or e4m3), as the 4-D tensor (d, s, heads, b)
// with element strides (1, row, head, batch); box (one 128-byte panel of columns, box_rows, 1, 1),
// 128-byte swizzle, zero fill out of bounds. Throws cuda::Error when the driver refuses it.
CUtensorMap make_map(const void* base, DType dt, int b, int s, int heads, int d, const Strides& st, int box_rows,
                     const char* what);

}  // namespace flashattn::sm90
