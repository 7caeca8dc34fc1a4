// host_memory.h — host memory the addon owns for a call's lifetime: inputs copied out of the
// user's arrays when the call starts, outputs written before they are handed over on the JS
// thread. So no pointer into memory the user can detach, transfer or resize outlives the
// synchronous part of a call.
//
// Plain blocks (CPU backend) come from aligned malloc; pinned blocks (CUDA staging) from a
// process-wide pool of page-locked buffers that keeps up to kPinnedCacheBytes (and, apart,
// kPinnedSmallCacheBytes of small blocks) for reuse, since cudaHostAlloc and cudaFreeHost are
// slow (and the free synchronizes the device).
#pragma once

#include <cstddef>

namespace flashattn::native {

class HostBlock {
 public:
  HostBlock() = default;
  static HostBlock plain(size_t bytes);   // throws std::bad_alloc
  static HostBlock pinned(size_t bytes);  // throws cuda::Error (CUDA build only)
  HostBlock(HostBlock&& o) noexcept;
  HostBlock& operator=(HostBlock&& o) noexcept;
  HostBlock(const HostBlock&) = delete;
  HostBlock& operator=(const HostBlock&) = delete;
  ~HostBlock();

  void* data() const { return ptr_; }
  size_t size() const { return bytes_; }
  bool is_pinned() const { return pinned_; }
  // Gives up ownership of a plain block (free it with std::free).
  void* release_plain() noexcept;

 private:
  void reset() noexcept;
  void* ptr_ = nullptr;
  size_t bytes_ = 0;     // what was asked for
  size_t capacity_ = 0;  // pinned: the pool's size class
  bool pinned_ = false;
};

// The pinned pool keeps at most this much idle memory in blocks above kSmallPinned, and
// kPinnedSmallCacheBytes more in blocks of at most kSmallPinned (a call's offsets, lengths and
// block tables), each budget on its own.
inline constexpr size_t kPinnedCacheBytes = size_t(256) << 20;
inline constexpr size_t kSmallPinned = size_t(64) << 10;
inline constexpr size_t kPinnedSmallCacheBytes = size_t(16) << 20;

// Idle bytes the pinned pool holds now (for the soak report).
size_t pinned_cached_bytes();

}  // namespace flashattn::native
