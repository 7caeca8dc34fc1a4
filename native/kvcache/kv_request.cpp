// kv_request.cpp — reading and checking the KV-cache request (flash-attn's flash_attn_with_kvcache).
#include "kvcache/kv_request.h"

#include <cfloat>
#include <climits>
#include <cmath>
#include <string>
#include <unordered_set>

#include "errors.h"
#include "exec/stream.h"
#include "fields.h"

namespace flashattn::native {

namespace {

constexpr const char* kQLegend = "[batch, seqlenQ, headsQ, headDim]";
constexpr const char* kCacheLegend = "[batchCache, maxSeqlen, headsKV, headDim] or paged [numBlocks, pageSize, headsKV, headDim]";
constexpr const char* kNewLegend = "[batch, seqlenNew, headsKV, headDim]";
constexpr const char* kLseLegend = "[batch, headsQ, seqlenQ]";
constexpr int kPageMultiple = 16;

std::string str(int64_t v) { return std::to_string(v); }

bool present(const OwnFields& req, const char* name) { return !field(req, name).IsUndefined(); }

// The request's own scalar options.
struct Scalars {
  float scale = 0.f;
  int window_left = -1, window_right = -1;
  bool rotary_interleaved = false;
};

Scalars read_scalars(const OwnFields& req, KvCacheJob& job) {
  job.backend = read_choice(field(req, "backend"), "backend", {"cpu", "cuda"}) == 0 ? Backend::kCpu : Backend::kCuda;
#if !FLASHATTN_WITH_CUDA
  if (job.backend == Backend::kCuda) fail(ErrorCode::kNoDevice, kBuiltWithoutCuda);
#endif
  job.device = static_cast<int>(
      read_integer(field(req, "device"), "device", 0, INT_MAX, "a non-negative integer (a CUDA device index)"));
  job.threads = static_cast<int>(read_integer(field(req, "threads"), "threads", 0, 1024,
                                              "an integer from 0 to 1024 (0 = one per hardware thread)"));
  const Napi::Value poison = field(req, "poison");
  job.poison = !poison.IsUndefined() && read_bool(poison, "poison");
  Scalars s;
  const Napi::Value scale = field(req, "scale");
  const double v = read_finite(scale, "scale");
  if (std::fabs(v) > FLT_MAX) fail(ErrorCode::kArg, "scale must fit in a float32, but got " + describe(scale));
  s.scale = static_cast<float>(v);
  s.window_left = static_cast<int>(read_integer(field(req, "windowLeft"), "windowLeft", -1, INT_MAX, "an integer >= -1"));
  s.window_right = static_cast<int>(read_integer(field(req, "windowRight"), "windowRight", -1, INT_MAX, "an integer >= -1"));
  const Napi::Value inter = field(req, "rotaryInterleaved");
  s.rotary_interleaved = !inter.IsUndefined() && read_bool(inter, "rotaryInterleaved");

  const Napi::Value stream = field(req, "stream");
  if (!stream.IsUndefined() && !stream.IsNull()) {
    Stream* st = Stream::FromValue(stream);
    if (st == nullptr) fail(ErrorCode::kArg, "stream must be a Stream (new Stream(deviceIndex)), but got " + describe(stream));
    job.stream = st->Acquire("stream");
    if (job.stream->device != job.device) {
      fail(ErrorCode::kArg, "stream belongs to device " + str(job.stream->device) + ", but the request runs on device " +
                                str(job.device));
    }
  }
  return s;
}

// t.shape must be `want`; `legend` names the dims.
void expect_shape(const TensorArg& t, std::initializer_list<int64_t> want, const char* legend) {
  int i = 0;
  bool same = static_cast<size_t>(t.rank) == want.size();
  for (int64_t w : want) same = same && t.shape[i++] == w;
  if (same) return;
  std::string text = "[";
  i = 0;
  for (int64_t w : want) text += (i++ ? ", " : "") + str(w);
  fail(ErrorCode::kShape, t.name + ".shape must be " + legend + " = " + text + "], but got " + shape_text(t));
}

// An output the request may leave out: absent, with the shape and dtype it must have.
TensorArg output_arg(const OwnFields& req, const char* name, int rank, const char* legend, const int64_t* shape,
                     DType dtype) {
  if (present(req, name)) return read_tensor(req, name, rank, legend);
  TensorArg t;
  t.name = name;
  t.rank = rank;
  t.dtype = dtype;
  t.absent = true;
  t.kind = "(allocated)";
  int64_t step = 1;
  for (int i = rank - 1; i >= 0; --i) {
    t.shape[i] = shape[i];
    t.strides[i] = step;
    step *= shape[i];
  }
  t.bytes = t.span_bytes = static_cast<size_t>(step) * static_cast<size_t>(dtype_size(dtype));
  return t;
}

// An int32 host tensor's values, densely (row-major over its shape).
std::vector<int32_t> host_values(const TensorArg& t) {
  std::vector<int32_t> v(t.bytes / sizeof(int32_t));
  if (!v.empty()) gather(t, t.host, v.data());
  return v;
}


// All host arrays, or all DeviceBuffers on the request's device (request.h); on backend 'cuda'
// DeviceBuffers only.
void check_placement(KvCacheJob& job, const std::vector<TensorArg*>& all) {
  const TensorArg* host = flashattn::native::check_placement(job.backend, job.device, all, &job.on_device);
  if (job.backend == Backend::kCuda && host != nullptr) {
    // The caches are updated in place; on the GPU that needs them to live there.
    fail(ErrorCode::kUnsupported, "backend 'cuda' takes DeviceBuffers only (the cache is updated in place on the "
                                  "device); " + host->name + ".data is a " + host->kind);
  }
}

// The values of the host int32 tensors, checked against the cache they index; fills job.appended.
void check_host_indices(KvCacheJob& job) {
  const decode::DecodeParams& p = job.params;
  const bool paged = job.paged();
  const int64_t cap = job.capacity();
  const std::vector<int32_t> lens = host_values(job.cache_seqlens);
  std::vector<int32_t> table, rows;
  if (paged) table = host_values(job.block_table);
  if (!job.cache_batch_idx.name.empty()) rows = host_values(job.cache_batch_idx);
  std::unordered_set<int64_t> written;
  for (int b = 0; b < p.b; ++b) {
    const int64_t len = lens[static_cast<size_t>(b)];
    const int64_t total = len + p.s_new;
    if (len < 0 || total > cap) {
      fail(ErrorCode::kArg, "cacheSeqlens[" + str(b) + "] = " + str(len) +
                                (p.s_new > 0 ? " plus seqlenNew = " + str(p.s_new) : std::string()) +
                                (len < 0 ? " is negative" : " is past the cache's " + str(cap) + " positions per row") +
                                (paged ? " (pageSize * maxBlocksPerSeq)" : " (kCache.shape[1])"));
    }
    int64_t row = b;
    if (!rows.empty()) {
      row = rows[static_cast<size_t>(b)];
      if (row < 0 || row >= p.batch_cache) {
        fail(ErrorCode::kArg, "cacheBatchIdx[" + str(b) + "] = " + str(row) + " is not a row of kCache (0 .. " +
                                  str(p.batch_cache - 1) + ")");
      }
    }
    if (paged) {
      const int64_t used = (total + p.page_size - 1) / p.page_size;
      for (int64_t j = 0; j < used; ++j) {
        const int64_t blk = table[static_cast<size_t>(b * p.max_blocks_per_seq + j)];
        if (blk < 0 || blk >= p.num_blocks) {
          fail(ErrorCode::kArg, "blockTable[" + str(b) + "][" + str(j) + "] = " + str(blk) + " is not a block of kCache (0 .. " +
                                    str(p.num_blocks - 1) + "); row " + str(b) + " uses its first " + str(used) +
                                    " entries (cacheSeqlens[b] + seqlenNew = " + str(total) + " keys)");
        }
      }
    }
    for (int64_t t = 0; t < p.s_new; ++t) {
      const int64_t pos = len + t;
      KvCacheJob::Slot s;
      if (paged) {
        s.outer = table[static_cast<size_t>(b * p.max_blocks_per_seq + pos / p.page_size)];
        s.inner = pos % p.page_size;
      } else {
        s.outer = row;
        s.inner = pos;
      }
      const int64_t key = s.outer * cap + s.inner;  // unique: inner < page_size or max_seqlen <= cap
      if (!written.insert(key).second) {
        fail(ErrorCode::kArg, "two batch rows append into the same cache position (" +
                                  std::string(paged ? "block " : "cache row ") + str(s.outer) + ", position " +
                                  str(s.inner) + "; row " + str(b) + " is one of them): " +
                                  (paged ? "blockTable rows must not share the blocks they append to"
                                             : "cacheBatchIdx must not repeat a cache row when kNew is given"));
      }
      job.appended.push_back(s);
    }
  }
}

}  // namespace

std::vector<TensorArg*> KvCacheJob::inputs() {
  std::vector<TensorArg*> in;
  for (TensorArg* t : {&q, &k_new, &v_new, &cache_seqlens, &block_table, &cache_batch_idx, &rotary_cos, &rotary_sin}) {
    if (!t->name.empty()) in.push_back(t);
  }
  return in;
}

KvCacheJob parse_kvcache(Napi::Value request) {
  const OwnFields req(as_object(request, "the request"));
  KvCacheJob job;
  const Scalars s = read_scalars(req, job);

  job.q = read_tensor(req, "q", 4, kQLegend);
  job.k_cache = read_tensor(req, "kCache", 4, kCacheLegend);
  job.v_cache = read_tensor(req, "vCache", 4, kCacheLegend);
  if (!present(req, "cacheSeqlens")) {
    fail(ErrorCode::kArg, "cacheSeqlens is required: int32 [batch], the tokens already in each row's cache");
  }
  job.cache_seqlens = read_tensor(req, "cacheSeqlens", 1, "[batch]");
  if (present(req, "kNew") != present(req, "vNew")) {
    fail(ErrorCode::kArg, std::string(present(req, "kNew") ? "kNew" : "vNew") + " was given without " +
                              (present(req, "kNew") ? "vNew" : "kNew") + "; new keys and values come together");
  }
  if (present(req, "kNew")) {
    job.k_new = read_tensor(req, "kNew", 4, kNewLegend);
    job.v_new = read_tensor(req, "vNew", 4, kNewLegend);
  }
  if (present(req, "blockTable")) job.block_table = read_tensor(req, "blockTable", 2, "[batch, maxBlocksPerSeq]");
  if (present(req, "cacheBatchIdx")) job.cache_batch_idx = read_tensor(req, "cacheBatchIdx", 1, "[batch]");
  if (present(req, "rotaryCos") != present(req, "rotarySin")) {
    fail(ErrorCode::kArg, "rotaryCos and rotarySin come together");
  }
  if (present(req, "rotaryCos")) {
    job.rotary_cos = read_tensor(req, "rotaryCos", 2, "[rotarySeqlen, rotaryDim / 2]");
    job.rotary_sin = read_tensor(req, "rotarySin", 2, "[rotarySeqlen, rotaryDim / 2]");
  } else if (s.rotary_interleaved) {
    fail(ErrorCode::kArg, "rotaryInterleaved applies only with rotaryCos and rotarySin");
  }

  const TensorArg& q = job.q;
  const int64_t b = q.shape[0], sq = q.shape[1], h = q.shape[2], d = q.shape[3];
  if (q.dtype != DType::kFloat32 && q.dtype != DType::kFloat16 && q.dtype != DType::kBFloat16) {
    fail(q.dtype == DType::kFloat8E4M3 ? ErrorCode::kUnsupported : ErrorCode::kDType,
         "q.dtype must be 'float32', 'float16' or 'bfloat16' for the KV cache, but got '" +
             std::string(dtype_name(q.dtype)) + "'");
  }
  const std::string d_problem = head_dim_problem(d, "q.shape[3] (headDim)");
  if (!d_problem.empty()) fail(ErrorCode::kUnsupported, d_problem);
  const std::vector<int64_t> out_shape = {b, sq, h, d}, lse_shape = {b, h, sq};
  job.out = output_arg(req, "out", 4, kQLegend, out_shape.data(), q.dtype);
  job.lse = output_arg(req, "lse", 3, kLseLegend, lse_shape.data(), DType::kFloat32);

  std::vector<TensorArg*> all = job.inputs();
  for (TensorArg* t : job.caches()) all.push_back(t);
  for (TensorArg* t : job.outputs()) all.push_back(t);
  check_placement(job, all);

  // dtypes
  for (TensorArg* t : {&job.k_cache, &job.v_cache, &job.k_new, &job.v_new, &job.rotary_cos, &job.rotary_sin, &job.out}) {
    if (!t->name.empty()) expect_dtype(*t, q.dtype, "like q.dtype");
  }
  expect_dtype(job.lse, DType::kFloat32, "lse is always float32");
  for (TensorArg* t : {&job.cache_seqlens, &job.block_table, &job.cache_batch_idx}) {
    if (!t->name.empty()) expect_dtype(*t, DType::kInt32, "lengths and indices are int32");
  }

  // shapes
  const TensorArg& kc = job.k_cache;
  const int64_t hk = kc.shape[2];
  const bool paged = !job.block_table.name.empty();
  if (kc.shape[3] != d) {
    fail(ErrorCode::kShape, "kCache.shape[3] (headDim) must equal q.shape[3] = " + str(d) + ", but got " + str(kc.shape[3]));
  }
  if (h % hk != 0) {
    fail(ErrorCode::kShape, "q.shape[2] (headsQ) = " + str(h) + " must be a multiple of kCache.shape[2] (headsKV) = " + str(hk));
  }
  expect_shape(job.v_cache, {kc.shape[0], kc.shape[1], hk, d}, "kCache.shape");
  expect_shape(job.cache_seqlens, {b}, "[batch]");
  int64_t s_new = 0;
  if (job.appends()) {
    s_new = job.k_new.shape[1];
    expect_shape(job.k_new, {b, s_new, hk, d}, kNewLegend);
    expect_shape(job.v_new, {b, s_new, hk, d}, kNewLegend);
  }
  if (paged) {
    if (!job.cache_batch_idx.name.empty()) {
      fail(ErrorCode::kArg, "cacheBatchIdx applies to a contiguous cache only; a paged cache picks its blocks by blockTable");
    }
    if (kc.shape[1] % kPageMultiple != 0) {
      fail(ErrorCode::kShape, "kCache.shape[1] (pageSize) of a paged cache must be a multiple of " + str(kPageMultiple) +
                                  ", but got " + str(kc.shape[1]));
    }
    if (job.block_table.shape[0] != b) {
      fail(ErrorCode::kShape, "blockTable.shape[0] (batch) must equal q.shape[0] = " + str(b) + ", but got " +
                                  str(job.block_table.shape[0]));
    }
    if (kc.shape[1] * job.block_table.shape[1] > INT_MAX) {
      fail(ErrorCode::kShape, "pageSize * maxBlocksPerSeq must be below 2^31 keys per row");
    }
  } else if (!job.cache_batch_idx.name.empty()) {
    expect_shape(job.cache_batch_idx, {b}, "[batch]");
  } else if (kc.shape[0] < b) {
    fail(ErrorCode::kShape, "kCache.shape[0] (batchCache) = " + str(kc.shape[0]) + " must be at least q.shape[0] (batch) = " +
                                str(b) + " (or pass cacheBatchIdx to pick the cache row of each batch row)");
  }
  expect_shape(job.out, {b, sq, h, d}, kQLegend);
  expect_shape(job.lse, {b, h, sq}, kLseLegend);

  decode::DecodeParams& p = job.params;
  p.b = static_cast<int>(b);
  p.s_q = static_cast<int>(sq);
  p.h = static_cast<int>(h);
  p.h_k = static_cast<int>(hk);
  p.d = static_cast<int>(d);
  p.s_new = static_cast<int>(s_new);
  p.dtype = q.dtype;
  p.scale = s.scale;
  p.window_left = s.window_left;
  p.window_right = s.window_right;
  if (paged) {
    p.page_size = static_cast<int>(kc.shape[1]);
    p.num_blocks = static_cast<int>(kc.shape[0]);
    p.max_blocks_per_seq = static_cast<int>(job.block_table.shape[1]);
    p.block_table_batch_stride = job.on_device ? job.block_table.strides[0] : p.max_blocks_per_seq;
  } else {
    p.batch_cache = static_cast<int>(kc.shape[0]);
    p.max_seqlen = static_cast<int>(kc.shape[1]);
  }
  if (!job.rotary_cos.name.empty()) {
    const TensorArg& cs = job.rotary_cos;
    expect_shape(job.rotary_sin, {cs.shape[0], cs.shape[1]}, "rotaryCos.shape");
    const int64_t rdim = 2 * cs.shape[1];
    if (rdim > d || rdim % 16 != 0) {
      fail(ErrorCode::kShape, "rotaryCos.shape[1] (rotaryDim / 2) = " + str(cs.shape[1]) + " gives rotaryDim " + str(rdim) +
                                  ", which must be a multiple of 16 and at most headDim = " + str(d));
    }
    if (cs.shape[0] < job.capacity()) {
      fail(ErrorCode::kShape, "rotaryCos.shape[0] (rotarySeqlen) = " + str(cs.shape[0]) +
                                  " must cover every cache position (at least " + str(job.capacity()) + ")");
    }
    for (const TensorArg* t : {&job.rotary_cos, &job.rotary_sin}) {
      if (!t->contiguous()) fail(ErrorCode::kUnsupported, t->name + " must be contiguous (no strides)");
    }
    p.rotary_dim = static_cast<int>(rdim);
    p.rotary_seqlen = static_cast<int>(cs.shape[0]);
    p.rotary_interleaved = s.rotary_interleaved;
  }
  for (const TensorArg* t : {&job.cache_seqlens, &job.block_table, &job.cache_batch_idx}) {
    if (!t->name.empty() && job.on_device && t->strides[t->rank - 1] != 1) {
      fail(ErrorCode::kUnsupported, t->name + " must be contiguous along its last dim");
    }
  }
  if (job.on_device && !job.lse.contiguous()) {
    fail(ErrorCode::kUnsupported, "lse must be contiguous on the device (" + std::string(kLseLegend) + " without strides)");
  }

  // Nothing written may share memory with anything else: the outputs, and the caches when they
  // are appended to (read-only caches may share memory with the other inputs).
  std::vector<const TensorArg*> written = {&job.out, &job.lse}, read;
  for (TensorArg* t : job.inputs()) read.push_back(t);
  if (job.appends()) {
    written.push_back(&job.k_cache);
    written.push_back(&job.v_cache);
  } else {
    read.push_back(&job.k_cache);
    read.push_back(&job.v_cache);
  }
  for (const TensorArg* t : written) {
    if (!t->absent && !non_overlapping(*t)) {
      fail(ErrorCode::kArg, t->name + ".strides make elements share memory; a tensor that is written must not overlap itself");
    }
  }
  check_no_overlap(written, read);

  // Strides: host tensors reach the backend as dense copies; DeviceBuffers through their own.
  p.q_stride = contiguous_strides(p.s_q, p.h, p.d);
  p.o_stride = p.q_stride;
  p.k_stride = contiguous_strides(static_cast<int>(kc.shape[1]), p.h_k, p.d);
  p.v_stride = p.k_stride;
  p.knew_stride = contiguous_strides(p.s_new, p.h_k, p.d);
  p.vnew_stride = p.knew_stride;
  if (job.on_device) {
    p.q_stride = strides_of(job.q);
    p.o_stride = strides_of(job.out);
    p.k_stride = strides_of(job.k_cache);
    p.v_stride = strides_of(job.v_cache);
    if (job.appends()) {
      p.knew_stride = strides_of(job.k_new);
      p.vnew_stride = strides_of(job.v_new);
    }
  } else {
    check_host_indices(job);
  }
  return job;
}

}  // namespace flashattn::native
