// cuda_device.cpp: the cuda device's host side (CUDA runtime API, built with g++
// against cudart when GC_CUDA is defined): availability, the raw backend on
// cudaMalloc, copies and memset on the one stream gc uses (the default stream).
#include <stdexcept>
#include <string>

#include "runtime/allocator.h"
#include "runtime/device.h"

#ifdef GC_CUDA
#include <cuda_runtime_api.h>

#include "runtime/cuda_check.h"
#endif

namespace gc {

#ifdef GC_CUDA

bool cuda_available(std::string* why_not) {
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    if (why_not) *why_not = std::string("no usable CUDA driver/GPU: ") + cudaGetErrorString(err);
    cudaGetLastError();  // clear the sticky error state
    return false;
  }
  if (count == 0) {
    if (why_not) *why_not = "no GPU found";
    return false;
  }
  return true;
}

bool cuda_memory_in_use(int64_t* used_bytes, int64_t* total_bytes) {
  if (!cuda_available()) return false;
  size_t free_bytes = 0, total = 0;
  if (cudaMemGetInfo(&free_bytes, &total) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  *used_bytes = static_cast<int64_t>(total - free_bytes);
  *total_bytes = static_cast<int64_t>(total);
  return true;
}

std::string cuda_device_name() {
  if (!cuda_available()) return std::string();
#ifdef GC_CUDA_SIM
  return "cudasim";
#else
  cudaDeviceProp properties;
  if (cudaGetDeviceProperties(&properties, 0) != cudaSuccess) {
    cudaGetLastError();
    return std::string();
  }
  return properties.name;
#endif
}

namespace {
class CudaBackend final : public RawBackend {
 public:
  uintptr_t allocate(size_t bytes) override {
    void* p = nullptr;
    if (cudaMalloc(&p, bytes) != cudaSuccess) {
      cudaGetLastError();
      return 0;
    }
    return reinterpret_cast<uintptr_t>(p);
  }
  void release(uintptr_t address, size_t) override {
    GC_CUDA_CHECK(cudaFree(reinterpret_cast<void*>(address)));
  }
  Device device() const override { return Device::cuda; }
};
}  // namespace

std::unique_ptr<RawBackend> make_cuda_backend() {
  std::string why;
  if (!cuda_available(&why)) throw std::runtime_error("cuda device unavailable: " + why);
  return std::make_unique<CudaBackend>();
}

void cuda_copy(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes) {
  cudaMemcpyKind kind = cudaMemcpyDefault;
  if (dst_device == Device::cuda && src_device == Device::cpu) kind = cudaMemcpyHostToDevice;
  else if (dst_device == Device::cpu && src_device == Device::cuda) kind = cudaMemcpyDeviceToHost;
  else if (dst_device == Device::cuda && src_device == Device::cuda) kind = cudaMemcpyDeviceToDevice;
  if (bytes) GC_CUDA_CHECK(cudaMemcpy(dst, src, bytes, kind));
}

void cuda_memset_zero(void* dst, size_t bytes) {
  if (bytes) GC_CUDA_CHECK(cudaMemset(dst, 0, bytes));
}

int cuda_select_device(int index) {
  std::string why;
  if (!cuda_available(&why)) throw std::runtime_error("cuda device unavailable: " + why);
  int count = 0;
  GC_CUDA_CHECK(cudaGetDeviceCount(&count));
  const int chosen = ((index % count) + count) % count;
  GC_CUDA_CHECK(cudaSetDevice(chosen));
  return chosen;
}

#else

int cuda_select_device(int) {
  std::string why;
  cuda_available(&why);
  throw std::runtime_error("cuda device unavailable: " + why);
}

bool cuda_available(std::string* why_not) {
  if (why_not) *why_not = "built without CUDA (nvcc was not found at build time, or CUDA=0)";
  return false;
}

bool cuda_memory_in_use(int64_t*, int64_t*) { return false; }

std::string cuda_device_name() { return std::string(); }

std::unique_ptr<RawBackend> make_cuda_backend() {
  std::string why;
  cuda_available(&why);
  throw std::runtime_error("cuda device unavailable: " + why);
}

#endif

}  // namespace gc
