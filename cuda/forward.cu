// forward.cu — api.h's forward(): launch the kernel the plan chose for this request.
#include <string>

#include <cuda_runtime.h>

#include "api.h"
#include "common/check.h"
#include "common/stream_buffer.h"
#include "decode/api.h"
#include "sm80/launch.h"
#if FLASHATTN_WITH_SM90
#include "sm90/api.h"
#endif

namespace flashattn::cuda {

namespace {

// A decode-shaped forward on the split-KV decode kernels, with the plan's splits and workspace.
void forward_on_decode(const AttnParams& params, const plan::Plan& plan, cudaStream_t stream) {
  decode::DecodeParams p = decode::decode_params_of_forward(params);
  p.num_splits = plan.splits;
  p.workspace_bytes = plan.workspace_bytes;
  if (plan.workspace_bytes == 0) return decode::decode_forward(p, nullptr, stream);
  StreamBuffer workspace(plan.workspace_bytes, stream);
  decode::decode_forward(p, workspace.floats(), stream);
}

}  // namespace

void forward(int device, const AttnParams& params, const plan::Plan& plan, Stream stream) {
  FA_CUDA_CHECK(cudaSetDevice(device));
  if (plan.decode && !params.varlen()) return forward_on_decode(params, plan, static_cast<cudaStream_t>(stream));
  switch (plan.path) {
    case KernelPath::kSm80:
      sm80::run_fwd_planned(params, plan.kernel_head_dim, plan.tile, static_cast<cudaStream_t>(stream));
      return;
    case KernelPath::kNone: fail("forward is not supported here: " + plan.reason);
    case KernelPath::kSm90:
#if FLASHATTN_WITH_SM90
      sm90::sm90_forward(params, static_cast<cudaStream_t>(stream));
      return;
#else
      fail("forward: this build has no sm90 launcher (the plan chose sm90)");
#endif
  }
  fail(std::string("forward: no launcher for kernel path ") + kernel_path_name(plan.path));
}

}  // namespace flashattn::cuda
