// bwd_launch.h — builds the workspace and launches the backward kernels of one (dtype, head dim).
// Included by sm80/bwd_run.cu and the instantiation files in cuda/generated/.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <string>
#include <type_traits>

#include "params.h"
#include "sm80/bwd_config.h"
#include "common/check.h"
#include "common/stream_buffer.h"
#include "sm80/bwd_kernel.h"

namespace flashattn::sm80::bwd {

inline int ceil_div(int a, int b) { return (a + b - 1) / b; }

using cuda::StreamBuffer;

// Dynamic shared memory a block of the current device may opt in to.
inline int smem_optin() {
  int dev = 0, optin = 0;
  FA_CUDA_CHECK(cudaGetDevice(&dev));
  FA_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
  return optin;
}

// 2 stages of Q/dO (main) or K/V (dq) when the device has the shared memory, else 1.
inline int pick_stages(size_t one, size_t two, int optin, const char* kernel) {
  if (two <= static_cast<size_t>(optin)) return 2;
  if (one <= static_cast<size_t>(optin)) return 1;
  cuda::fail("backward", std::string(kernel) + " needs " + std::to_string(one) + " bytes of shared memory per block, the device offers " +
       std::to_string(optin));
}

template <typename Kernel>
inline void set_smem(Kernel kernel, size_t bytes) {
  FA_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
}

// The whole backward for one instantiation. `p` is validated by run_bwd (bwd_run.cu).
template <typename E, typename Cfg>
void run(const AttnParams& p_in, cudaStream_t stream) {
  AttnParams p = p_in;
  p.window_left = normalized_window_side(p.window_left, p.s_q, p.s_k);
  p.window_right = normalized_window_side(p.window_right, p.s_q, p.s_k);

  const int optin = smem_optin();
  const int main_stages = pick_stages(Cfg::main_smem(1), Cfg::main_smem(2), optin, "the backward main kernel");
  const int dq_stages =
      p.deterministic ? pick_stages(Cfg::dq_smem(1), Cfg::dq_smem(2), optin, "the deterministic dQ kernel") : 0;

  const int nqb = ceil_div(p.s_q, Cfg::kBr);
  const int s_q_pad = ceil_div(p.s_q, kRowPad) * kRowPad;
  const size_t rows = static_cast<size_t>(p.b) * p.h * s_q_pad;
  const size_t acc = p.deterministic ? 0 : static_cast<size_t>(p.b) * p.h * nqb * Cfg::kBr * Cfg::kD;
  StreamBuffer buffer((2 * rows + acc) * sizeof(float), stream);
  Workspace ws;
  ws.lse2 = buffer.floats();
  ws.delta = ws.lse2 + rows;
  ws.dq_acc = p.deterministic ? nullptr : ws.delta + rows;
  ws.s_q_pad = s_q_pad;
  ws.nqb = nqb;

  if (!p.deterministic) FA_CUDA_CHECK(cudaMemsetAsync(ws.dq_acc, 0, acc * sizeof(float), stream));
  bwd_preprocess_kernel<E, Cfg::kD><<<dim3(s_q_pad / 64, p.h, p.b), 256, 0, stream>>>(p, ws);
  FA_CUDA_CHECK_LAUNCH("sm80 bwd preprocess");

  const size_t main_smem = Cfg::main_smem(main_stages);
  set_smem(bwd_main_kernel<E, Cfg>, main_smem);
  bwd_main_kernel<E, Cfg><<<dim3(ceil_div(p.s_k, Cfg::kBc), p.h_k, p.b), kThreads, main_smem, stream>>>(
      p, ws, main_stages, !p.deterministic);
  FA_CUDA_CHECK_LAUNCH("sm80 bwd main");

  if (p.deterministic) {
    const size_t dq_smem = Cfg::dq_smem(dq_stages);
    set_smem(bwd_dq_kernel<E, Cfg::kD, Cfg::kBcQ>, dq_smem);
    bwd_dq_kernel<E, Cfg::kD, Cfg::kBcQ><<<dim3(ceil_div(p.s_q, kBrQ), p.h, p.b), kThreads, dq_smem, stream>>>(
        p, ws, dq_stages);
    FA_CUDA_CHECK_LAUNCH("sm80 bwd dq (deterministic)");
  } else {
    const size_t convert_smem = size_t(Cfg::kBr) * Cfg::kD * 2;
    set_smem(bwd_dq_convert_kernel<E, Cfg>, convert_smem);
    bwd_dq_convert_kernel<E, Cfg><<<dim3(nqb, p.h, p.b), kThreads, convert_smem, stream>>>(p, ws);
    FA_CUDA_CHECK_LAUNCH("sm80 bwd dq convert");
  }
}

template <typename Cfg>
void run_dtype(const AttnParams& p, cudaStream_t stream) {
  switch (p.dtype) {
    case DType::kFloat16: return run<Fp16, Cfg>(p, stream);
    case DType::kBFloat16: return run<Bf16, Cfg>(p, stream);
    default: cuda::fail("backward", std::string("no sm80 backward for dtype ") + dtype_name(p.dtype));
  }
}

// One head dim, both dtypes: what each bwd_hd*.cu defines. Big (or void) is the shape for
// devices with the shared memory for it (bwd_config.h).
template <typename Cfg, typename Big = void>
void run_head_dim(const AttnParams& p, cudaStream_t stream) {
  if constexpr (!std::is_void_v<Big>) {
    if (Big::main_smem(1) <= static_cast<size_t>(smem_optin())) return run_dtype<Big>(p, stream);
  }
  run_dtype<Cfg>(p, stream);
}


}  // namespace flashattn::sm80::bwd

// Each instantiation is compiled once, in its own file under cuda/generated/.
#include "generated/sm80_bwd_instances.h"
