// quant_call.cpp — the quantizeFp8 call kind: read and check the request, enqueue the kernels of
// cuda/quant/ on the call's stream, settle on the JS thread (native/exec/env_state.h) with the
// outputs as DeviceBuffers. The pieces every call kind shares come from native/exec/call_support.h.
#include "quant/quant.h"

#include <napi.h>

#include <climits>
#include <memory>
#include <string>
#include <vector>

#include "errors.h"
#include "exec/call_support.h"
#include "exec/completion.h"
#include "exec/env_state.h"
#include "exec/stream.h"
#include "fields.h"
#include "request/tensor.h"

#if FLASHATTN_WITH_CUDA
#include "cuda_devices.h"
#include "quant/api.h"
#endif

namespace flashattn::native {

namespace {

constexpr const char* kOp = "quantizeFp8";

struct QuantJob {
  int device = 0;
  bool bhsd = false, per_tensor = false, hadamard = false;
  std::shared_ptr<StreamCore> stream;
  TensorArg t;             // the DeviceBuffer tensor, 4-D in its layout
  TensorArg data, descale;  // outputs (absent: allocated by the call)
};

QuantJob parse_quantize(Napi::Value request) {
  if (!request.IsObject()) fail(ErrorCode::kArg, "the request must be an object, but got " + describe(request));
  const OwnFields req(request.As<Napi::Object>());
  QuantJob job;
  job.device = static_cast<int>(
      read_integer(field(req, "device"), "device", 0, INT_MAX, "a non-negative integer (a CUDA device index)"));
  job.bhsd = read_choice(field(req, "layout"), "layout", {"bshd", "bhsd"}) == 1;
  job.per_tensor = read_choice(field(req, "granularity"), "granularity", {"head", "tensor"}) == 1;
  job.hadamard = read_bool(field(req, "hadamard"), "hadamard");
  job.t = read_tensor(req, "t", 4, job.bhsd ? "[batch, heads, seqlen, headDim]" : "[batch, seqlen, heads, headDim]");
  if (!job.t.on_device()) fail(ErrorCode::kArg, "t.data must be a DeviceBuffer (host tensors are quantized in TypeScript)");
  if (job.t.dtype != DType::kFloat32 && job.t.dtype != DType::kFloat16 && job.t.dtype != DType::kBFloat16) {
    fail(ErrorCode::kDType, std::string("t.dtype must be float32, float16 or bfloat16, but got ") + dtype_name(job.t.dtype));
  }
  if (job.t.device->device != job.device) {
    fail(ErrorCode::kArg, "t is on device " + std::to_string(job.t.device->device) + ", but the request runs on device " +
                              std::to_string(job.device));
  }
  const Napi::Value stream = field(req, "stream");
  if (!stream.IsUndefined() && !stream.IsNull()) {
    Stream* st = Stream::FromValue(stream);
    if (st == nullptr) fail(ErrorCode::kArg, "stream must be a Stream (new Stream(deviceIndex)), but got " + describe(stream));
    job.stream = st->Acquire("stream");
    if (job.stream->device != job.device) fail(ErrorCode::kArg, "stream belongs to another device than t");
  }
  const int64_t heads = job.t.shape[job.bhsd ? 1 : 2];
  job.data.name = "data";
  job.data.dtype = DType::kFloat8E4M3;
  job.data.absent = true;
  job.data.bytes = job.t.bytes / static_cast<size_t>(dtype_size(job.t.dtype));
  job.descale.name = "descale";
  job.descale.dtype = DType::kFloat32;
  job.descale.absent = true;
  job.descale.bytes = static_cast<size_t>(job.t.shape[0] * heads) * sizeof(float);
  return job;
}

class QuantCall final : public Work {
 public:
  explicit QuantCall(QuantJob j) : job(std::move(j)) {}

  void settle(napi_env env) override {
    complete_owned({&outputs});
    if (workspace) workspace->complete();
    if (reject_if_failed(env, this, failed, failure)) return;
    napi_value result = nullptr;
    if (napi_create_object(env, &result) != napi_ok) fail(ErrorCode::kInternal, "napi_create_object failed");
    for (Bound& b : outputs) (void)napi_set_named_property(env, result, b.arg->name.c_str(), DeviceBuffer::Adopt(env, b.dev));
    (void)napi_resolve_deferred(env, deferred, result);
  }

  QuantJob job;
  Failure failure;
  bool failed = false;
  // Declared before the tensors so that it is destroyed after them (their stream-ordered frees).
  std::shared_ptr<StreamCore> gpu_core;
  void* gpu_stream = nullptr;
  std::vector<Bound> inputs, outputs;
  std::shared_ptr<DeviceAllocation> workspace;  // per-(b, h) amax and scale
};

#if FLASHATTN_WITH_CUDA

void enqueue_cuda(napi_env env, QuantCall* call, bool* enqueued_any) {
  QuantJob& job = call->job;
  const int device = job.device;
  (void)device_info(device);  // E_NO_DEVICE
  void* stream = take_stream(env, call, job.stream, device);
  for (std::vector<Bound>* group : {&call->inputs, &call->outputs}) {
    for (Bound& b : *group) bind_device(b, device, stream);
  }
  const TensorArg& t = job.t;
  // (b, s, h) order whatever the layout; the output is contiguous in t's layout.
  const int si = job.bhsd ? 2 : 1, hi = job.bhsd ? 1 : 2;
  quant::QuantParams p;
  p.in = call->inputs[0].ptr;
  p.dtype = t.dtype;
  p.b = t.dim(0);
  p.s = t.dim(si);
  p.h = t.dim(hi);
  p.d = t.dim(3);
  p.in_stride_b = t.strides[0];
  p.in_stride_s = t.strides[si];
  p.in_stride_h = t.strides[hi];
  const int64_t dense[3] = {t.shape[1] * t.shape[2] * t.shape[3], t.shape[2] * t.shape[3], t.shape[3]};
  p.out_stride_b = dense[0];
  p.out_stride_s = dense[si];
  p.out_stride_h = dense[hi];
  p.out = static_cast<uint8_t*>(call->outputs[0].ptr);
  p.descale = static_cast<float*>(call->outputs[1].ptr);
  p.per_tensor = job.per_tensor;
  p.hadamard = job.hadamard;
  if (const char* why = quant::quantize_unsupported(p)) fail(ErrorCode::kUnsupported, why);
  call->workspace = std::make_shared<DeviceAllocation>(device, quant::quantize_workspace_bytes(p), stream);
  *enqueued_any = true;
  quant::quantize_fp8(device, p, call->workspace->ptr, stream);
}

void start_call(napi_env env, EnvState* state, QuantCall* call) {
  start_on_stream(state, call, [&](bool* enqueued_any) { enqueue_cuda(env, call, enqueued_any); });
}

#else

void start_call(napi_env, EnvState*, QuantCall*) { fail(ErrorCode::kNoDevice, kBuiltWithoutCuda); }

#endif  // FLASHATTN_WITH_CUDA

}  // namespace

Napi::Value QuantizeFp8(const Napi::CallbackInfo& info) {
  return queue_call(
      info, kOp,
      [&] {
#if !FLASHATTN_WITH_CUDA
        fail(ErrorCode::kNoDevice, kBuiltWithoutCuda);
#endif
        auto* call = new QuantCall(parse_quantize(info[0]));
        call->inputs.resize(1);
        call->inputs[0].arg = &call->job.t;
        call->outputs.resize(2);
        call->outputs[0].arg = &call->job.data;
        call->outputs[1].arg = &call->job.descale;
        return call;
      },
      start_call);
}

}  // namespace flashattn::native
