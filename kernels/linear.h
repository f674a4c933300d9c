// linear.h: y = x W + b on tensors, through our GEMM (kernels/cpu/gemm.h) on the
// cpu and cuBLAS on cuda. x [..., K] (R = product of the leading dims), W [K, N],
// b [N] (may be undefined), y [..., N].
// x, W may be f32/bf16/f16 (all f64 for tests); y may be any of f32/bf16/f16;
// accumulation is f32 (f64 for f64), rounded to y's dtype once.
// The GEMM's scratch comes from the caller as a workspace tensor (any dtype, cpu
// or meta like the others) of at least the bytes named below, so every byte goes
// through the allocator. Every check runs on every device, meta included; meta
// then returns without touching data.
#pragma once

#include <cstdint>

#include "runtime/tensor.h"

namespace gc::kernels {

// Bytes of workspace the GEMM needs for an [m, k] x [k, n] product on `device`,
// for any dtypes and transposes (meta returns what cpu would; 0 when nothing is needed).
// The ops below need: linear_forward (m, n, k) = (R, N, K); linear_backward_input
// (R, K, N); linear_backward_weight (K, N, R); matmul (rows of out, cols of out, inner).
// --tf32: f32 GEMMs on cuda may use TF32 tensor cores (inputs rounded to 10
// mantissa bits, f32 accumulation); off by default, so f32 runs keep f32 products.
// No effect on cpu, on 16-bit or f64 products, or on a dry run's memory.
void set_tf32(bool enabled);
bool tf32_enabled();

size_t gemm_workspace_bytes(Device device, int64_t m, int64_t n, int64_t k);
// The largest of the three linear ops' needs, for one workspace shared by a layer.
size_t linear_workspace_bytes(Device device, int64_t rows, int64_t in_features, int64_t out_features);

// y = x W (+ b)                                   y [..., N], x [..., K], W [K, N], b [N]
void linear_forward(Tensor& y, const Tensor& x, const Tensor& W, const Tensor& b, Tensor& workspace);
// grad_x = grad_y W^T (assigned)                  grad_x [..., K], grad_y [..., N], W [K, N]
void linear_backward_input(Tensor& grad_x, const Tensor& grad_y, const Tensor& W, Tensor& workspace);
// grad_x += grad_y W^T in the product's own pass (beta = 1: C read, one rounding):
// where accumulate_in_product holds (cuda, or meta standing for it) autograd adds
// an input's gradient this way into a gradient the input already owns, instead
// of a product into a temporary and an accumulate (two more passes over grad_x).
void linear_backward_input_accumulate(Tensor& grad_x, const Tensor& grad_y, const Tensor& W, Tensor& workspace);
bool accumulate_in_product(Device device);
// grad_W += x^T grad_y (accumulated, f32 or f64)  grad_W [K, N], x [..., K], grad_y [..., N]
void linear_backward_weight(Tensor& grad_W, const Tensor& x, const Tensor& grad_y, Tensor& workspace);
// The same, and grad_b += grad_y's rows summed    grad_b [N] of grad_W's dtype
// (the bias gradient): the product, then sum_rows (bitwise sum_rows' result). Where
// bias_gradient_in_weight_product holds (cuda, or meta standing for it, with an
// f32 gradient) autograd calls this with the workspace held, and sum_rows' scratch
// is carved from that workspace: no scratch tensor of its own.
void linear_backward_weight_and_bias(Tensor& grad_W, Tensor& grad_b, const Tensor& x, const Tensor& grad_y,
                                     Tensor& workspace);
bool bias_gradient_in_weight_product(Device device, DType grad_W_dtype);
// True where a linear's bias gradient is summed by the op that consumes its output
// (cuda, or meta standing for it): SiLU's and LayerNorm's backward kernels write
// their input gradient and sum its rows in the same pass (silu_backward_bias,
// layernorm_backward_bias), where the product's backward would read it again
// (autograd: linear(..., bias_gradient_by_consumer) with silu / layernorm given
// the bias). On the cpu the linear sums it, with the bits it always had.
bool bias_gradient_folds(Device device);
// Products with a bias or a bias gradient that cuBLASLt offered no algorithm for,
// so far in this process (kernels/cuda/linear.h); 0 in a build without CUDA.
uint64_t bias_epilogue_fallbacks();
// general product out = op(a) op(b) (+ beta * out), for the ops that need it;
// out [m, n], op(a) [m, k], op(b) [k, n], all 2-D; beta == 0 never reads out.
void matmul(Tensor& out, const Tensor& a, bool transpose_a, const Tensor& b, bool transpose_b, double beta,
            Tensor& workspace);

}  // namespace gc::kernels
