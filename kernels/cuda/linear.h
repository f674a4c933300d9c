// kernels/cuda/linear.h: GEMM on the gpu through cuBLAS, for kernels/linear.cpp
// (plain C++: g++ and nvcc both read this header; definitions in linear.cu).
//
// The problem is the device-neutral GemmProblem (kernels/gemm_problem.h: pointers,
// dtypes, row strides, transposes, alpha, beta, optional bias).
// Supported dtypes, those cublasGemmEx multiplies with f32 accumulation:
//   A, B bf16 (or both f16) with C of that dtype or f32; A, B, C f32; all f64.
// A and B of different dtypes are rejected (std::invalid_argument): autograd
// multiplies x by a compute-dtype copy of the f32 weights, so they match. The bias
// (f32, bf16 or f16) is added in cuBLASLt's output pass (its bias epilogue), to
// the accumulator before C's one rounding, as on the cpu; an f64 bias, or one
// cuBLASLt offers no algorithm for, by our own kernel after the product (for a
// 16-bit C that rounds twice: product, then sum).
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/gemm_problem.h"

namespace gc::cuda {

// The cuBLAS workspace, a fixed size whatever the product: NVIDIA's recommended
// 32 MiB for Hopper (more than Ampere needs). kernels::gemm_workspace_bytes
// returns exactly this for Device::cuda, so the caller allocates it through the
// caching allocator (category workspace) and every cuBLAS scratch byte is counted;
// a meta run that models cuda must use the same figure.
constexpr size_t kCublasWorkspaceBytes = size_t(32) << 20;

// C = alpha op(A) op(B) + beta C (+ bias), row-major as in kernels/gemm_problem.h.
// workspace: device memory of at least kCublasWorkspaceBytes. Throws
// std::invalid_argument on unsupported dtypes or a short workspace, gc::CudaError
// when cuBLAS fails.
void gemm(const kernels::GemmProblem& problem, void* workspace, size_t workspace_bytes);

// The workspace's last bytes that hold an f32 bias rounded to a 16-bit C's dtype
// (kernels::rounds_bias_first) for the product; cuBLAS gets the rest.
size_t rounded_bias_bytes(int64_t n);

// How many products with a bias took the fallback (cublasGemmEx, then our
// epilogue kernel) because cuBLASLt offered no algorithm: 0 where the bias
// epilogue works, as kernels/traffic.h models it.
uint64_t bias_epilogue_fallbacks();

}  // namespace gc::cuda
