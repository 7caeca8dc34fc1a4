// tma_map.cu — host side of the tensor copy engine (tma_map.h).
#include <cstdint>
#include <cstring>
#include <mutex>
#include <string>

#include <cuda.h>
#include <cuda_runtime.h>
#include <cudaTypedefs.h>

#include "common/check.h"
#include "sm90/tma_map.h"

namespace flashattn::sm90 {
namespace {

// The driver's cuTensorMapEncodeTiled, found through the runtime so the addon links only cudart.
PFN_cuTensorMapEncodeTiled_v12000 encode_fn() {
  static const PFN_cuTensorMapEncodeTiled_v12000 fn = [] {
    void* f = nullptr;
    cudaDriverEntryPointQueryResult q = cudaDriverEntryPointSymbolNotFound;
    const cudaError_t err = cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &f, 12000, cudaEnableDefault, &q);
    if (err != cudaSuccess || q != cudaDriverEntryPointSuccess) f = nullptr;
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(f);
  }();
  return fn;
}

// The maps of the last few operands: an awaited loop or a serving step passes the same tensors
// call after call, and encoding a map is a driver call on every launch's path. A map depends only
// on the arguments of the encode, which are the key.
struct MapKey {
  const void* base;
  CUtensorMapDataType type;
  cuuint64_t dims[4];
  cuuint64_t strides[3];
  cuuint32_t box[4];
};

class MapCache {
 public:
  bool find(const MapKey& key, CUtensorMap* map) {
    std::lock_guard<std::mutex> lock(mu_);
    for (int i = 0; i < kEntries; ++i) {
      if (used_[i] && std::memcmp(&keys_[i], &key, sizeof key) == 0) {
        *map = maps_[i];
        return true;
      }
    }
    return false;
  }
  void add(const MapKey& key, const CUtensorMap& map) {
    std::lock_guard<std::mutex> lock(mu_);
    keys_[next_] = key;
    maps_[next_] = map;
    used_[next_] = true;
    next_ = (next_ + 1) % kEntries;
  }

 private:
  static constexpr int kEntries = 32;
  std::mutex mu_;
  MapKey keys_[kEntries];
  CUtensorMap maps_[kEntries];
  bool used_[kEntries] = {};
  int next_ = 0;
};

MapCache& map_cache() {
  static auto* c = new MapCache();  // never destroyed
  return *c;
}

}  // namespace

bool aligned16(const void* ptr) { return reinterpret_cast<uintptr_t>(ptr) % 16 == 0; }

// A stride the copy engine accepts: a positive multiple of 16 bytes below 2^40. A dim of extent 1
// never steps, so any stride does; it is replaced by a valid one.
bool stride_ok(int64_t stride_elems, int extent, int elem_bytes) {
  if (extent <= 1) return true;
  const int64_t bytes = stride_elems * elem_bytes;
  return bytes > 0 && bytes % 16 == 0 && bytes < (int64_t{1} << 40);
}

bool strides_ok(const Strides& st, int s, int heads, int b, int elem_bytes) {
  return stride_ok(st.row, s, elem_bytes) && stride_ok(st.head, heads, elem_bytes) && stride_ok(st.batch, b, elem_bytes);
}

// Tensor map of one (b, s, heads, d) operand, as the 4-D tensor (d, s, heads, b) with element
// strides (1, row, head, batch); box (one 128-byte panel: 64 16-bit or 128 e4m3 columns, rows,
// 1, 1), 128-byte swizzle, zero fill out of bounds. The e4m3 Vᵀ map is the same call with
// (d, s) = (keys, d rows) and box_rows = the compiled head dim.
CUtensorMap make_map(const void* base, DType dt, int b, int s, int heads, int d, const Strides& st, int box_rows,
                     const char* what) {
  CUtensorMap map;
  std::memset(&map, 0, sizeof map);
  const PFN_cuTensorMapEncodeTiled_v12000 encode = encode_fn();
  if (!encode) cuda::fail("sm90: the CUDA driver offers no cuTensorMapEncodeTiled (driver too old?)");
  const int bytes = dtype_size(dt);
  const int64_t fallback = static_cast<int64_t>(d) * 16 / bytes;  // d * 16 bytes: any multiple of 16 bytes
  cuuint64_t dims[4] = {static_cast<cuuint64_t>(d), static_cast<cuuint64_t>(s > 0 ? s : 1), static_cast<cuuint64_t>(heads),
                        static_cast<cuuint64_t>(b)};
  cuuint64_t strides[3] = {static_cast<cuuint64_t>((s > 1 ? st.row : fallback) * bytes),
                           static_cast<cuuint64_t>((heads > 1 ? st.head : fallback) * bytes),
                           static_cast<cuuint64_t>((b > 1 ? st.batch : fallback) * bytes)};
  cuuint32_t box[4] = {static_cast<cuuint32_t>(128 / bytes), static_cast<cuuint32_t>(box_rows), 1, 1};
  cuuint32_t elem_strides[4] = {1, 1, 1, 1};
  const CUtensorMapDataType type = dt == DType::kFloat8E4M3  ? CU_TENSOR_MAP_DATA_TYPE_UINT8
                                   : dt == DType::kBFloat16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16
                                                             : CU_TENSOR_MAP_DATA_TYPE_FLOAT16;
  MapKey key;
  std::memset(&key, 0, sizeof key);  // padding too: keys compare with memcmp
  key.base = base;
  key.type = type;
  std::memcpy(key.dims, dims, sizeof dims);
  std::memcpy(key.strides, strides, sizeof strides);
  std::memcpy(key.box, box, sizeof box);
  if (map_cache().find(key, &map)) return map;
  const CUresult r = encode(&map, type, 4, const_cast<void*>(base), dims, strides, box, elem_strides, CU_TENSOR_MAP_INTERLEAVE_NONE,
                            CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS) {
    cuda::fail(std::string("sm90: cuTensorMapEncodeTiled(") + what + ") failed with CUresult " + std::to_string(r));
  }
  map_cache().add(key, map);
  return map;
}

}  // namespace flashattn::sm90
