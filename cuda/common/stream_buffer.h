// stream_buffer.h — a kernel's scratch memory, allocated and freed in stream order.
#pragma once

#include <cstddef>

#include <cuda_runtime.h>

#include "common/check.h"

namespace flashattn::cuda {

// A stream-ordered allocation from the device's default memory pool, freed stream-ordered when it
// goes out of scope (also when a launch throws), so the bench sees its peak in the pool.
class StreamBuffer {
 public:
  StreamBuffer(size_t bytes, cudaStream_t stream) : stream_(stream) {
    FA_CUDA_CHECK(cudaMallocAsync(&ptr_, bytes, stream));
  }
  ~StreamBuffer() {
    if (ptr_ != nullptr) cudaFreeAsync(ptr_, stream_);
  }
  StreamBuffer(const StreamBuffer&) = delete;
  StreamBuffer& operator=(const StreamBuffer&) = delete;
  float* floats() const { return static_cast<float*>(ptr_); }

 private:
  void* ptr_ = nullptr;
  cudaStream_t stream_;
};

}  // namespace flashattn::cuda
