// decode_plan.cpp — the decode path's host-side rules (validation, splits, workspace) and its plan
// for a device and build: plain C++, so the CPU-only build and the tests plan decode too.
#include "plan/decode_plan.h"

#include <algorithm>
#include <string>

#include "decode/decode_tile.h"

namespace flashattn::decode {
namespace {

bool strides_ok(const Strides& s) { return s.batch % 8 == 0 && s.row % 8 == 0 && s.head % 8 == 0; }

// Key blocks (64 keys) per split below which the split heuristic plans one CTA per SM.
constexpr long long kMinBlocksForFullSlots = 12;

}  // namespace

const char* decode_shape_problem(const DecodeParams& p) {
  if (p.dtype != DType::kBFloat16 && p.dtype != DType::kFloat16) return "dtype must be bfloat16 or float16";
  if (p.d != 64 && p.d != 128 && p.d != 256) return "head dim must be 64, 128 or 256";
  if (p.b < 1 || p.s_q < 1 || p.h < 1 || p.h_k < 1) return "b, s_q, h and h_k must be positive";
  if (p.h % p.h_k != 0) return "h must be a multiple of h_k";
  if (static_cast<long long>(p.b) * p.h_k > 65535) return "b * h_k must be at most 65535";
  if (static_cast<long long>(p.s_q) * p.h > (1LL << 24)) return "s_q * h is too large";
  if (p.window_left < -1 || p.window_right < -1) return "window sizes must be >= -1";
  if (p.num_splits < 0 || p.num_splits > kMaxSplits) return "num_splits must be in [0, 256]";
  return nullptr;
}

const char* decode_unsupported(const DecodeParams& p) {
  if (const char* why = decode_shape_problem(p)) return why;
  if (p.q == nullptr || p.k_cache == nullptr || p.v_cache == nullptr || p.out == nullptr)
    return "q, k_cache, v_cache and out are required";
  if (p.cache_seqlens == nullptr && (p.k_new != nullptr || p.paged() || p.cache_batch_idx != nullptr || p.rotary()))
    return "cache_seqlens is required to append, page, index the cache or rotate";
  if (p.s_new < 0) return "s_new must be >= 0";
  if ((p.k_new == nullptr) != (p.v_new == nullptr)) return "k_new and v_new come together";
  if (p.s_new > 0 && p.k_new == nullptr) return "s_new > 0 needs k_new and v_new";
  if (p.window_left < -1 || p.window_right < -1) return "window sizes must be >= -1";
  if (p.num_splits < 0 || p.num_splits > kMaxSplits) return "num_splits must be in [0, 256]";
  if (p.rotary_cos != nullptr || p.rotary_sin != nullptr) {
    if (p.rotary_cos == nullptr || p.rotary_sin == nullptr) return "rotary_cos and rotary_sin come together";
    if (p.rotary_dim < 16 || p.rotary_dim % 16 != 0 || p.rotary_dim > p.d)
      return "rotary_dim must be a positive multiple of 16, at most d";
    if (p.rotary_seqlen < 1) return "rotary_seqlen must be positive";
  }
  if (p.paged()) {
    if (p.cache_batch_idx != nullptr) return "cache_batch_idx is not supported with a paged cache";
    if (p.page_size < 1 || p.num_blocks < 1 || p.max_blocks_per_seq < 1) return "paged cache sizes must be positive";
    if (static_cast<long long>(p.page_size) * p.max_blocks_per_seq > (1LL << 30))
      return "page_size * max_blocks_per_seq is too large";
    if (p.block_table_batch_stride < p.max_blocks_per_seq) return "block_table rows overlap";
  } else {
    if (p.max_seqlen < 1 || p.batch_cache < 1) return "contiguous cache sizes must be positive";
    if (p.cache_batch_idx == nullptr && p.batch_cache < p.b) return "the cache has fewer rows than the batch";
  }
  if (!aligned16(p.q) || !aligned16(p.k_cache) || !aligned16(p.v_cache) || !aligned16(p.out) ||
      !aligned16(p.k_new) || !aligned16(p.v_new))
    return "16-bit tensors must start on a 16-byte boundary";
  if (!strides_ok(p.q_stride) || !strides_ok(p.k_stride) || !strides_ok(p.v_stride) || !strides_ok(p.o_stride) ||
      (p.k_new != nullptr && (!strides_ok(p.knew_stride) || !strides_ok(p.vnew_stride))))
    return "strides must be multiples of 8 elements";
  return nullptr;
}

DecodeParams decode_params_of_forward(const AttnParams& a) {
  DecodeParams p;
  p.q = a.q;
  p.k_cache = const_cast<void*>(a.k);
  p.v_cache = const_cast<void*>(a.v);
  p.out = a.out;
  p.lse = a.lse;
  p.q_stride = a.q_stride;
  p.k_stride = a.k_stride;
  p.v_stride = a.v_stride;
  p.o_stride = a.o_stride;
  p.b = a.b;
  p.s_q = a.s_q;
  p.h = a.h;
  p.h_k = a.h_k;
  p.d = a.d;
  p.batch_cache = a.b;
  p.max_seqlen = a.s_k;
  p.seqlen_k_hint = a.s_k;
  p.dtype = a.dtype;
  p.scale = a.scale;
  p.window_left = a.window_left;
  p.window_right = a.window_right;
  return p;
}

// Flash-decoding's wave rule: CTAs = tiles * splits; a wave holds num_sms * ctas_per_sm of them.
// Efficiency = CTAs / (waves * wave size). Take the smallest split count within 95% of the best,
// with at least two 64-key blocks per split (fewer keys per CTA than that cost more in the
// prologue and the combine than they save).
int decode_num_splits(const DecodeParams& p, int num_sms) {
  if (p.num_splits > 0) return p.num_splits < kMaxSplits ? p.num_splits : kMaxSplits;
  const long long tiles = split_tiles(p);
  const long long sms = num_sms > 0 ? num_sms : 1;
  long long slots = sms * ctas_per_sm(p);
  const long long seqk = p.seqlen_k_hint > 0 ? p.seqlen_k_hint : p.capacity();
  const long long blocks = (seqk + 63) / 64;
  // Filling every CTA slot of the SMs pays only when each split still streams a long run of key
  // blocks; for shorter contexts one CTA per SM with twice the keys each is faster (measured on
  // the H200 at b1, d128, GQA 32/8: 8k 1.50 TB/s at 16 splits against 1.25 at 32; 32k and 128k
  // the other way). docs/decode-notes.md has the sweep.
  // Only where one CTA per SM still leaves two or more splits (b16 at 1k keeps its 2 splits).
  if (slots > sms && sms / tiles >= 2 && blocks / std::max(1LL, slots / tiles) < kMinBlocksForFullSlots) slots = sms;
  long long cap = blocks / 2;
  if (cap > kMaxSplits) cap = kMaxSplits;
  if (cap < 1 || tiles >= slots) return 1;
  auto efficiency = [&](long long s) {
    const long long ctas = tiles * s;
    const long long waves = (ctas + slots - 1) / slots;
    return static_cast<double>(ctas) / static_cast<double>(waves * slots);
  };
  double best = 0;
  for (long long s = 1; s <= cap; ++s) best = efficiency(s) > best ? efficiency(s) : best;
  for (long long s = 1; s <= cap; ++s)
    if (efficiency(s) >= 0.95 * best) return static_cast<int>(s);
  return 1;
}

int64_t split_tiles(const DecodeParams& p) {
  const int rows = packed_rows(p), tm = tile_rows(p);
  return static_cast<int64_t>(p.b) * p.h_k * ((rows + tm - 1) / tm);
}

// Bytes of the split partials: partial O (splits, b * h_k, packed rows, d), partial LSE
// (splits, b * h_k, packed rows), then the tiles' arrival counters (int32); rounded up to 256 so
// what follows starts aligned.
size_t split_bytes(const DecodeParams& p, int splits) {
  if (splits <= 1) return 0;
  const size_t rows = static_cast<size_t>(p.b) * p.h_k * packed_rows(p);
  const size_t bytes = static_cast<size_t>(splits) * rows * (static_cast<size_t>(p.d) + 1) * sizeof(float) +
                       static_cast<size_t>(split_tiles(p)) * sizeof(int32_t);
  return (bytes + 255) / 256 * 256;
}

// The split partials, then (rotary) the rotated q, contiguous (b, s_q, h, d) in q's dtype.
size_t workspace_for(const DecodeParams& p, int splits) {
  const size_t q_rot = p.rotary() ? static_cast<size_t>(p.b) * p.s_q * p.h * p.d * sizeof(uint16_t) : 0;
  return split_bytes(p, splits) + q_rot;
}

size_t decode_workspace_bytes(const DecodeParams& p, int num_sms) {
  return workspace_for(p, decode_num_splits(p, num_sms));
}

}  // namespace flashattn::decode

namespace flashattn::plan {

namespace {
template <int D, int WM>
constexpr size_t tile_smem() { return decode::DecodeTile<D, WM>::kSmemBytes; }

size_t decode_smem(int d, int tile_rows) {
  const bool wide = tile_rows > 16;
  switch (d) {
    case 64: return wide ? tile_smem<64, 4>() : tile_smem<64, 1>();
    case 128: return wide ? tile_smem<128, 4>() : tile_smem<128, 1>();
    case 256: return wide ? tile_smem<256, 4>() : tile_smem<256, 1>();
    default: return 0;
  }
}
}  // namespace

bool forward_goes_to_decode(const AttnParams& p, const DeviceFacts& device, int* splits, size_t* workspace_bytes) {
  if (p.b <= 0 || p.s_q < 1 || p.s_q > decode::kDecodeMaxQueries || p.s_k < 1 || p.varlen()) return false;
  if ((p.dtype != DType::kBFloat16 && p.dtype != DType::kFloat16) || p.out_dtype != p.dtype) return false;
  // The shape's rules; pointers and strides pass the plan's own checks (16-byte aligned, strides
  // multiples of 8), which are the decode kernels' too.
  const decode::DecodeParams dp = decode::decode_params_of_forward(p);
  if (decode::decode_shape_problem(dp) != nullptr) return false;
  if (decode_smem(dp.d, decode::tile_rows(dp)) > device.smem_optin) return false;
  *splits = decode::decode_num_splits(dp, device.sm_count);
  *workspace_bytes = decode::decode_workspace_bytes(dp, device.sm_count);
  return true;
}

DecodePlan plan_decode(const decode::DecodeParams& shape, const DeviceFacts& device,
                       const std::vector<ArchTarget>& compiled) {
  DecodePlan plan;
  if (const char* why = decode::decode_shape_problem(shape)) {
    plan.reason = why;
    return plan;
  }
  // The decode kernels are built for every arch of the build (they are not sm90-only): they run
  // wherever the build has code for the device.
  std::string why_none;
  if (device_paths(device, compiled, &why_none).empty()) {
    plan.reason = why_none;
    return plan;
  }
  plan.tile_rows = decode::tile_rows(shape);
  plan.smem_bytes = decode_smem(shape.d, plan.tile_rows);
  if (plan.smem_bytes > device.smem_optin) {
    plan.reason = "the d" + std::to_string(shape.d) + " decode tile needs " + std::to_string(plan.smem_bytes / 1024) +
                  " KB of shared memory per block and this GPU allows " + std::to_string(device.smem_optin / 1024) +
                  " KB";
    return plan;
  }
  plan.ok = true;
  plan.splits = decode::decode_num_splits(shape, device.sm_count);
  plan.workspace_bytes = decode::decode_workspace_bytes(shape, device.sm_count);
  return plan;
}

}  // namespace flashattn::plan
