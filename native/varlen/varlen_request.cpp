// varlen_request.cpp — reading and checking the varlen requests (flash-attn's
// flash_attn_varlen_func and its backward).
#include "varlen/varlen_request.h"

#include <algorithm>
#include <climits>
#include <string>
#include <vector>

#include "errors.h"
#include "fields.h"

namespace flashattn::native {

namespace {

constexpr const char* kLseLegend = "[headsQ, totalQ]";
constexpr const char* kCuLegend = "[batch + 1]";

std::string str(int64_t v) { return std::to_string(v); }

// maxSeqlenQ / maxSeqlenK: -1 when the request leaves it out. Read before any tensor, so that no
// field read after them can run code while their host pointers are held.
int64_t read_max(const OwnFields& req, const char* name) {
  const Napi::Value v = field(req, name);
  return v.IsUndefined() ? -1 : read_integer(v, name, 0, INT_MAX, "a non-negative integer");
}

// The offsets of one side (cuSeqlensQ over q's rows, or cuSeqlensK over k's), read and checked:
// 0 first, non-decreasing, `total` last; the longest sequence at most `max` (maxSeqlen<side>)
// when given.
std::vector<int32_t> checked_offsets(const TensorArg& cu, const TensorArg& packed, const char* side, int64_t max) {
  std::vector<int32_t> v(static_cast<size_t>(cu.shape[0]));
  gather(cu, cu.host, v.data());
  const std::string total_name = packed.name + ".shape[0] (total" + side + ")";
  if (v[0] != 0) fail(ErrorCode::kArg, cu.name + "[0] must be 0 (the first sequence starts at row 0), but got " + str(v[0]));
  int longest = 0;
  for (size_t b = 1; b < v.size(); ++b) {
    if (v[b] < v[b - 1]) {
      fail(ErrorCode::kArg, cu.name + " must be non-decreasing (offsets of consecutive sequences), but " + cu.name + "[" +
                                str(static_cast<int64_t>(b)) + "] = " + str(v[b]) + " < " + cu.name + "[" +
                                str(static_cast<int64_t>(b - 1)) + "] = " + str(v[b - 1]));
    }
    longest = std::max(longest, v[b] - v[b - 1]);
  }
  if (v.back() != packed.shape[0]) {
    fail(ErrorCode::kShape, cu.name + "[batch] (its last value) must equal " + total_name + " = " + str(packed.shape[0]) +
                                ", but got " + str(v.back()));
  }
  if (max >= 0 && max < longest) {
    fail(ErrorCode::kArg, std::string("maxSeqlen") + side + " = " + str(max) + " is below the longest sequence in " +
                              cu.name + " (" + str(longest) + " rows); leave it out or pass at least that");
  }
  return v;
}

// The packed shapes: heads and headDim as in every request, lse [h, total_q], one batch of offsets.
void check_shapes(const AttentionJob& job) {
  const TensorArg& q = job.q;
  check_heads(job);
  if (job.lse.shape[0] != q.shape[1] || job.lse.shape[1] != q.shape[0]) {
    fail(ErrorCode::kShape, "lse.shape must be " + std::string(kLseLegend) + " = [" + str(q.shape[1]) + ", " +
                                str(q.shape[0]) + "], but got " + shape_text(job.lse));
  }
  const TensorArg &cq = job.cu_seqlens_q, &ck = job.cu_seqlens_k;
  if (ck.shape[0] != cq.shape[0]) {
    fail(ErrorCode::kShape, "cuSeqlensK.shape[0] (batch + 1) must equal cuSeqlensQ.shape[0] = " + str(cq.shape[0]) +
                                " (one batch of sequences for queries and keys), but got " + str(ck.shape[0]));
  }
}

AttentionJob parse_varlen(Napi::Value request, bool backward) {
  const OwnFields req(as_object(request, "the request"));
  AttentionJob job;
  job.backward = backward;
  job.varlen = true;
  read_common(req, job);
  const int64_t max_q = read_max(req, "maxSeqlenQ"), max_k = read_max(req, "maxSeqlenK");

  const OperandShapes packed{3, "[totalQ, headsQ, headDim]", "[totalK, headsKV, headDim]", kLseLegend};
  read_inputs(req, job, packed);
  job.cu_seqlens_q = read_tensor(req, "cuSeqlensQ", 1, kCuLegend);
  job.cu_seqlens_k = read_tensor(req, "cuSeqlensK", 1, kCuLegend);
  read_outputs(req, job, packed, job.q.dtype);
  job.stream = read_stream(req, job.device);
  // The offsets decide the launches (one per sequence), so the host reads them: host arrays only,
  // with host or device tensors alike. Every other tensor: all host or all DeviceBuffers.
  for (const TensorArg* t : {&job.cu_seqlens_q, &job.cu_seqlens_k}) {
    if (t->on_device()) {
      fail(ErrorCode::kUnsupported, t->name + ".data is a DeviceBuffer: the offsets must be a host int32 tensor or "
                                              "Int32Array (they plan the launches on the host; download() it first)");
    }
  }
  std::vector<TensorArg*> all;
  for (TensorArg* t : job.inputs()) {
    if (t != &job.cu_seqlens_q && t != &job.cu_seqlens_k) all.push_back(t);
  }
  for (TensorArg* t : job.outputs()) all.push_back(t);
  (void)check_placement(job.backend, job.device, all, &job.on_device);

  const DType dt = job.q.dtype;
  if (dt == DType::kFloat8E4M3) {
    fail(ErrorCode::kUnsupported, "q.dtype 'float8_e4m3' has no varlen path; use 'float32', 'float16' or 'bfloat16'");
  }
  check_dtypes(job);
  for (const TensorArg* t : {&job.cu_seqlens_q, &job.cu_seqlens_k}) expect_dtype(*t, DType::kInt32, "offsets are int32");
  check_shapes(job);
  check_memory(job);

  AttnParams& p = job.params;
  p.b = static_cast<int>(job.cu_seqlens_q.shape[0] - 1);
  p.s_q = job.q.dim(0);
  p.s_k = job.k.dim(0);
  p.h = job.q.dim(1);
  p.h_k = job.k.dim(1);
  p.d = job.q.dim(2);
  p.dtype = dt;
  p.out_dtype = dt;
  // Host tensors reach the backend as dense copies: one token is a [heads, d] block. DeviceBuffers
  // are read in place through their own row and head strides (the batch stride is not used).
  set_contiguous_strides(p);
  if (job.on_device) {
    auto rows = [](const TensorArg& t) {
      Strides st;
      st.row = t.strides[0];
      st.head = t.strides[1];
      return st;
    };
    p.q_stride = rows(job.q);
    p.k_stride = rows(job.k);
    p.v_stride = rows(job.v);
    p.o_stride = rows(job.out);
    if (backward) {
      p.do_stride = rows(job.dout);
      p.dq_stride = rows(job.dq);
      p.dk_stride = rows(job.dk);
      p.dv_stride = rows(job.dv);
    }
  }
  job.cu_q_values = checked_offsets(job.cu_seqlens_q, job.q, "Q", max_q);
  job.cu_k_values = checked_offsets(job.cu_seqlens_k, job.k, "K", max_k);
  return job;
}

}  // namespace

AttentionJob parse_varlen_forward(Napi::Value request) { return parse_varlen(request, false); }

AttentionJob parse_varlen_backward(Napi::Value request) { return parse_varlen(request, true); }

}  // namespace flashattn::native
