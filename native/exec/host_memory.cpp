// host_memory.cpp — see host_memory.h.
#include "exec/host_memory.h"

#include <cstdlib>
#include <map>
#include <mutex>
#include <new>
#include <vector>

#include "errors.h"

#if FLASHATTN_WITH_CUDA
#include "api.h"
#endif

namespace flashattn::native {

namespace {

constexpr size_t kAlign = 64;
constexpr size_t kMinPinned = size_t(4) << 10;  // a page: offsets, lengths, block tables are small

struct PinnedPool {
  std::mutex mu;
  std::map<size_t, std::vector<void*>> idle;  // size class -> buffers
  size_t idle_bytes = 0;                      // blocks above kSmallPinned
  size_t idle_small_bytes = 0;                // blocks of at most kSmallPinned
};

PinnedPool& pool() {
  static auto* p = new PinnedPool();  // never destroyed
  return *p;
}

[[maybe_unused]] size_t size_class(size_t bytes) {
  size_t c = kMinPinned;
  while (c < bytes) c <<= 1;
  return c;
}

}  // namespace

HostBlock HostBlock::plain(size_t bytes) {
  HostBlock b;
  const size_t rounded = (bytes + kAlign - 1) / kAlign * kAlign;
  b.ptr_ = std::aligned_alloc(kAlign, rounded == 0 ? kAlign : rounded);
  if (b.ptr_ == nullptr) throw std::bad_alloc();
  b.bytes_ = bytes;
  b.capacity_ = rounded;
  return b;
}

HostBlock HostBlock::pinned(size_t bytes) {
#if FLASHATTN_WITH_CUDA
  HostBlock b;
  b.pinned_ = true;
  b.bytes_ = bytes;
  b.capacity_ = size_class(bytes);
  {
    std::lock_guard<std::mutex> lock(pool().mu);
    auto it = pool().idle.find(b.capacity_);
    if (it != pool().idle.end() && !it->second.empty()) {
      b.ptr_ = it->second.back();
      it->second.pop_back();
      (b.capacity_ <= kSmallPinned ? pool().idle_small_bytes : pool().idle_bytes) -= b.capacity_;
      return b;
    }
  }
  b.ptr_ = cuda::pinned_alloc(b.capacity_);
  return b;
#else
  (void)bytes;
  fail(ErrorCode::kNoDevice, kBuiltWithoutCuda);
#endif
}

HostBlock::HostBlock(HostBlock&& o) noexcept
    : ptr_(o.ptr_), bytes_(o.bytes_), capacity_(o.capacity_), pinned_(o.pinned_) {
  o.ptr_ = nullptr;
}

HostBlock& HostBlock::operator=(HostBlock&& o) noexcept {
  if (this != &o) {
    reset();
    ptr_ = o.ptr_;
    bytes_ = o.bytes_;
    capacity_ = o.capacity_;
    pinned_ = o.pinned_;
    o.ptr_ = nullptr;
  }
  return *this;
}

HostBlock::~HostBlock() { reset(); }

void* HostBlock::release_plain() noexcept {
  if (pinned_) return nullptr;
  void* p = ptr_;
  ptr_ = nullptr;
  return p;
}

void HostBlock::reset() noexcept {
  if (ptr_ == nullptr) return;
  if (!pinned_) {
    std::free(ptr_);
  } else {
#if FLASHATTN_WITH_CUDA
    bool kept = false;
    try {
      std::lock_guard<std::mutex> lock(pool().mu);
      // Small blocks have their own budget, so idle input-sized blocks (a DeviceTensor.from of
      // 64 MiB, say) never push a call's offsets out: their free would synchronize the device on
      // the JS thread in the middle of a stream of calls.
      const bool small = capacity_ <= kSmallPinned;
      size_t& idle = small ? pool().idle_small_bytes : pool().idle_bytes;
      if (idle + capacity_ <= (small ? kPinnedSmallCacheBytes : kPinnedCacheBytes)) {
        pool().idle[capacity_].push_back(ptr_);
        idle += capacity_;
        kept = true;
      }
    } catch (...) {
    }
    if (!kept) cuda::pinned_free(ptr_);
#endif
  }
  ptr_ = nullptr;
}

size_t pinned_cached_bytes() {
  std::lock_guard<std::mutex> lock(pool().mu);
  return pool().idle_bytes + pool().idle_small_bytes;
}

}  // namespace flashattn::native
