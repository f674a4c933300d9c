// kernels/cuda/cublas_check.h: GC_CUBLAS_CHECK, the sibling of GC_CUDA_CHECK
// (runtime/cuda_check.h) for cuBLAS calls: it throws gc::CudaError naming the
// call, file and line, and cuBLAS's status. Only kernels/cuda/ uses cuBLAS.
#pragma once

#ifdef GC_CUDA
#include <cublas_v2.h>

#include <string>

#include "runtime/cuda_check.h"

#define GC_CUBLAS_CHECK(call)                                                                          \
  do {                                                                                                 \
    cublasStatus_t gc_cublas_status_ = (call);                                                         \
    if (gc_cublas_status_ != CUBLAS_STATUS_SUCCESS)                                                    \
      throw ::gc::CudaError(std::string(#call) + " failed at " + __FILE__ + ":" +                      \
                            std::to_string(__LINE__) + ": " + cublasGetStatusString(gc_cublas_status_)); \
  } while (0)
#endif
