// plan.cpp — make_plan(): see plan.h. Every "no" ends in a reason; no switch falls through.
#include "plan/plan.h"
#include "plan/decode_plan.h"

#include <cmath>
#include <string>

#include "plan/sm80_table.h"
#include "sm90/fp8_workspace.h"

#if FLASHATTN_WITH_SM90
#include "sm90/api.h"
#endif

namespace flashattn::plan {

namespace {

std::string sm_name(int major, int minor) { return "sm_" + std::to_string(major) + std::to_string(minor); }

bool strides_ok(const Strides& s) { return s.batch % 8 == 0 && s.row % 8 == 0 && s.head % 8 == 0; }

bool all_strides_ok(Op op, const AttnParams& p) {
  if (!strides_ok(p.q_stride) || !strides_ok(p.k_stride) || !strides_ok(p.v_stride) || !strides_ok(p.o_stride)) {
    return false;
  }
  return op == Op::kForward ||
         (strides_ok(p.do_stride) && strides_ok(p.dq_stride) && strides_ok(p.dk_stride) && strides_ok(p.dv_stride));
}

Plan none(const std::string& why) {
  Plan p;
  p.reason = why;
  return p;
}

// The sm80 forward tile launch_fwd would take: among the tiles whose shared memory the device
// offers, the first of (Full, Masked, Compact), or (Masked, Full, Compact) for a masked request.
Sm80Tile sm80_fwd_tile(int khd, bool masked, size_t optin) {
  const Sm80Tile order_masked[] = {Sm80Tile::kMasked, Sm80Tile::kFull, Sm80Tile::kCompact};
  const Sm80Tile order_full[] = {Sm80Tile::kFull, Sm80Tile::kMasked, Sm80Tile::kCompact};
  for (Sm80Tile t : masked ? order_masked : order_full) {
    const size_t need = sm80::fwd_smem_bytes(khd, t);
    if (need != 0 && need <= optin) return t;
  }
  return Sm80Tile::kNone;
}

// The sm80 path for this request, or none and why.
Plan plan_sm80(Op op, const AttnParams& p, const DeviceFacts& dev, const std::vector<ArchTarget>& compiled) {
  const std::string label = "device " + std::to_string(dev.index) + " (" + sm_name(dev.major, dev.minor) + ")";
  switch (p.dtype) {
    case DType::kFloat16:
    case DType::kBFloat16: break;
    case DType::kFloat32: return none("the CUDA kernels take float16 or bfloat16; float32 runs on the CPU backend");
    case DType::kFloat8E4M3: return none("the sm80 kernels do not take float8_e4m3 (the sm90 forward does)");
    case DType::kInt32: return none("int32 is not an attention dtype");
  }
  const int khd = sm80::kernel_head_dim(p.d);
  if (khd == 0) {
    return none("head dim " + std::to_string(p.d) + " is not supported on CUDA (needs a multiple of 8, at most 256)");
  }
  if (!runs_on(compiled, dev.major, dev.minor, 80)) {
    return none(label + ": the addon was compiled for " + arch_list_text(compiled) + ", none of which runs on " +
                sm_name(dev.major, dev.minor) + "; rebuild with FLASHATTN_CUDA_ARCHS including " +
                std::to_string(dev.major * 10 + dev.minor));
  }
  Plan plan;
  plan.path = KernelPath::kSm80;
  plan.kernel_head_dim = khd;
  if (op == Op::kForward) {
    const bool masked = p.window_left >= 0 || p.window_right >= 0;
    plan.tile = sm80_fwd_tile(khd, masked, dev.smem_optin);
    if (plan.tile == Sm80Tile::kNone) {
      return none(label + " offers " + std::to_string(dev.smem_optin) +
                  " bytes of shared memory per block; the sm80 forward at head dim " + std::to_string(khd) + " needs " +
                  std::to_string(sm80::fwd_smem_bytes(khd, Sm80Tile::kCompact)));
    }
  } else {
    const sm80::BwdShape shape = sm80::bwd_shape_for(khd);
    if (shape.min_smem == 0) return none("no sm80 backward kernel for head dim " + std::to_string(khd));
    if (shape.min_smem > dev.smem_optin) {
      return none(label + " offers " + std::to_string(dev.smem_optin) +
                  " bytes of shared memory per block; the sm80 backward at head dim " + std::to_string(khd) + " needs " +
                  std::to_string(shape.min_smem));
    }
    plan.bwd_big = shape.big_smem != 0 && shape.big_smem <= dev.smem_optin;
    if (p.b > 0) {
      // The float32 workspace run<E, Cfg> allocates (sm80/bwd_launch.h): LSE*log2e and D rows,
      // plus the dq accumulator unless deterministic.
      const int br = plan.bwd_big ? shape.big_br : shape.br;
      const size_t s_q_pad = (static_cast<size_t>(p.s_q) + sm80::kBwdRowPad - 1) / sm80::kBwdRowPad * sm80::kBwdRowPad;
      const size_t rows = static_cast<size_t>(p.b) * p.h * s_q_pad;
      const size_t nqb = (static_cast<size_t>(p.s_q) + br - 1) / br;
      const size_t acc = p.deterministic ? 0 : static_cast<size_t>(p.b) * p.h * nqb * br * khd;
      plan.workspace_bytes = (2 * rows + acc) * sizeof(float);
    }
  }
  return plan;
}

// Whether the sm90 path can run this request here; `why` says why not.
bool sm90_fits(Op op, const AttnParams& p, const DeviceFacts& dev, const std::vector<ArchTarget>& compiled,
               std::string* why) {
  if (dev.major != 9 || dev.minor != 0) {
    *why = "the sm90 kernels run only on capability 9.0 (this device is " + std::to_string(dev.major) + "." +
           std::to_string(dev.minor) + ")";
    return false;
  }
  if (!has_arch_specific(compiled, 9, 0)) {
    *why = "the addon was compiled for " + arch_list_text(compiled) +
           ", without sm_90a (rebuild with FLASHATTN_CUDA_ARCHS including 90a)";
    return false;
  }
  return op == Op::kForward ? sm90_forward_covers(p, why) : sm90_backward_covers(p, why);
}

// Limits that depend on the request's sizes and strides (skipped for a capability query).
std::string request_problem(Op op, const AttnParams& p) {
  if (!(p.scale > 0.f) || !std::isfinite(p.scale)) {
    return "the CUDA kernels need a positive, finite softmax scale (got " + std::to_string(p.scale) + ")";
  }
  if (p.h_k <= 0 || p.h % p.h_k != 0) {
    return "heads " + std::to_string(p.h) + " is not a multiple of KV heads " + std::to_string(p.h_k);
  }
  if (p.b > 65535 || p.h > 65535) return "the CUDA kernels take batch and heads of at most 65535 each";
  if (op == Op::kBackward && (p.s_q >= (1 << 28) || p.s_k >= (1 << 28))) {
    return "the CUDA backward takes sequence lengths below 2^28";
  }
  if (!all_strides_ok(op, p)) {
    return std::string("the CUDA kernels need every ") + (op == Op::kForward ? "q/k/v/out" : "q/k/v/out/dout/dq/dk/dv") +
           " stride to be a multiple of 8 elements (16 bytes)";
  }
  return {};
}

}  // namespace

size_t known_smem_optin(int major, int minor) {
  const int cc = major * 10 + minor;
  switch (cc) {
    case 80: return 166912;   // 163 KB
    case 86:
    case 87:
    case 89: return 101376;   // 99 KB
    case 90: return 232448;   // 227 KB
    case 100:
    case 101:
    case 103: return 232448;  // 227 KB
    case 120:
    case 121: return 101376;  // 99 KB
    default: return 0;
  }
}

bool parse_force(const std::string& value, Force* out) {
  if (value.empty() || value == "auto") {
    *out = Force::kAuto;
  } else if (value == "sm80") {
    *out = Force::kSm80;
  } else if (value == "sm90") {
    *out = Force::kSm90;
  } else {
    return false;
  }
  return true;
}

Plan make_plan(Op op, const AttnParams& p, const DeviceFacts& dev, const std::vector<ArchTarget>& compiled,
               Force force) {
  switch (op) {
    case Op::kForward:
    case Op::kBackward: break;
    default: return none("unknown op " + std::to_string(static_cast<int>(op)));
  }
  switch (p.dtype) {
    case DType::kFloat32:
    case DType::kFloat16:
    case DType::kBFloat16:
    case DType::kFloat8E4M3: break;
    case DType::kInt32: return none("int32 is not an attention dtype");
    default: return none("unknown dtype " + std::to_string(static_cast<int>(p.dtype)));
  }
  if (dev.major < 8) {
    return none("device " + std::to_string(dev.index) + " (" + sm_name(dev.major, dev.minor) +
                ") is older than compute capability 8.0, which the kernels need");
  }
  if (p.b > 0) {
    const std::string problem = request_problem(op, p);
    if (!problem.empty()) return none(problem);
  }

  std::string sm90_why;
  const bool sm90_ok = force != Force::kSm80 && sm90_fits(op, p, dev, compiled, &sm90_why);
  if (force == Force::kSm90) {
    if (!sm90_ok) return none("FLASHATTN_KERNEL_PATH=sm90 forces the sm90 path, but " + sm90_why);
  }
  // A forward of a few query rows (decode-shaped) runs on the split-KV decode kernels, which every
  // build has for every arch, unless FLASHATTN_KERNEL_PATH forces a prefill path.
  const auto route_to_decode = [&](Plan& plan) {
    if (op == Op::kForward && force == Force::kAuto && plan.ok() &&
        forward_goes_to_decode(p, dev, &plan.splits, &plan.workspace_bytes)) {
      plan.decode = true;
    }
    return plan;
  };
  // The sm90 forward, where it fits, is the default on capability 9.0 (FLASHATTN_KERNEL_PATH=sm80
  // picks the sm80 kernels instead).
  if (sm90_ok) {
    Plan plan;
    plan.path = KernelPath::kSm90;
#if FLASHATTN_WITH_SM90
    plan.kernel_head_dim = op == Op::kForward ? sm90::fwd_kernel_head_dim(p.d) : sm90::bwd_kernel_head_dim(p.d);
#else
    plan.kernel_head_dim = p.d;
#endif
    if (op == Op::kBackward && p.b > 0) plan.workspace_bytes = sm90_backward_workspace_bytes(p);
    if (p.dtype == DType::kFloat8E4M3 && p.b > 0) plan.workspace_bytes = sm90::fp8_vt_bytes(p);  // Vᵀ (fp8_vt.h)
    return route_to_decode(plan);
  }
  if (p.dtype == DType::kFloat8E4M3) {
    return none("float8_e4m3 needs the sm90 forward: " + sm90_why);
  }
  Plan plan = plan_sm80(op, p, dev, compiled);
  if (!plan.ok() && force == Force::kSm80) plan.reason = "FLASHATTN_KERNEL_PATH=sm80 forces the sm80 path, but " + plan.reason;
  return route_to_decode(plan);
}

std::vector<std::string> device_paths(const DeviceFacts& dev, const std::vector<ArchTarget>& compiled,
                                      std::string* why_none) {
  bool has[3] = {false, false, false};
  std::string first_reason;
  for (Op op : {Op::kForward, Op::kBackward}) {
    for (DType dt : {DType::kFloat16, DType::kBFloat16, DType::kFloat8E4M3}) {
      for (int hd : sm80::kHeadDims) {
        AttnParams q;  // a capability query: b == 0 (one row, one head, contiguous, unit scale)
        q.dtype = dt;
        q.d = hd;
        q.s_q = q.s_k = q.h = q.h_k = 1;
        q.scale = 1.f;
        set_contiguous_strides(q);
        const Plan plan = make_plan(op, q, dev, compiled, Force::kAuto);
        if (plan.ok()) {
          has[static_cast<int>(plan.path)] = true;
        } else if (first_reason.empty() && dt != DType::kFloat8E4M3) {
          first_reason = plan.reason;
        }
      }
    }
  }
  std::vector<std::string> paths;
  if (has[2]) paths.push_back("sm90");
  if (has[1]) paths.push_back("sm80");
  if (paths.empty() && why_none) *why_none = first_reason;
  return paths;
}

bool PlanKey::operator==(const PlanKey& o) const {
  return op == o.op && device == o.device && dtype == o.dtype && b == o.b && s_q == o.s_q && s_k == o.s_k &&
         h == o.h && h_k == o.h_k && d == o.d && window_left == o.window_left && window_right == o.window_right &&
         deterministic == o.deterministic && scale_ok == o.scale_ok && strides_ok == o.strides_ok;
}

PlanKey plan_key(Op op, const AttnParams& p, int device) {
  PlanKey k{};
  k.op = static_cast<int32_t>(op);
  k.device = device;
  k.dtype = static_cast<int32_t>(p.dtype);
  k.b = p.b;
  k.s_q = p.s_q;
  k.s_k = p.s_k;
  k.h = p.h;
  k.h_k = p.h_k;
  k.d = p.d;
  k.window_left = p.window_left;
  k.window_right = p.window_right;
  k.deterministic = p.deterministic ? 1 : 0;
  k.scale_ok = (p.scale > 0.f && std::isfinite(p.scale)) ? 1 : 0;
  k.strides_ok = all_strides_ok(op, p) ? 1 : 0;
  return k;
}

}  // namespace flashattn::plan
