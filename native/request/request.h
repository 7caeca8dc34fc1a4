// request.h — the requests of binding.ts (NativeForwardRequest, NativeBackwardRequest,
// NativeSelectRequest, NativeBenchRequest), read from JS and checked on the JS thread, as plain
// structs the worker threads can use.
//
// Every parse_* throws AddonError with the field path and what was expected; the caller prefixes
// the op ("forward: ..."). Nothing here runs attention work.
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>
#include <vector>

#include "params.h"
#include "request/tensor.h"

#include <memory>

namespace flashattn::native {

struct StreamCore;

enum class Backend { kCpu, kCuda };

// One forward or backward request, checked. params holds sizes, dtype, scale, window,
// deterministic and contiguous strides; its pointers are bound where the op runs (host arrays
// directly, or device staging copies of them, or DeviceBuffers).
struct AttentionJob {
  bool backward = false;
  bool naive = false;  // forward only: materialize the scores ("standard attention")
  Backend backend = Backend::kCpu;
  int device = 0;
  int threads = 0;        // CPU threads; 0 = the CPU backend's default
  bool on_device = false; // every tensor is a DeviceBuffer (backend 'cuda' only)
  bool poison = false;    // fill the outputs with NaN bits before the backend runs (tests)
  std::shared_ptr<StreamCore> stream;  // the request's Stream, or null for the default pool
  AttnParams params;

  // Forward reads q, k, v and writes out, lse. Backward reads dout, q, k, v, out, lse and writes
  // dq, dk, dv.
  TensorArg q, k, v, out, lse, dout, dq, dk, dv;
  // Forward with float8_e4m3 inputs only: float32 descale factors, q (b, h), k and v (b, h_k);
  // absent (the default) means 1. Present ones are inputs like q.
  TensorArg q_descale, k_descale, v_descale;
  // Varlen requests (native/varlen/): q, out, dout, dq are packed [totalQ, h, d]; k, v, dk, dv
  // [totalK, h_k, d]; lse [h, totalQ]; int32 cu_seqlens_q / cu_seqlens_k [batch + 1] (inputs):
  // sequence i is rows cu[i] .. cu[i + 1] - 1. params.b is the batch, params.s_q / s_k the totals.
  bool varlen = false;
  TensorArg cu_seqlens_q, cu_seqlens_k;
  // Their values as the request layer read and checked them (the CUDA path plans its launches
  // from these; the CPU backend reads its staged copy of the tensors).
  std::vector<int32_t> cu_q_values, cu_k_values;

  std::vector<TensorArg*> inputs();
  std::vector<TensorArg*> outputs();
};

// headDim limits every path shares (params.h: d % 8 == 0, d <= 256): empty when d is fine, else
// "<path> must be a multiple of 8 and at most 256, but got <d>".
std::string head_dim_problem(int64_t d, const std::string& path);

// Outputs (out, lse; dq, dk, dv) may be left out of the request: they are then marked absent,
// with the shape and dtype they must have, and the execution layer allocates them.
// All host arrays, or all DeviceBuffers on `device`; DeviceBuffers need backend 'cuda' (E_ARG
// otherwise). Absent outputs are skipped. Sets *on_device; returns the first host array, if any.
const TensorArg* check_placement(Backend backend, int device, const std::vector<TensorArg*>& all, bool* on_device);

AttentionJob parse_forward(Napi::Value request);
AttentionJob parse_backward(Napi::Value request);

// Pieces of parse_forward/parse_backward that other attention requests (varlen) share.
// backend, device, scale, windowLeft, windowRight, threads, poison and (job.backward)
// deterministic, into job and job.params.
void read_common(const OwnFields& req, AttentionJob& job);
// How a request's tensors are shaped: rank of q, k, v and the tensors like them (lse: rank - 1),
// and the legends of q, k and lse for messages. Padded: 4, [batch, seqlenQ, headsQ, headDim], ...,
// lse [batch, headsQ, seqlenQ]; packed varlen: 3, [totalQ, headsQ, headDim], ..., lse [headsQ, totalQ].
struct OperandShapes {
  int rank;
  const char* q;
  const char* k;
  const char* lse;
};
// The inputs by rank alone: q, k, v; backward: dout, out, lse too.
void read_inputs(const OwnFields& req, AttentionJob& job, const OperandShapes& shapes);
// The outputs, which may be left out: forward out (out_dtype) and lse; backward dq, dk, dv.
void read_outputs(const OwnFields& req, AttentionJob& job, const OperandShapes& shapes, DType out_dtype);
// An output the request may leave out: read it when present, else marked absent with the shape
// and dtype it must have (the execution layer allocates it).
TensorArg read_output(const OwnFields& req, const char* name, int rank, const char* legend,
                      const std::vector<int64_t>& shape, DType dtype);
// The same, for an output the request leaves out: marked absent with that shape and dtype.
TensorArg absent_output(const char* name, int rank, const std::vector<int64_t>& shape, DType dtype);
// outDtype `want` given for inputs of dtype `in`: bfloat16 or float16 for float8_e4m3, else `in`
// itself (E_DTYPE).
DType choose_out_dtype(DType in, DType want);
// qDescale (b, h), kDescale and vDescale (b, h_k): float32, contiguous, float8_e4m3 inputs only.
// given(src, name) says whether the request has one; read(src, name, legend) reads it (rank 2).
void read_descales(AttentionJob& job, bool (*given)(const void* src, const char* name),
                   TensorArg (*read)(const void* src, const char* name, const char* legend), const void* src);
// The checks and params of a forward or backward request once its tensors and options are in
// the job: placement, dtypes, shapes, memory, then params' sizes and strides.
void finish_attention(AttentionJob& job);
// req.device: a CUDA device index (E_ARG unless a non-negative integer).
int read_device(const OwnFields& req);
// req[key]: an integer in [1, max] (E_ARG), for sizes that are not tensor dims.
int read_count(const OwnFields& req, const char* key, int64_t max);
// The request's Stream (null when absent), on `device`.
std::shared_ptr<StreamCore> read_stream(const OwnFields& req, int device);
// The same for the value itself (undefined or null: none).
std::shared_ptr<StreamCore> stream_of(Napi::Value value, int device);
// t.shape == ref.shape (E_SHAPE), t.dtype == want (E_DTYPE; `why` says why).
void expect_same_shape(const TensorArg& t, const TensorArg& ref);
void expect_dtype(const TensorArg& t, DType want, const std::string& why);
// The shapes every attention request checks alike, whatever its rank r: k's headDim (dim r - 1) is
// q's, v is shaped like k, q's heads (dim r - 2) a multiple of k's, headDim supported; out, dout and
// dq like q, dk and dv like k (E_SHAPE; E_UNSUPPORTED for the headDim).
void check_heads(const AttentionJob& job);
// Every tensor's dtype against q's (out: outDtype for fp8; lse float32), whatever the ranks.
void check_dtypes(AttentionJob& job);
// No output overlaps itself or another tensor; a device lse is contiguous.
void check_memory(AttentionJob& job);

// NativeSelectRequest: which kernel would run (b = 1; pointers null).
struct SelectQuery {
  bool backward = false;
  int device = 0;
  AttnParams params;
};
// scale, batch and deterministic are optional (default 1/sqrt(headDim), a capability query, false).
SelectQuery parse_select(Napi::Value request);

// NativeBenchRequest: shapes only; the kernels run on random device data.
struct BenchQuery {
  bool backward = false;
  bool naive = false;
  int device = 0;
  AttnParams params;
  int warmup = 0;
  int iters = 0;
};
BenchQuery parse_bench(Napi::Value request);

}  // namespace flashattn::native
