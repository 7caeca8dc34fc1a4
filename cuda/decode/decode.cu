// decode.cu — host side of the decode path: validation, the split heuristic, the workspace, and
// the head-dim switch (which ends in an error, never a fall-through).
#include <algorithm>
#include <cstdint>
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
           std::to_string(splits) + " splits" + (p.rotary() ? " and the rotated q" : "") +
           " (decode_workspace_bytes with this device's SM count)");
    if (!aligned16(workspace)) fail("workspace must start on a 16-byte boundary");
  }
  if (splits > 1) {
    L.o_ws = static_cast<float*>(workspace);
    L.lse_ws = L.o_ws + static_cast<size_t>(splits) * p.b * p.h_k * L.m_total * p.d;
  }
  if (p.rotary()) L.q_rot = reinterpret_cast<uint16_t*>(static_cast<char*>(workspace) + split_bytes(p, splits));
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
