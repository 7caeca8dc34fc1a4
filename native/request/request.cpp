// request.cpp — reading and checking the attention, select and bench requests.
#include "request/request.h"

#include <cfloat>
#include <climits>
#include <cmath>
#include <cstring>

#include "errors.h"
#include "exec/stream.h"
#include "fields.h"
#include "request/flat.h"

namespace flashattn::native {

namespace {

constexpr const char* kQLegend = "[batch, seqlenQ, headsQ, headDim]";
constexpr const char* kKLegend = "[batch, seqlenK, headsKV, headDim]";
constexpr const char* kLseLegend = "[batch, headsQ, seqlenQ]";
constexpr int kMaxHeadDim = 256;
constexpr int kMaxThreads = 1024;

std::string str(int64_t v) { return std::to_string(v); }

// ---- scalar options ---------------------------------------------------------------------------

Backend read_backend(const OwnFields& req) {
  const Backend b = read_choice(field(req, "backend"), "backend", {"cpu", "cuda"}) == 0 ? Backend::kCpu
                                                                                         : Backend::kCuda;
#if !FLASHATTN_WITH_CUDA
  if (b == Backend::kCuda) fail(ErrorCode::kNoDevice, kBuiltWithoutCuda);
#endif
  return b;
}


int read_window(const OwnFields& req, const char* key) {
  return static_cast<int>(read_integer(field(req, key), key, -1, INT_MAX, "an integer >= -1 (-1 means unbounded)"));
}

float read_scale(const OwnFields& req) {
  const Napi::Value value = field(req, "scale");
  const double s = read_finite(value, "scale");
  if (std::fabs(s) > FLT_MAX) fail(ErrorCode::kArg, "scale must fit in a float32, but got " + describe(value));
  return static_cast<float>(s);
}

int read_dim(const OwnFields& req, const char* key) {
  return static_cast<int>(read_integer(field(req, key), key, 1, INT_MAX, "a positive integer", ErrorCode::kShape));
}

bool read_op_is_backward(const OwnFields& req) {
  return read_choice(field(req, "op"), "op", {"forward", "backward"}) == 1;
}

// ---- tensor consistency -----------------------------------------------------------------------

void expect_dim(const TensorArg& t, int i, const char* what, const TensorArg& ref, int ref_i) {
  if (t.shape[i] != ref.shape[ref_i]) {
    fail(ErrorCode::kShape, t.name + ".shape[" + str(i) + "] (" + what + ") must equal " + ref.name + ".shape[" +
                                str(ref_i) + "] = " + str(ref.shape[ref_i]) + ", but got " + str(t.shape[i]));
  }
}

// The dtype of `out` (and of dout): q's, except bf16 for fp8 inputs.
DType output_dtype(DType in) { return in == DType::kFloat8E4M3 ? DType::kBFloat16 : in; }

}  // namespace

void expect_same_shape(const TensorArg& t, const TensorArg& ref) {
  for (int i = 0; i < ref.rank; ++i) {
    if (t.shape[i] != ref.shape[i]) {
      fail(ErrorCode::kShape,
           t.name + ".shape must equal " + ref.name + ".shape " + shape_text(ref) + ", but got " + shape_text(t));
    }
  }
}

void expect_dtype(const TensorArg& t, DType want, const std::string& why) {
  if (t.dtype != want) {
    fail(ErrorCode::kDType, t.name + ".dtype must be '" + dtype_name(want) + "' (" + why + "), but got '" +
                                dtype_name(t.dtype) + "'");
  }
}

void check_dtypes(AttentionJob& job) {
  const TensorArg& q = job.q;
  const TensorArg& k = job.k;
  if (q.dtype == DType::kInt32) {
    fail(ErrorCode::kDType, "q.dtype must be a floating dtype ('float32', 'float16', 'bfloat16', 'float8_e4m3'), but got "
                            "'int32' (int32 tensors carry lengths, offsets and block tables)");
  }

  // dtypes
  expect_dtype(k, q.dtype, "like q.dtype");
  expect_dtype(job.v, q.dtype, "like q.dtype");
  if (q.dtype == DType::kFloat8E4M3) {
    if (job.out.dtype != DType::kBFloat16 && job.out.dtype != DType::kFloat16) {
      fail(ErrorCode::kDType, "out.dtype must be 'bfloat16' or 'float16' for float8_e4m3 inputs, but got '" +
                                  std::string(dtype_name(job.out.dtype)) + "'");
    }
    if (!job.out.absent && !job.backward && job.out.dtype != job.params.out_dtype) {
      fail(ErrorCode::kDType, "out.dtype '" + std::string(dtype_name(job.out.dtype)) + "' must equal outDtype '" +
                                  dtype_name(job.params.out_dtype) + "'");
    }
  } else {
    expect_dtype(job.out, q.dtype, "like q.dtype");
  }
  expect_dtype(job.lse, DType::kFloat32, "lse is always float32");
  if (job.backward) {
    expect_dtype(job.dout, job.out.dtype, "like out.dtype");
    expect_dtype(job.dq, q.dtype, "like q.dtype");
    expect_dtype(job.dk, q.dtype, "like q.dtype");
    expect_dtype(job.dv, q.dtype, "like q.dtype");
  }
}

void check_memory(AttentionJob& job) {
  for (TensorArg* t : job.outputs()) {
    if (!t->absent && !non_overlapping(*t)) {
      fail(ErrorCode::kArg, t->name + ".strides make elements share memory; an output must not overlap itself");
    }
  }
  // The kernels index lse as a contiguous array (AttnParams has no lse strides); a host array is
  // staged through a contiguous copy, so only a device view must be.
  if (job.lse.on_device() && !job.lse.contiguous()) {
    fail(ErrorCode::kUnsupported, job.lse.name + " must be contiguous on the device (no strides); the kernels take no "
                                                 "lse strides");
  }
  std::vector<const TensorArg*> ins, outs;
  for (TensorArg* t : job.inputs()) ins.push_back(t);
  for (TensorArg* t : job.outputs()) outs.push_back(t);
  check_no_overlap(outs, ins);
}

void check_heads(const AttentionJob& job) {
  const TensorArg& q = job.q;
  const TensorArg& k = job.k;
  const int hs = q.rank - 2, hd = q.rank - 1;  // the heads and headDim dims
  expect_dim(k, hd, "headDim", q, hd);
  expect_same_shape(job.v, k);
  if (q.shape[hs] % k.shape[hs] != 0) {
    fail(ErrorCode::kShape, "q.shape[" + str(hs) + "] (headsQ) = " + str(q.shape[hs]) + " must be a multiple of k.shape[" +
                                str(hs) + "] (headsKV) = " + str(k.shape[hs]));
  }
  const std::string d_problem = head_dim_problem(q.shape[hd], "q.shape[" + str(hd) + "] (headDim)");
  if (!d_problem.empty()) fail(ErrorCode::kUnsupported, d_problem);
  expect_same_shape(job.out, q);
  if (job.backward) {
    expect_same_shape(job.dout, q);
    expect_same_shape(job.dq, q);
    expect_same_shape(job.dk, k);
    expect_same_shape(job.dv, k);
  }
}

namespace {

// The rank-4 shapes of a forward or backward request.
void check_shapes(AttentionJob& job) {
  const TensorArg& q = job.q;
  expect_dim(job.k, 0, "batch", q, 0);
  check_heads(job);
  const TensorArg& lse = job.lse;
  if (lse.shape[0] != q.shape[0] || lse.shape[1] != q.shape[2] || lse.shape[2] != q.shape[1]) {
    fail(ErrorCode::kShape, "lse.shape must be " + std::string(kLseLegend) + " = [" + str(q.shape[0]) + ", " +
                                str(q.shape[2]) + ", " + str(q.shape[1]) + "], but got " + shape_text(lse));
  }
}

}  // namespace

const TensorArg* check_placement(Backend backend, int device_index, const std::vector<TensorArg*>& all, bool* on_device) {
  const TensorArg* host = nullptr;    // the first host array
  const TensorArg* device = nullptr;  // the first DeviceBuffer
  for (const TensorArg* t : all) {
    if (t->absent) continue;
    if (t->on_device()) {
      if (!device) device = t;
    } else if (!host) {
      host = t;
    }
  }
  if (device && backend == Backend::kCpu) {
    fail(ErrorCode::kArg, device->name + ".data is a DeviceBuffer, but backend 'cpu' needs host typed arrays "
                                         "(use backend 'cuda', or download() the buffer first)");
  }
  if (device && host) {
    fail(ErrorCode::kArg, "the tensors of one request must be all host typed arrays or all DeviceBuffers, but " +
                              host->name + ".data is a " + host->kind + " and " + device->name + ".data is a DeviceBuffer");
  }
  for (const TensorArg* t : all) {
    if (!t->absent && t->on_device() && t->device->device != device_index) {
      fail(ErrorCode::kArg, t->name + ".data is a DeviceBuffer on device " + str(t->device->device) +
                                ", but the request runs on device " + str(device_index));
    }
  }
  *on_device = device != nullptr;
  return host;
}

namespace {

void check_placement(AttentionJob& job) {
  std::vector<TensorArg*> all = job.inputs();
  for (TensorArg* t : job.outputs()) all.push_back(t);
  (void)flashattn::native::check_placement(job.backend, job.device, all, &job.on_device);
}


// Sizes, dtypes and strides; scale, window and deterministic were read by read_common.
void fill_params(AttentionJob& job) {
  AttnParams& p = job.params;
  p.b = job.q.dim(0);
  p.s_q = job.q.dim(1);
  p.h = job.q.dim(2);
  p.d = job.q.dim(3);
  p.s_k = job.k.dim(1);
  p.h_k = job.k.dim(2);
  p.dtype = job.q.dtype;
  p.out_dtype = job.out.dtype;
  set_contiguous_strides(p);
  // Host tensors are staged through contiguous copies (native/exec/); device tensors are read in
  // place, through their strides, which the kernels honour for every 4-D operand.
  if (job.on_device) {
    p.q_stride = strides_of(job.q);
    p.k_stride = strides_of(job.k);
    p.v_stride = strides_of(job.v);
    p.o_stride = strides_of(job.out);
    if (job.backward) {
      p.do_stride = strides_of(job.dout);
      p.dq_stride = strides_of(job.dq);
      p.dk_stride = strides_of(job.dk);
      p.dv_stride = strides_of(job.dv);
    }
  }
}

}  // namespace

int read_device(const OwnFields& req) {
  return static_cast<int>(
      read_integer(field(req, "device"), "device", 0, INT_MAX, "a non-negative integer (a CUDA device index)"));
}

int read_count(const OwnFields& req, const char* key, int64_t max) {
  return static_cast<int>(read_integer(field(req, key), key, 1, max, "a positive integer"));
}

TensorArg absent_output(const char* name, int rank, const std::vector<int64_t>& shape, DType dtype) {
  {
    TensorArg t;
    t.name = name;
    t.rank = rank;
    t.dtype = dtype;
    size_t n = 1;
    for (int i = 0; i < rank; ++i) {
      t.shape[i] = shape[static_cast<size_t>(i)];
      n *= static_cast<size_t>(t.shape[i]);
    }
    t.bytes = n * static_cast<size_t>(dtype_size(dtype));
    t.span_bytes = t.bytes;
    int64_t step = 1;
    for (int i = rank - 1; i >= 0; --i) {
      t.strides[i] = step;
      step *= t.shape[i];
    }
    t.absent = true;
    t.kind = "(allocated)";
    return t;
  }
}

TensorArg read_output(const OwnFields& req, const char* name, int rank, const char* legend,
                      const std::vector<int64_t>& shape, DType dtype) {
  if (field(req, name).IsUndefined()) return absent_output(name, rank, shape, dtype);
  return read_tensor(req, name, rank, legend);
}

namespace {

// The request type's slots for the serving paths (KV cache, paged KV, varlen, fp8). They are read
// and checked like any tensor, and refused until an op implements them, so a request that names
// one never runs without it.
void refuse_unsupported_slots(const OwnFields& req, const char* op) {
  struct Slot {
    const char* name;
    int rank;
    const char* legend;
  };
  static const Slot kSlots[] = {
      {"kNew", 4, kKLegend},
      {"vNew", 4, kKLegend},
      {"blockTable", 2, "[batch, maxBlocks]"},
      {"cuSeqlensQ", 1, "[batch + 1]"},
      {"cuSeqlensK", 1, "[batch + 1]"},
      {"seqlensK", 1, "[batch]"},
  };
  for (const Slot& slot : kSlots) {
    if (field(req, slot.name).IsUndefined()) continue;
    (void)read_tensor(req, slot.name, slot.rank, slot.legend);
    fail(ErrorCode::kUnsupported, std::string(slot.name) + " is not supported by " + op + " yet");
  }
}

// outDtype: the dtype of out for float8_e4m3 inputs, bfloat16 (default) or float16; other inputs
// must leave it out or name their own dtype.
DType read_fp8_out_dtype(const OwnFields& req, DType in) {
  const Napi::Value v = field(req, "outDtype");
  if (v.IsUndefined()) return output_dtype(in);
  return choose_out_dtype(in, read_dtype(v, "outDtype"));
}

}  // namespace

DType choose_out_dtype(DType in, DType want) {
  if (in == DType::kFloat8E4M3) {
    if (want != DType::kBFloat16 && want != DType::kFloat16) {
      fail(ErrorCode::kDType, "outDtype must be 'bfloat16' or 'float16' for float8_e4m3 inputs, but got '" +
                                  std::string(dtype_name(want)) + "'");
    }
    return want;
  }
  if (want != in) {
    fail(ErrorCode::kDType, "outDtype must be q.dtype '" + std::string(dtype_name(in)) +
                                "' (only float8_e4m3 inputs choose it), but got '" + dtype_name(want) + "'");
  }
  return want;
}

void read_descales(AttentionJob& job, bool (*given)(const void* src, const char* name),
                   TensorArg (*read)(const void* src, const char* name, const char* legend), const void* src) {
  struct Role {
    const char* name;
    TensorArg* t;
    int64_t heads;
    const char* legend;
  };
  const Role roles[] = {{"qDescale", &job.q_descale, job.q.shape[2], "[batch, headsQ]"},
                        {"kDescale", &job.k_descale, job.k.shape[2], "[batch, headsKV]"},
                        {"vDescale", &job.v_descale, job.k.shape[2], "[batch, headsKV]"}};
  for (const Role& r : roles) {
    r.t->name = r.name;
    r.t->absent = true;
    if (!given(src, r.name)) continue;
    if (job.q.dtype != DType::kFloat8E4M3) {
      fail(ErrorCode::kArg, std::string(r.name) + " applies to float8_e4m3 inputs only, but q.dtype is '" +
                                dtype_name(job.q.dtype) + "'");
    }
    *r.t = read(src, r.name, r.legend);
    expect_dtype(*r.t, DType::kFloat32, "descale factors are float32");
    if (r.t->shape[0] != job.q.shape[0] || r.t->shape[1] != r.heads) {
      fail(ErrorCode::kShape, std::string(r.name) + ".shape must be " + r.legend + " = [" + str(job.q.shape[0]) + ", " +
                                  str(r.heads) + "], but got " + shape_text(*r.t));
    }
    if (!r.t->contiguous()) fail(ErrorCode::kUnsupported, std::string(r.name) + " must be contiguous (no strides)");
  }
}

namespace {

// read_descales from the request object.
void read_descales(const OwnFields& req, AttentionJob& job) {
  read_descales(
      job, [](const void* src, const char* name) { return !field(*static_cast<const OwnFields*>(src), name).IsUndefined(); },
      [](const void* src, const char* name, const char* legend) {
        return read_tensor(*static_cast<const OwnFields*>(src), name, 2, legend);
      },
      &req);
}

}  // namespace

std::shared_ptr<StreamCore> read_stream(const OwnFields& req, int device) { return stream_of(field(req, "stream"), device); }

std::shared_ptr<StreamCore> stream_of(Napi::Value v, int device) {
  if (v.IsUndefined() || v.IsNull()) return nullptr;
  Stream* s = Stream::FromValue(v);
  if (s == nullptr) fail(ErrorCode::kArg, "stream must be a Stream (new Stream(deviceIndex)), but got " + describe(v));
  std::shared_ptr<StreamCore> core = s->Acquire("stream");
  if (core->device != device) {
    fail(ErrorCode::kArg, "stream belongs to device " + str(core->device) + ", but the request runs on device " +
                              str(device));
  }
  return core;
}

void read_inputs(const OwnFields& req, AttentionJob& job, const OperandShapes& shapes) {
  const int r = shapes.rank;
  if (job.backward) job.dout = read_tensor(req, "dout", r, shapes.q);
  job.q = read_tensor(req, "q", r, shapes.q);
  job.k = read_tensor(req, "k", r, shapes.k);
  job.v = read_tensor(req, "v", r, shapes.k);
  if (job.backward) {
    job.out = read_tensor(req, "out", r, shapes.q);
    job.lse = read_tensor(req, "lse", r - 1, shapes.lse);
  }
}

void read_outputs(const OwnFields& req, AttentionJob& job, const OperandShapes& shapes, DType out_dtype) {
  const int r = shapes.rank;
  const std::vector<int64_t> qs(job.q.shape, job.q.shape + r), ks(job.k.shape, job.k.shape + r);
  if (job.backward) {
    job.dq = read_output(req, "dq", r, shapes.q, qs, job.q.dtype);
    job.dk = read_output(req, "dk", r, shapes.k, ks, job.q.dtype);
    job.dv = read_output(req, "dv", r, shapes.k, ks, job.q.dtype);
    return;
  }
  job.out = read_output(req, "out", r, shapes.q, qs, out_dtype);
  // [b, h, s_q] of q [b, s_q, h, d]; [h, total_q] of q [total_q, h, d].
  const std::vector<int64_t> lse = r == 4 ? std::vector<int64_t>{qs[0], qs[2], qs[1]} : std::vector<int64_t>{qs[1], qs[0]};
  job.lse = read_output(req, "lse", r - 1, shapes.lse, lse, DType::kFloat32);
}

void read_common(const OwnFields& req, AttentionJob& job) {
  job.backend = read_backend(req);
  job.device = read_device(req);
  job.params.scale = read_scale(req);
  job.params.window_left = read_window(req, "windowLeft");
  job.params.window_right = read_window(req, "windowRight");
  job.threads = static_cast<int>(read_integer(field(req, "threads"), "threads", 0, kMaxThreads,
                                              "an integer from 0 to 1024 (0 = one per hardware thread)"));
  if (job.backward) job.params.deterministic = read_bool(field(req, "deterministic"), "deterministic");
  const Napi::Value poison = field(req, "poison");
  job.poison = poison.IsUndefined() ? false : read_bool(poison, "poison");
}

namespace {

AttentionJob parse_attention(Napi::Value request, bool backward) {
  const OwnFields req(as_object(request, "the request"));
  AttentionJob job;
  job.backward = backward;
  read_common(req, job);
  if (!backward) job.naive = read_bool(field(req, "naive"), "naive");

  const OperandShapes padded{4, kQLegend, kKLegend, kLseLegend};
  read_inputs(req, job, padded);
  if (!backward) job.params.out_dtype = read_fp8_out_dtype(req, job.q.dtype);  // what a given out must be (check_dtypes)
  read_outputs(req, job, padded, backward ? job.q.dtype : job.params.out_dtype);
  if (!backward) read_descales(req, job);
  job.stream = read_stream(req, job.device);
  refuse_unsupported_slots(req, backward ? "backward" : "forward");
  if (backward) {
    for (const char* name : {"qDescale", "kDescale", "vDescale", "outDtype"}) {
      if (!field(req, name).IsUndefined()) fail(ErrorCode::kUnsupported, std::string(name) + " is forward only (float8_e4m3 has no backward)");
    }
  }

  finish_attention(job);
  return job;
}

}  // namespace

void finish_attention(AttentionJob& job) {
  check_placement(job);
  check_dtypes(job);
  check_shapes(job);
  check_memory(job);
  fill_params(job);
}

std::string head_dim_problem(int64_t d, const std::string& path) {
  if (d % 8 != 0 || d > kMaxHeadDim) {
    return path + " must be a multiple of 8 and at most " + str(kMaxHeadDim) + ", but got " + str(d);
  }
  return {};
}

std::vector<TensorArg*> AttentionJob::inputs() {
  std::vector<TensorArg*> in = {&q, &k, &v};
  if (backward) in = {&dout, &q, &k, &v, &out, &lse};
  for (TensorArg* t : {&q_descale, &k_descale, &v_descale, &cu_seqlens_q, &cu_seqlens_k}) {
    if (!t->absent && !t->name.empty()) in.push_back(t);
  }
  return in;
}

std::vector<TensorArg*> AttentionJob::outputs() {
  if (backward) return {&dq, &dk, &dv};
  return {&out, &lse};
}

AttentionJob parse_forward(Napi::Value request) { return parse_attention(request, false); }

AttentionJob parse_backward(Napi::Value request) { return parse_attention(request, true); }

SelectQuery parse_select(Napi::Value request) {
  const OwnFields req(as_object(request, "the request"));
  SelectQuery s;
  s.backward = read_op_is_backward(req);
  s.device = read_device(req);
  AttnParams& p = s.params;
  p.b = 1;
  p.dtype = read_dtype(field(req, "dtype"), "dtype");
  p.d = read_dim(req, "headDim");
  p.s_q = read_dim(req, "seqlenQ");
  p.s_k = read_dim(req, "seqlenK");
  p.h = read_dim(req, "headsQ");
  p.h_k = read_dim(req, "headsKV");
  p.window_left = read_window(req, "windowLeft");
  p.window_right = read_window(req, "windowRight");
  if (p.h % p.h_k != 0) {
    fail(ErrorCode::kShape, "headsQ = " + str(p.h) + " must be a multiple of headsKV = " + str(p.h_k));
  }
  p.scale = field(req, "scale").IsUndefined() ? 1.0f / std::sqrt(static_cast<float>(p.d)) : read_scale(req);
  const Napi::Value batch = field(req, "batch");
  p.b = batch.IsUndefined() ? 1 : read_dim(req, "batch");
  const Napi::Value det = field(req, "deterministic");
  p.deterministic = det.IsUndefined() ? false : read_bool(det, "deterministic");
  set_contiguous_strides(p);
  return s;
}

BenchQuery parse_bench(Napi::Value request) {
  const OwnFields req(as_object(request, "the request"));
  BenchQuery b;
  b.backward = read_op_is_backward(req);
  b.naive = read_bool(field(req, "naive"), "naive");
  if (b.naive && b.backward) fail(ErrorCode::kArg, "naive must be false for op 'backward' (naive is forward only)");
  b.device = read_device(req);
  AttnParams& p = b.params;
  p.dtype = read_dtype(field(req, "dtype"), "dtype");
  p.b = read_dim(req, "batch");
  p.s_q = read_dim(req, "seqlenQ");
  p.s_k = read_dim(req, "seqlenK");
  p.h = read_dim(req, "headsQ");
  p.h_k = read_dim(req, "headsKV");
  p.d = read_dim(req, "headDim");
  p.scale = read_scale(req);
  p.window_left = read_window(req, "windowLeft");
  p.window_right = read_window(req, "windowRight");
  p.deterministic = read_bool(field(req, "deterministic"), "deterministic");
  b.warmup = static_cast<int>(
      read_integer(field(req, "warmup"), "warmup", 0, 1000000, "an integer from 0 to 1000000"));
  b.iters = static_cast<int>(read_integer(field(req, "iters"), "iters", 1, 1000000, "an integer from 1 to 1000000"));
  if (p.h % p.h_k != 0) {
    fail(ErrorCode::kShape, "headsQ = " + str(p.h) + " must be a multiple of headsKV = " + str(p.h_k));
  }
  const std::string d_problem = head_dim_problem(p.d, "headDim");
  if (!d_problem.empty()) fail(ErrorCode::kUnsupported, d_problem);
  set_contiguous_strides(p);
  return b;
}

}  // namespace flashattn::native

// ---- the flat forward request (request/flat.h) ----------------------------------------------------

namespace flashattn::native {

namespace {

[[noreturn]] void malformed(const char* what) {
  fail(ErrorCode::kInternal, std::string("the flat request header is malformed at ") + what +
                                 " (this is a bug in flashattn)");
}

struct FlatHeader {
  const Napi::CallbackInfo& info;
  const double* h;

  int64_t integer(int i, int64_t min, int64_t max, const char* what) const {
    const double d = h[i];
    if (!(std::isfinite(d) && std::floor(d) == d && d >= static_cast<double>(min) && d <= static_cast<double>(max))) {
      malformed(what);
    }
    return static_cast<int64_t>(d);
  }
  const double* slot(int role) const { return h + flat::kSlots + role * flat::kSlotSize; }
  bool present(int role) const { return integer(flat::kSlots + role * flat::kSlotSize + flat::kPresent, 0, 1, "present") == 1; }

  // The tensor of `role`, read like read_tensor reads one (request/tensor.h).
  TensorArg tensor(int role, const char* name, int rank) const {
    const int base = flat::kSlots + role * flat::kSlotSize;
    TensorArg t;
    t.name = name;
    t.rank = rank;
    t.dtype = static_cast<DType>(integer(base + flat::kDType, 0, static_cast<int>(DType::kInt32), "dtype"));
    for (int i = 0; i < rank; ++i) t.shape[i] = integer(base + flat::kShape + i, 1, INT_MAX, "shape");
    set_extent(t);
    if (integer(base + flat::kHasStrides, 0, 1, "strides") == 1) {
      for (int i = 0; i < rank; ++i) t.strides[i] = integer(base + flat::kStrides + i, 0, kMaxSafeInteger, "strides");
      check_strides(t);
    }
    set_span(t);
    const int64_t offset = integer(base + flat::kOffset, -1, kMaxSafeInteger, "offset");
    Napi::Env env = info.Env();
    bind_data(t, info[2 + role], offset < 0 ? env.Undefined() : Napi::Number::New(env, static_cast<double>(offset)));
    return t;
  }
};

const double* header_of(Napi::Value value) {
  if (value.IsTypedArray()) {
    const Napi::TypedArray array = value.As<Napi::TypedArray>();
    if (array.TypedArrayType() == napi_float64_array && array.ElementLength() >= static_cast<size_t>(flat::kHeaderLength)) {
      return static_cast<const double*>(host_view(array).data);
    }
  }
  fail(ErrorCode::kInternal, "forwardFlat needs a Float64Array header of " + str(flat::kHeaderLength) +
                                 " numbers (this is a bug in flashattn)");
}

}  // namespace

AttentionJob parse_forward_flat(const Napi::CallbackInfo& info) {
  const FlatHeader f{info, header_of(info[0])};
  const double* h = f.h;
  AttentionJob job;
  // As read_common and parse_attention read them, in their order.
  job.backend = f.integer(flat::kBackend, 0, 1, "backend") == 0 ? Backend::kCpu : Backend::kCuda;
#if !FLASHATTN_WITH_CUDA
  if (job.backend == Backend::kCuda) fail(ErrorCode::kNoDevice, kBuiltWithoutCuda);
#endif
  job.device = static_cast<int>(f.integer(flat::kDevice, 0, INT_MAX, "device"));
  if (!(std::isfinite(h[flat::kScale]) && std::fabs(h[flat::kScale]) <= FLT_MAX)) malformed("scale");
  job.params.scale = static_cast<float>(h[flat::kScale]);
  job.params.window_left = static_cast<int>(f.integer(flat::kWindowLeft, -1, INT_MAX, "windowLeft"));
  job.params.window_right = static_cast<int>(f.integer(flat::kWindowRight, -1, INT_MAX, "windowRight"));
  job.threads = static_cast<int>(f.integer(flat::kThreads, 0, kMaxThreads, "threads"));
  job.poison = f.integer(flat::kPoison, 0, 1, "poison") == 1;
  job.naive = f.integer(flat::kNaive, 0, 1, "naive") == 1;

  for (int role : {flat::kQ, flat::kK, flat::kV}) {
    if (!f.present(role)) malformed("q, k, v");
  }
  job.q = f.tensor(flat::kQ, "q", 4);
  job.k = f.tensor(flat::kK, "k", 4);
  job.v = f.tensor(flat::kV, "v", 4);
  const int64_t out_code = f.integer(flat::kOutDtype, -1, static_cast<int>(DType::kInt32), "outDtype");
  job.params.out_dtype = out_code < 0 ? output_dtype(job.q.dtype) : choose_out_dtype(job.q.dtype, static_cast<DType>(out_code));
  const std::vector<int64_t> qs(job.q.shape, job.q.shape + 4);
  job.out = f.present(flat::kOut) ? f.tensor(flat::kOut, "out", 4) : absent_output("out", 4, qs, job.params.out_dtype);
  job.lse = f.present(flat::kLse) ? f.tensor(flat::kLse, "lse", 3)
                                  : absent_output("lse", 3, {qs[0], qs[2], qs[1]}, DType::kFloat32);
  struct Names {
    const char* name;
    int role;
  };
  static constexpr Names kDescales[] = {{"qDescale", flat::kQDescale}, {"kDescale", flat::kKDescale}, {"vDescale", flat::kVDescale}};
  read_descales(
      job,
      [](const void* src, const char* name) {
        for (const Names& n : kDescales) {
          if (std::strcmp(n.name, name) == 0) return static_cast<const FlatHeader*>(src)->present(n.role);
        }
        return false;
      },
      [](const void* src, const char* name, const char*) {
        for (const Names& n : kDescales) {
          if (std::strcmp(n.name, name) == 0) return static_cast<const FlatHeader*>(src)->tensor(n.role, name, 2);
        }
        malformed("descales");
      },
      &f);
  job.stream = stream_of(info[1], job.device);
  finish_attention(job);
  return job;
}

}  // namespace flashattn::native
