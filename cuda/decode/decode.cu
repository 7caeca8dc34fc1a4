// decode.cu — host side of the decode path: validation, the split heuristic, the workspace, and
// the head-dim switch (which ends in an error, never a fall-through).
#include <algorithm>
#include <cstdint>
#include <string>

#include <cuda_runtime.h>

#include "common/check.h"
#include "decode/api.h"
#include "decode/decode_tile.h"
#include "decode/launch.cuh"

namespace flashattn::decode {
namespace {

bool aligned16(const void* ptr) { return (reinterpret_cast<uintptr_t>(ptr) & 15u) == 0; }
bool strides_ok(const Strides& s) { return s.batch % 8 == 0 && s.row % 8 == 0 && s.head % 8 == 0; }

int packed_rows(const DecodeParams& p) { return p.s_q * p.group_size(); }
int tile_rows(const DecodeParams& p) { return packed_rows(p) <= 16 ? 16 : 64; }  // WM = 1 or 4
int ctas_per_sm(const DecodeParams& p) { return p.d == 256 ? 1 : 2; }
// Key blocks (64 keys) per split below which the split heuristic plans one CTA per SM.
constexpr long long kMinBlocksForFullSlots = 12;

[[noreturn]] void fail(const std::string& what) { throw cuda::Error("decode: " + what, -1, false); }

}  // namespace

const char* decode_unsupported(const DecodeParams& p) {
  if (p.dtype != DType::kBFloat16 && p.dtype != DType::kFloat16) return "dtype must be bfloat16 or float16";
  if (p.d != 64 && p.d != 128 && p.d != 256) return "head dim must be 64, 128 or 256";
  if (p.b < 1 || p.s_q < 1 || p.h < 1 || p.h_k < 1) return "b, s_q, h and h_k must be positive";
  if (p.h % p.h_k != 0) return "h must be a multiple of h_k";
  if (static_cast<long long>(p.b) * p.h_k > 65535) return "b * h_k must be at most 65535";
  if (static_cast<long long>(p.s_q) * p.h > (1LL << 24)) return "s_q * h is too large";
  if (p.q == nullptr || p.k_cache == nullptr || p.v_cache == nullptr || p.out == nullptr)
    return "q, k_cache, v_cache and out are required";
  if (p.cache_seqlens == nullptr) return "cache_seqlens is required";
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

// Flash-decoding's wave rule: CTAs = tiles * splits; a wave holds num_sms * ctas_per_sm of them.
// Efficiency = CTAs / (waves * wave size). Take the smallest split count within 95% of the best,
// with at least two 64-key blocks per split (fewer keys per CTA than that cost more in the
// prologue and the combine than they save).
int decode_num_splits(const DecodeParams& p, int num_sms) {
  if (p.num_splits > 0) return p.num_splits < kMaxSplits ? p.num_splits : kMaxSplits;
  const int rows = packed_rows(p), tm = tile_rows(p);
  const long long tiles = static_cast<long long>(p.b) * p.h_k * ((rows + tm - 1) / tm);
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

namespace {
bool rotary(const DecodeParams& p) { return p.rotary_cos != nullptr && p.rotary_dim > 0; }

// Bytes of the split partials: partial O (splits, b * h_k, packed rows, d) then partial LSE
// (splits, b * h_k, packed rows); rounded up to 256 so what follows starts aligned.
size_t split_bytes(const DecodeParams& p, int splits) {
  if (splits <= 1) return 0;
  const size_t rows = static_cast<size_t>(p.b) * p.h_k * packed_rows(p);
  const size_t bytes = static_cast<size_t>(splits) * rows * (static_cast<size_t>(p.d) + 1) * sizeof(float);
  return (bytes + 255) / 256 * 256;
}

// The split partials, then (rotary) the rotated q, contiguous (b, s_q, h, d) in q's dtype.
size_t workspace_for(const DecodeParams& p, int splits) {
  const size_t q_rot = rotary(p) ? static_cast<size_t>(p.b) * p.s_q * p.h * p.d * sizeof(uint16_t) : 0;
  return split_bytes(p, splits) + q_rot;
}
}  // namespace

size_t decode_workspace_bytes(const DecodeParams& p, int num_sms) {
  return workspace_for(p, decode_num_splits(p, num_sms));
}

namespace {
int current_sm_count() {
  int dev = 0, sms = 0;
  FA_CUDA_CHECK(cudaGetDevice(&dev));
  FA_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  return sms;
}
}  // namespace

std::string decode_kernel_name(const DecodeParams& p, int num_sms) {
  return std::string("decode d") + std::to_string(p.d) + " " + dtype_name(p.dtype) + " m" +
         std::to_string(tile_rows(p)) + (p.paged() ? " paged" : "") + " splits " +
         std::to_string(decode_num_splits(p, num_sms));
}

void decode_forward(const DecodeParams& p, void* workspace, cudaStream_t stream) {
  if (const char* why = decode_unsupported(p)) fail(why);
  const int splits = decode_num_splits(p, p.num_splits > 0 ? 0 : current_sm_count());
  DecodeLaunch L;
  L.group = p.group_size();
  L.m_total = packed_rows(p);
  L.num_splits = splits;
  L.scale_log2 = p.scale * kLog2e;
  const size_t need = workspace_for(p, splits);
  if (need > 0) {
    if (workspace == nullptr || p.workspace_bytes < need)
      fail("workspace of " + std::to_string(p.workspace_bytes) + " bytes, " + std::to_string(need) + " needed for " +
           std::to_string(splits) + " splits" + (rotary(p) ? " and the rotated q" : "") +
           " (decode_workspace_bytes with this device's SM count)");
    if (!aligned16(workspace)) fail("workspace must start on a 16-byte boundary");
  }
  if (splits > 1) {
    L.o_ws = static_cast<float*>(workspace);
    L.lse_ws = L.o_ws + static_cast<size_t>(splits) * p.b * p.h_k * L.m_total * p.d;
  }
  if (rotary(p)) L.q_rot = reinterpret_cast<uint16_t*>(static_cast<char*>(workspace) + split_bytes(p, splits));
  switch (p.d) {
    case 64: run_decode_hd64(p, L, stream); return;
    case 128: run_decode_hd128(p, L, stream); return;
    case 256: run_decode_hd256(p, L, stream); return;
    default: fail("head dim " + std::to_string(p.d) + " has no decode kernel");
  }
}

void decode_forward_on(int device, const DecodeParams& p, void* workspace, cudaStream_t stream) {
  FA_CUDA_CHECK(cudaSetDevice(device));
  decode_forward(p, workspace, stream);
}

}  // namespace flashattn::decode
