// decode.cu — host side of the decode path: validation, the split heuristic, the workspace, and
// the head-dim switch (which ends in an error, never a fall-through).
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>

#include <cuda_runtime.h>

#include "common/check.h"
#include "decode/api.h"
#include "plan/decode_plan.h"
#include "decode/decode_tile.h"
#include "decode/launch.cuh"

namespace flashattn::decode {
namespace {
[[noreturn]] void fail(const std::string& what) { throw cuda::Error("decode: " + what, -1, false); }
}  // namespace

namespace {
// How several splits are merged, read once per process from FLASHATTN_DECODE_COMBINE (so one run
// can compare them): "fused" (default), the last split CTA of each tile merges them, with the
// counters zeroed by one cudaMemsetAsync per call (none with decode_forward_reusing); "fused-memset",
// the same but always zeroed per call; "kernel", a second kernel (combine_kernel) after the splits.
enum class Combine { kFused, kFusedMemset, kKernel };

Combine combine_mode() {
  static const Combine mode = [] {
    const char* v = std::getenv("FLASHATTN_DECODE_COMBINE");
    const std::string s = v ? v : "";
    if (s.empty() || s == "fused") return Combine::kFused;
    if (s == "fused-memset") return Combine::kFusedMemset;
    if (s == "kernel") return Combine::kKernel;
    return static_cast<Combine>(-1);
  }();
  if (mode != Combine::kFused && mode != Combine::kFusedMemset && mode != Combine::kKernel)
    fail("FLASHATTN_DECODE_COMBINE must be fused, fused-memset or kernel");
  return mode;
}

// Whether the deep-pipeline tile may serve grids of at most one CTA per SM (decode_tile.h):
// FLASHATTN_DECODE_DEEP=0 turns it off (for A/B runs), read once per process; default on.
bool deep_tile_allowed() {
  static const bool on = [] {
    const char* v = std::getenv("FLASHATTN_DECODE_DEEP");
    return v == nullptr || std::string(v) != "0";
  }();
  return on;
}

const char* combine_name(int splits) {
  if (splits <= 1) return "";
  return combine_mode() == Combine::kKernel ? " +combine kernel" : " fused combine";
}

int current_sm_count() {
  int dev = 0, sms = 0;
  FA_CUDA_CHECK(cudaGetDevice(&dev));
  FA_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  return sms;
}
}  // namespace

std::string decode_kernel_name(const DecodeParams& p, int num_sms) {
  const int splits = decode_num_splits(p, num_sms);
  // launch.cuh's uses_deep_tile, less the shared-memory check (every sm_90 GPU has room)
  const bool deep = deep_tile_allowed() && p.d == 128 && tile_rows(p) == 16 && split_tiles(p) * splits <= num_sms;
  return std::string("decode d") + std::to_string(p.d) + " " + dtype_name(p.dtype) + " m" +
         std::to_string(tile_rows(p)) + (deep ? " deep" : "") + (p.paged() ? " paged" : "") + " splits " +
         std::to_string(splits) + combine_name(splits);
}

namespace {
void enqueue_decode(const DecodeParams& p, void* workspace, cudaStream_t stream, bool counters_zeroed) {
  if (const char* why = decode_unsupported(p)) fail(why);
  const int splits = decode_num_splits(p, p.num_splits > 0 ? 0 : current_sm_count());
  DecodeLaunch L;
  L.group = p.group_size();
  L.m_total = packed_rows(p);
  L.num_splits = splits;
  L.scale_log2 = p.scale * kLog2e;
  L.deep_ok = deep_tile_allowed();
  const size_t need = workspace_for(p, splits);
  if (need > 0) {
    if (workspace == nullptr || p.workspace_bytes < need)
      fail("workspace of " + std::to_string(p.workspace_bytes) + " bytes, " + std::to_string(need) + " needed for " +
           std::to_string(splits) + " splits" + (p.rotary() ? " and the rotated q" : "") +
           " (decode_workspace_bytes with this device's SM count)");
    if (!aligned16(workspace)) fail("workspace must start on a 16-byte boundary");
  }
  if (splits > 1) {
    const size_t rows = static_cast<size_t>(splits) * p.b * p.h_k * L.m_total;
    L.o_ws = static_cast<float*>(workspace);
    L.lse_ws = L.o_ws + rows * p.d;
    const Combine mode = combine_mode();
    if (mode != Combine::kKernel) {
      L.counters = reinterpret_cast<int*>(L.lse_ws + rows);
      if (!counters_zeroed || mode == Combine::kFusedMemset)
        FA_CUDA_CHECK(cudaMemsetAsync(L.counters, 0, static_cast<size_t>(split_tiles(p)) * sizeof(int), stream));
    }
  }
  if (p.rotary()) L.q_rot = reinterpret_cast<uint16_t*>(static_cast<char*>(workspace) + split_bytes(p, splits));
  switch (p.d) {
    case 64: run_decode_hd64(p, L, stream); return;
    case 128: run_decode_hd128(p, L, stream); return;
    case 256: run_decode_hd256(p, L, stream); return;
    default: fail("head dim " + std::to_string(p.d) + " has no decode kernel");
  }
}

}  // namespace

void decode_forward(const DecodeParams& p, void* workspace, cudaStream_t stream) {
  enqueue_decode(p, workspace, stream, false);
}

void decode_forward_reusing(const DecodeParams& p, void* workspace, cudaStream_t stream) {
  enqueue_decode(p, workspace, stream, true);
}

void decode_forward_on(int device, const DecodeParams& p, void* workspace, cudaStream_t stream) {
  FA_CUDA_CHECK(cudaSetDevice(device));
  decode_forward(p, workspace, stream);
}

}  // namespace flashattn::decode
