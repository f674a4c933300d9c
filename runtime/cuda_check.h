// cuda_check.h: the one check macro every CUDA runtime call goes through. It
// throws gc::CudaError naming the call, file and line.
#pragma once

#ifdef GC_CUDA
#include <cuda_runtime_api.h>

#include <stdexcept>
#include <string>

namespace gc {
class CudaError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
}  // namespace gc

#define GC_CUDA_CHECK(call)                                                                        \
  do {                                                                                             \
    cudaError_t gc_cuda_status_ = (call);                                                          \
    if (gc_cuda_status_ != cudaSuccess)                                                            \
      throw ::gc::CudaError(std::string(#call) + " failed at " + __FILE__ + ":" +                  \
                            std::to_string(__LINE__) + ": " + cudaGetErrorString(gc_cuda_status_)); \
  } while (0)
#endif
