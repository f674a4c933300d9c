// kernels/cuda/backend.h: how the device-neutral entry points (kernels/*.cpp,
// built by g++) reach the cuda kernels. A build without CUDA has no
// kernels/cuda/*.cu objects, and no cuda tensor can exist there
// (allocator_for(Device::cuda) refuses to create one), so its cuda branches are
// unreachable; GC_CUDA_RUN still turns them into a clear error instead of a link
// failure.
#pragma once

#include <stdexcept>
#include <string>

namespace gc::cuda {

[[noreturn]] inline void throw_not_built(const char* op) {
  throw std::runtime_error(std::string(op) +
                           ": this build has no cuda backend (nvcc was not found at build time, or CUDA=0)");
}

}  // namespace gc::cuda

// GC_CUDA_RUN(op, call): the statement `call` in a build with CUDA; otherwise
// throws std::runtime_error naming op (and `call` is not compiled).
#ifdef GC_CUDA
#define GC_CUDA_RUN(op, call) call
#else
#define GC_CUDA_RUN(op, call) ::gc::cuda::throw_not_built(op)
#endif
