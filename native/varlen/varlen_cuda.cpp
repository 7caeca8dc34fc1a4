// varlen_cuda.cpp — varlen calls on CUDA, one batch-of-one launch per packed sequence (see the header).
#if FLASHATTN_WITH_CUDA
#include "varlen/varlen_cuda.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <type_traits>

#include "errors.h"
#include "exec/stream.h"

namespace flashattn::native {
namespace {

// Row `row` of a packed operand: `base` moved by row * row_stride elements of `elem` bytes.
template <typename P>
P* at_row(P* base, int64_t row, const Strides& st, size_t elem) {
  if (base == nullptr) return nullptr;
  using Byte = std::conditional_t<std::is_const_v<P>, const char, char>;
  return reinterpret_cast<P*>(reinterpret_cast<Byte*>(base) + static_cast<size_t>(row * st.row) * elem);
}

// One sequence's strides: the packed row and head steps; the batch step spans its rows.
Strides of_rows(Strides st, int rows) {
  st.batch = st.row * rows;
  return st;
}

// Zeros in `rows` rows of `heads` heads of `d` elements at `base` (strides `st`).
void zero_rows(int device, void* base, const Strides& st, int heads, int d, size_t elem, int rows, cuda::Stream stream) {
  if (st.head == d) {  // each row's heads are one block
    cuda::fill_2d(device, base, static_cast<size_t>(st.row) * elem, 0, static_cast<size_t>(heads) * d * elem, rows, stream);
    return;
  }
  for (int hh = 0; hh < heads; ++hh) {
    cuda::fill_2d(device, static_cast<char*>(base) + static_cast<size_t>(hh * st.head) * elem,
                  static_cast<size_t>(st.row) * elem, 0, static_cast<size_t>(d) * elem, rows, stream);
  }
}

// Streams one call's sequences spread over: enough for short sequences to run beside a long one.
constexpr int kMaxLanes = 4;

// The whole batch as one launch of the sm90 forward, when the plan for a sequence as long as the
// longest one picks it and the kernel's own rule takes the packed request (offsets, batch size).
bool plan_one_launch(const AttnParams& packed, const std::vector<int32_t>& cu_q, const std::vector<int32_t>& cu_k,
                     int device, VarlenLaunch& launch) {
  if (packed.cu_seqlens_q == nullptr || packed.cu_seqlens_k == nullptr) return false;
  AttnParams whole = packed;
  whole.cu_seqlens_q_host = cu_q.data();
  whole.cu_seqlens_k_host = cu_k.data();
  for (size_t b = 0; b + 1 < cu_q.size(); ++b) {
    whole.max_seqlen_q = std::max(whole.max_seqlen_q, cu_q[b + 1] - cu_q[b]);
    whole.max_seqlen_k = std::max(whole.max_seqlen_k, cu_k[b + 1] - cu_k[b]);
  }
  if (whole.max_seqlen_q == 0) return false;  // nothing to compute: the per-sequence route does nothing either
  AttnParams longest = packed;  // the plan's question: a sequence of the longest lengths
  longest.cu_seqlens_q = longest.cu_seqlens_k = nullptr;
  longest.b = 1;
  longest.s_q = whole.max_seqlen_q;
  longest.s_k = std::max(whole.max_seqlen_k, 1);
  longest.q_stride = of_rows(packed.q_stride, longest.s_q);
  longest.k_stride = of_rows(packed.k_stride, longest.s_k);
  longest.v_stride = of_rows(packed.v_stride, longest.s_k);
  longest.o_stride = of_rows(packed.o_stride, longest.s_q);
  const plan::Plan plan = cuda::plan_for(cuda::Op::kForward, longest, device);
  if (!plan.ok() || plan.path != plan::KernelPath::kSm90 || !plan::sm90_forward_covers(whole, nullptr)) return false;
  launch.one_launch = true;
  launch.whole = whole;
  launch.whole_plan = plan;
  return true;
}

}  // namespace

VarlenLaunch plan_varlen(bool backward, const AttnParams& packed, const std::vector<int32_t>& cu_q,
                         const std::vector<int32_t>& cu_k, int device, const std::string& device_label) {
  const cuda::Op op = backward ? cuda::Op::kBackward : cuda::Op::kForward;
  const size_t elem = dtype_size(packed.dtype), out_elem = dtype_size(packed.out_dtype);
  VarlenLaunch launch;
  if (!backward && plan_one_launch(packed, cu_q, cu_k, device, launch)) return launch;
  int longest = 0;
  const size_t batch = cu_q.size() - 1;
  launch.sequences.reserve(batch);
  for (size_t b = 0; b < batch; ++b) {
    VarlenSequence s;
    s.q0 = cu_q[b];
    s.k0 = cu_k[b];
    AttnParams& p = s.params;
    p = packed;
    p.cu_seqlens_q = p.cu_seqlens_k = nullptr;  // a padded batch of one
    p.b = 1;
    p.s_q = cu_q[b + 1] - cu_q[b];
    p.s_k = cu_k[b + 1] - cu_k[b];
    p.q = at_row(packed.q, s.q0, packed.q_stride, elem);
    p.k = at_row(packed.k, s.k0, packed.k_stride, elem);
    p.v = at_row(packed.v, s.k0, packed.v_stride, elem);
    p.out = at_row(packed.out, s.q0, packed.o_stride, backward ? elem : out_elem);
    p.lse = nullptr;  // the scratch block, at enqueue
    p.q_stride = of_rows(packed.q_stride, p.s_q);
    p.k_stride = of_rows(packed.k_stride, p.s_k);
    p.v_stride = of_rows(packed.v_stride, p.s_k);
    p.o_stride = of_rows(packed.o_stride, p.s_q);
    if (backward) {
      p.dout = at_row(packed.dout, s.q0, packed.do_stride, elem);
      p.dq = at_row(packed.dq, s.q0, packed.dq_stride, elem);
      p.dk = at_row(packed.dk, s.k0, packed.dk_stride, elem);
      p.dv = at_row(packed.dv, s.k0, packed.dv_stride, elem);
      p.do_stride = of_rows(packed.do_stride, p.s_q);
      p.dq_stride = of_rows(packed.dq_stride, p.s_q);
      p.dk_stride = of_rows(packed.dk_stride, p.s_k);
      p.dv_stride = of_rows(packed.dv_stride, p.s_k);
    }
    if (p.s_q > 0 && p.s_k > 0) {
      s.plan = cuda::plan_for(op, p, device);
      if (!s.plan.ok()) {
        fail(ErrorCode::kUnsupported, "no CUDA kernel serves sequence " + std::to_string(b) + " (" +
                                          std::to_string(p.s_q) + " queries, " + std::to_string(p.s_k) + " keys) on " +
                                          device_label + ": " + s.plan.reason);
      }
      longest = std::max(longest, p.s_q);
    }
    launch.sequences.push_back(std::move(s));
  }
  // Longest first: the big sequences start at once and the short ones fill in behind them.
  auto work = [](const VarlenSequence& s) { return static_cast<int64_t>(s.params.s_q) * s.params.s_k; };
  std::stable_sort(launch.sequences.begin(), launch.sequences.end(),
                   [&](const VarlenSequence& a, const VarlenSequence& b) { return work(a) > work(b); });
  int with_work = 0;
  for (const VarlenSequence& s : launch.sequences) with_work += work(s) > 0 ? 1 : 0;
  launch.lanes = std::max(1, std::min(kMaxLanes, with_work));
  launch.lane_scratch = (static_cast<size_t>(packed.h) * longest * sizeof(float) + 255) / 256 * 256;
  launch.scratch_bytes = launch.lanes * launch.lane_scratch;
  return launch;
}

void enqueue_varlen(int device, bool backward, const AttnParams& packed, const VarlenLaunch& launch, float* scratch,
                    cuda::Stream stream) {
  if (launch.one_launch) {
    cuda::forward(device, launch.whole, launch.whole_plan, stream);
    return;
  }
  const size_t elem = dtype_size(packed.dtype), out_elem = dtype_size(packed.out_dtype);
  const size_t lse_pitch = static_cast<size_t>(packed.s_q) * sizeof(float);  // lse [h, total_q]
  // Lane 0 is the call's stream; the others fork from it here and join back at the end.
  std::vector<cuda::Stream> lanes{stream};
  if (launch.lanes > 1) {
    for (cuda::Stream side : cuda::side_streams(device, launch.lanes - 1)) {
      cuda::stream_wait(device, side, stream);
      lanes.push_back(side);
    }
  }
  // Whatever happens below, the lanes join back: the call's completion must cover their work.
  struct Join {
    int device;
    std::vector<cuda::Stream>& lanes;
    ~Join() {
      for (size_t i = 1; i < lanes.size(); ++i) {
        try {
          cuda::stream_wait(device, lanes[0], lanes[i]);
        } catch (...) {
          wait_stream_quietly(lanes[i]);  // no join on the device: wait here instead
        }
      }
    }
  } join{device, lanes};
  // Each sequence to the lane with the least work so far (sequences come longest first).
  std::vector<int64_t> load(lanes.size(), 0);
  for (const VarlenSequence& s : launch.sequences) {
    AttnParams p = s.params;
    const size_t lane = static_cast<size_t>(std::min_element(load.begin(), load.end()) - load.begin());
    load[lane] += static_cast<int64_t>(p.s_q + 1) * (p.s_k + 1);
    stream = lanes[lane];
    float* const scratch_lane = reinterpret_cast<float*>(reinterpret_cast<char*>(scratch) + lane * launch.lane_scratch);
    const size_t rows_bytes = static_cast<size_t>(p.s_q) * sizeof(float);
    float* lse_rows = packed.lse + s.q0;  // head 0 of this sequence's columns
    if (!backward) {
      if (p.s_q == 0) continue;
      if (p.s_k == 0) {  // no key: out 0, lse -inf
        zero_rows(device, p.out, p.o_stride, p.h, p.d, out_elem, p.s_q, stream);
        cuda::fill_floats_2d(device, lse_rows, static_cast<size_t>(packed.s_q), -INFINITY, p.s_q, p.h, stream);
        continue;
      }
      p.lse = scratch_lane;
      cuda::forward(device, p, s.plan, stream);
      cuda::copy_2d(device, lse_rows, lse_pitch, scratch_lane, rows_bytes, rows_bytes, p.h, stream);
      continue;
    }
    if (p.s_q == 0 && p.s_k == 0) continue;
    if (p.s_k == 0) {  // queries that see no key: dq = 0
      zero_rows(device, p.dq, p.dq_stride, p.h, p.d, elem, p.s_q, stream);
      continue;
    }
    if (p.s_q == 0) {  // keys no query sees: dk = dv = 0
      zero_rows(device, p.dk, p.dk_stride, p.h_k, p.d, elem, p.s_k, stream);
      zero_rows(device, p.dv, p.dv_stride, p.h_k, p.d, elem, p.s_k, stream);
      continue;
    }
    cuda::copy_2d(device, scratch_lane, rows_bytes, lse_rows, lse_pitch, rows_bytes, p.h, stream);
    p.lse = scratch_lane;
    cuda::backward(device, p, s.plan, stream);
  }
}

}  // namespace flashattn::native
#endif  // FLASHATTN_WITH_CUDA
