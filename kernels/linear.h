// linear.h: y = x W + b on tensors, through our GEMM (kernels/cpu/gemm.h) on the
// cpu and cuBLAS on cuda. x [R, K], W [K, N], b [N] (may be undefined), y [R, N].
// x, W may be f32/bf16/f16 (f64 for tests); accumulation is f32 (f64 for f64).
// The GEMM's scratch comes from the caller as a workspace tensor of at least
// linear_workspace_bytes(...) bytes, so every byte goes through the allocator.
#pragma once

#include "runtime/tensor.h"

namespace gc::kernels {

// Bytes of workspace the GEMM needs for an [m, k] x [k, n] product on `device`
// (0 on meta when the real device would need none; the same value meta and cpu).
size_t gemm_workspace_bytes(Device device, int64_t m, int64_t n, int64_t k);

// y = x W (+ b)
void linear_forward(Tensor& y, const Tensor& x, const Tensor& W, const Tensor& b, Tensor& workspace);
// grad_x = grad_y W^T (assigned)
void linear_backward_input(Tensor& grad_x, const Tensor& grad_y, const Tensor& W, Tensor& workspace);
// grad_W += x^T grad_y (accumulated, f32 or f64)
void linear_backward_weight(Tensor& grad_W, const Tensor& x, const Tensor& grad_y, Tensor& workspace);
// general product out = op(a) op(b) (+ beta * out), for the ops that need it
void matmul(Tensor& out, const Tensor& a, bool transpose_a, const Tensor& b, bool transpose_b, double beta,
            Tensor& workspace);

}  // namespace gc::kernels
