// bwd_run.cu — the sm80 backward's entry points declared in sm80/launch.h: shared-memory needs per
// kernel head dim, and run_bwd, which checks what the kernels assume and picks the instantiation.
#include <cstdint>
#include <string>

#include "sm80/bwd_config.h"
#include "common/check.h"
#include "sm80/bwd_launch.h"
#include "sm80/launch.h"

namespace flashattn::sm80 {

size_t bwd_smem_bytes(int kernel_hd) {
  switch (kernel_hd) {
    case 32: return bwd::Cfg32::min_smem();
    case 64: return bwd::Cfg64::min_smem();
    case 96: return bwd::Cfg96::min_smem();
    case 128: return bwd::Cfg128::min_smem();
    case 192: return bwd::Cfg192::min_smem();
    case 256: return bwd::Cfg256::min_smem();
    default: return 0;  // no such kernel
  }
}

namespace {

bool aligned16(const void* ptr) { return reinterpret_cast<uintptr_t>(ptr) % 16 == 0; }
bool strides_ok(const Strides& s) { return s.batch % 8 == 0 && s.row % 8 == 0 && s.head % 8 == 0; }

// What the kernels take for granted; the API layer checks the user-facing rules first, so a
// failure here names the broken assumption for whoever called run_bwd directly.
void validate(const AttnParams& p, int kernel_hd) {
  if (p.dtype != DType::kFloat16 && p.dtype != DType::kBFloat16) {
    cuda::fail("backward", std::string("dtype ") + dtype_name(p.dtype) + " has no sm80 backward (float16, bfloat16)");
  }
  if (p.b < 1 || p.s_q < 1 || p.s_k < 1 || p.h < 1 || p.h_k < 1 || p.h % p.h_k != 0) {
    cuda::fail("backward", "sizes must be >= 1 with h % h_k == 0");
  }
  if (p.d < 8 || p.d % 8 != 0 || p.d > kernel_hd) {
    cuda::fail("backward", "head dim " + std::to_string(p.d) + " does not run on kernel head dim " + std::to_string(kernel_hd));
  }
  if (p.b > 65535 || p.h > 65535) cuda::fail("backward", "batch and heads must each be <= 65535");
  if (p.s_q >= (1 << 28) || p.s_k >= (1 << 28)) cuda::fail("backward", "sequence lengths must be < 2^28");
  const void* ptrs[] = {p.q, p.k, p.v, p.out, p.dout, p.dq, p.dk, p.dv, p.lse};
  for (const void* ptr : ptrs) {
    if (ptr == nullptr) cuda::fail("backward", "q, k, v, out, lse, dout, dq, dk and dv must all be set");
    if (!aligned16(ptr)) cuda::fail("backward", "tensor pointers must be 16-byte aligned");
  }
  const Strides* strides[] = {&p.q_stride, &p.k_stride, &p.v_stride, &p.o_stride,
                              &p.do_stride, &p.dq_stride, &p.dk_stride, &p.dv_stride};
  for (const Strides* s : strides) {
    if (!strides_ok(*s)) cuda::fail("backward", "tensor strides must be multiples of 8 elements (16-byte rows)");
  }
}

}  // namespace

void run_bwd(const AttnParams& p, int kernel_hd, cudaStream_t stream) {
  validate(p, kernel_hd);
  switch (kernel_hd) {
    case 32: return bwd::run_head_dim<bwd::Cfg32>(p, stream);
    case 64: return bwd::run_head_dim<bwd::Cfg64, bwd::Cfg64Big>(p, stream);
    case 96: return bwd::run_head_dim<bwd::Cfg96>(p, stream);
    case 128: return bwd::run_head_dim<bwd::Cfg128, bwd::Cfg128Big>(p, stream);
    case 192: return bwd::run_head_dim<bwd::Cfg192, bwd::Cfg192Big>(p, stream);
    case 256: return bwd::run_head_dim<bwd::Cfg256, bwd::Cfg256Big>(p, stream);
    default: cuda::fail("backward", "no sm80 backward kernel for head dim " + std::to_string(kernel_hd));
  }
}

}  // namespace flashattn::sm80
