// select.cu — the one selection function: which kernel family runs a request on a device, or
// kNone and why. Dispatch (forward.cu, backward.cu) and probe()/inspect both ask it, so "is this
// supported?" and "what would run?" can never disagree.
#include <cmath>
#include <cstdint>
#include <string>

#include "api.h"
#include "sm80/launch.h"

// The CUDA archs the addon was compiled for, e.g. "80;90a" (CMake passes CMAKE_CUDA_ARCHITECTURES).
#ifndef FLASHATTN_CUDA_ARCHS
#error "FLASHATTN_CUDA_ARCHS must name the compiled CUDA archs, e.g. -DFLASHATTN_CUDA_ARCHS=\"80;90a\""
#endif

namespace flashattn::cuda {
namespace {

std::string sm_name(int major, int minor) { return "sm_" + std::to_string(major) + std::to_string(minor); }

// Whether machine code in FLASHATTN_CUDA_ARCHS runs on a device of this capability. Machine code
// for sm_XY runs on X.Z with Z >= Y; an arch-specific target (sm_90a) only on exactly that arch.
// Entries look like "80", "90a", "sm_86", "80-real"; anything unparsable is ignored.
bool compiled_for(int major, int minor) {
  const std::string archs = FLASHATTN_CUDA_ARCHS;
  size_t pos = 0;
  while (pos <= archs.size()) {
    size_t end = archs.find_first_of(";, ", pos);
    if (end == std::string::npos) end = archs.size();
    std::string tok = archs.substr(pos, end - pos);
    pos = end + 1;
    if (tok.rfind("sm_", 0) == 0) tok = tok.substr(3);
    if (tok.rfind("compute_", 0) == 0) continue;  // PTX only: not machine code
    if (tok.find("-virtual") != std::string::npos) continue;
    size_t digits = 0;
    while (digits < tok.size() && tok[digits] >= '0' && tok[digits] <= '9') ++digits;
    if (digits < 2) continue;
    const int value = std::stoi(tok.substr(0, digits));
    const bool arch_specific = digits < tok.size() && (tok[digits] == 'a' || tok[digits] == 'f');
    const int t_major = value / 10, t_minor = value % 10;
    if (t_major != major) continue;
    if (arch_specific ? t_minor == minor : t_minor <= minor) return true;
  }
  return false;
}

bool aligned16(const void* ptr) { return ptr == nullptr || reinterpret_cast<uintptr_t>(ptr) % 16 == 0; }
bool strides_ok(const Strides& s) { return s.batch % 8 == 0 && s.row % 8 == 0 && s.head % 8 == 0; }

const char* op_name(Op op) {
  switch (op) {
    case Op::kForward: return "forward";
    case Op::kBackward: return "backward";
  }
  return "unknown op";
}

}  // namespace

Selection select_kernel(Op op, const AttnParams& p, const DeviceInfo& device) {
  Selection sel;
  auto none = [&sel](const std::string& why) {
    sel.path = KernelPath::kNone;
    sel.kernel_head_dim = 0;
    sel.reason = why;
    return sel;
  };

  switch (op) {
    case Op::kForward:
    case Op::kBackward: break;
    default: return none("unknown op " + std::to_string(static_cast<int>(op)));
  }
  switch (p.dtype) {
    case DType::kFloat16:
    case DType::kBFloat16: break;
    case DType::kFloat32: return none("the CUDA kernels take float16 or bfloat16; float32 runs on the CPU backend");
    case DType::kFloat8E4M3: return none("float8_e4m3 needs the sm90 forward, which this build does not include");
    default: return none("unknown dtype " + std::to_string(static_cast<int>(p.dtype)));
  }
  if (p.d <= 0 || p.d % 8 != 0 || p.d > 256) {
    return none("head dim " + std::to_string(p.d) + " is not supported on CUDA (needs a multiple of 8, at most 256)");
  }
  const int khd = sm80::kernel_head_dim(p.d);
  if (khd == 0) return none("no compiled sm80 kernel covers head dim " + std::to_string(p.d));

  const std::string dev = "device " + std::to_string(device.index) + " (" + sm_name(device.major, device.minor) + ")";
  if (device.major < 8) return none(dev + " is older than compute capability 8.0, which the kernels need");
  if (!compiled_for(device.major, device.minor)) {
    return none(dev + ": the addon was compiled for CUDA archs \"" FLASHATTN_CUDA_ARCHS "\", none of which runs on " +
                sm_name(device.major, device.minor) + "; rebuild with FLASHATTN_CUDA_ARCHS including " +
                std::to_string(device.major * 10 + device.minor) + (device.major == 9 ? "a" : ""));
  }

  size_t smem = 0;
  switch (op) {
    case Op::kForward: smem = sm80::fwd_smem_bytes(khd); break;
    case Op::kBackward: smem = sm80::bwd_smem_bytes(khd); break;
  }
  if (smem == 0) return none(std::string("no sm80 ") + op_name(op) + " kernel for head dim " + std::to_string(khd));
  if (smem > device.shared_memory_per_block_optin) {
    return none(dev + " offers " + std::to_string(device.shared_memory_per_block_optin) + " bytes of shared memory per block; the sm80 " +
                op_name(op) + " at head dim " + std::to_string(khd) + " needs " + std::to_string(smem));
  }

  // Request-specific limits. A capability query (sizes 0, null pointers) skips them.
  if (p.b > 0) {
    if (!(p.scale > 0.f) || !std::isfinite(p.scale)) {
      return none("the CUDA kernels need a positive, finite softmax scale (got " + std::to_string(p.scale) + ")");
    }
    if (p.h_k <= 0 || p.h % p.h_k != 0) {
      return none("heads " + std::to_string(p.h) + " is not a multiple of KV heads " + std::to_string(p.h_k));
    }
    if (!strides_ok(p.q_stride) || !strides_ok(p.k_stride) || !strides_ok(p.v_stride) || !strides_ok(p.o_stride)) {
      return none("the CUDA kernels need every q/k/v/out stride to be a multiple of 8 elements (16 bytes)");
    }
    if (op == Op::kBackward &&
        (!strides_ok(p.do_stride) || !strides_ok(p.dq_stride) || !strides_ok(p.dk_stride) || !strides_ok(p.dv_stride))) {
      return none("the CUDA kernels need every dout/dq/dk/dv stride to be a multiple of 8 elements (16 bytes)");
    }
  }
  if (!aligned16(p.q) || !aligned16(p.k) || !aligned16(p.v) || !aligned16(p.out) ||
      (op == Op::kBackward && (!aligned16(p.dout) || !aligned16(p.dq) || !aligned16(p.dk) || !aligned16(p.dv)))) {
    return none("the CUDA kernels need 16-byte aligned tensors");
  }

  sel.path = KernelPath::kSm80;
  sel.kernel_head_dim = khd;
  sel.reason.clear();
  return sel;
}

}  // namespace flashattn::cuda
