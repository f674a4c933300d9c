// kernels/linear.cpp: the linear layer's three products and the general matmul:
// validation and device dispatch onto the cpu GEMM or cuBLAS (kernels/cuda/linear.h).
//
// Every check runs on every device, meta included (the workspace size too), so a
// dry run rejects exactly what a real run rejects; meta then returns without
// touching data. Parameter gradients accumulate (beta = 1); everything else is
// assigned (beta = 0, which never reads the output).
#include "kernels/linear.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "kernels/cpu/gemm.h"
#include "kernels/cpu/reduce.h"
#include "kernels/cuda/backend.h"
#include "kernels/cuda/linear.h"
#include "kernels/cuda/reduce.h"
#include "kernels/cuda/scratch.h"
#include "kernels/dispatch.h"
#include "kernels/gemm_problem.h"
#include "kernels/traffic.h"
#include "runtime/profile.h"

namespace gc::kernels {
namespace {

bool is_compute_float(DType d) { return d == DType::f32 || d == DType::bf16 || d == DType::f16; }

// Inputs are each f32/bf16/f16 with an output of those, or everything f64.
void require_gemm_dtypes(const char* op, std::initializer_list<std::pair<const char*, const Tensor*>> inputs,
                         const char* out_name, const Tensor& out, bool out_must_be_f32) {
  const bool f64 = out.dtype() == DType::f64;
  std::string names;
  for (auto& [name, t] : inputs) names += std::string(names.empty() ? "" : ", ") + name + " " + t->describe();
  for (auto& [name, t] : inputs)
    require(f64 ? t->dtype() == DType::f64 : is_compute_float(t->dtype()), op,
            std::string("dtypes must be f32/bf16/f16 each, or all f64; got ") + names + ", " + out_name + " " +
                out.describe());
  if (out_must_be_f32)
    require(f64 || out.dtype() == DType::f32, op,
            std::string(out_name) + " accumulates in f32 (or f64); got " + out.describe());
  else
    require(f64 || is_compute_float(out.dtype()), op,
            std::string(out_name) + " must be f32, bf16, f16 or f64; got " + out.describe());
}

// The [rows, features] view of a tensor [..., features].
struct Matrix {
  int64_t rows, cols;
};
Matrix as_matrix(const char* op, const char* name, const Tensor& t) {
  require(t.dim() >= 1, op, std::string(name) + " must have at least one dim; got " + t.describe());
  int64_t rows = 1;
  for (int64_t d = 0; d + 1 < t.dim(); ++d) rows *= t.size(d);
  return {rows, t.size(-1)};
}

Shape leading_dims_with(const Tensor& t, int64_t last) {
  Shape s = t.shape();
  s.back() = last;
  return s;
}

void require_workspace(const char* op, const Tensor& workspace, Device device, int64_t m, int64_t n, int64_t k) {
  const size_t need = gemm_workspace_bytes(device, m, n, k);
  const size_t have = workspace.defined() ? workspace.nbytes() : 0;
  require(have >= need, op,
          "workspace of " + std::to_string(have) + " bytes, need " + std::to_string(need) +
              " (gemm_workspace_bytes for m=" + std::to_string(m) + " n=" + std::to_string(n) +
              " k=" + std::to_string(k) + ")");
  if (workspace.defined())
    require(workspace.device() == device, op,
            "workspace on " + std::string(device_name(workspace.device())) + ", tensors on " + device_name(device));
}

bool g_tf32 = false;

// Hands a validated product to the device: meta does nothing, cpu runs our GEMM,
// cuda cuBLAS (which rejects the dtype mixes it cannot multiply).
void run(const char* op, Device device, GemmProblem& g, const Tensor& workspace) {
  if (device == Device::meta) return;
  void* ws = workspace.defined() && workspace.nbytes() > 0 ? workspace.data() : nullptr;
  const size_t ws_bytes = workspace.defined() ? workspace.nbytes() : 0;
  g.tf32 = g_tf32;
  try {
    if (device == Device::cuda)
      GC_CUDA_RUN(op, cuda::gemm(g, ws, ws_bytes));
    else
      cpu::gemm_cpu(g, ws, ws_bytes);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string(op) + ": " + e.what());
  }
}

// cuBLAS (and the k = 0 epilogue) read C only for a beta that is not 0 in C's compute type.
bool beta_reads_c(double beta, DType c) {
  return c == DType::f64 ? beta != 0.0 : static_cast<float>(beta) != 0.0f;
}

void* data_or_null(const Tensor& t) { return t.defined() && t.numel() > 0 ? t.data() : nullptr; }

}  // namespace

void set_tf32(bool enabled) { g_tf32 = enabled; }
bool tf32_enabled() { return g_tf32; }

size_t gemm_workspace_bytes(Device device, int64_t m, int64_t n, int64_t k) {
  if (m < 0 || n < 0 || k < 0)
    throw std::invalid_argument("gemm_workspace_bytes: negative size m=" + std::to_string(m) +
                                " n=" + std::to_string(n) + " k=" + std::to_string(k));
  // cuBLAS takes one fixed workspace whatever the product (kernels/cuda/linear.h);
  // a dry run reproduces the device it stands for (meta_target()).
  if (device == Device::meta) device = meta_target();
  if (device == Device::cuda) return cuda::kCublasWorkspaceBytes;
  return cpu::gemm_cpu_workspace_bytes(m, n, k);
}

size_t linear_workspace_bytes(Device device, int64_t rows, int64_t in_features, int64_t out_features) {
  return std::max({gemm_workspace_bytes(device, rows, out_features, in_features),
                   gemm_workspace_bytes(device, rows, in_features, out_features),
                   gemm_workspace_bytes(device, in_features, out_features, rows)});
}

void linear_forward(Tensor& y, const Tensor& x, const Tensor& W, const Tensor& b, Tensor& workspace) {
  const char* op = "linear_forward";
  require_defined(op, {{"y", &y}, {"x", &x}, {"W", &W}});
  const Matrix xm = as_matrix(op, "x", x);
  require(W.dim() == 2 && W.size(0) == xm.cols, op,
          "W must be [" + std::to_string(xm.cols) + ", N] for x " + x.describe() + "; got " + W.describe());
  const int64_t n = W.size(1);
  require(y.shape() == leading_dims_with(x, n), op,
          "y must have shape " + shape_string(leading_dims_with(x, n)) + "; got " + y.describe());
  require(!b.defined() || (b.dim() == 1 && b.size(0) == n), op,
          "b must be [" + std::to_string(n) + "] or undefined; got " + b.describe());
  require_gemm_dtypes(op, {{"x", &x}, {"W", &W}}, "y", y, false);
  if (b.defined()) require_gemm_dtypes(op, {{"b", &b}}, "y", y, false);
  require_same_device(op, x, {&y, &W, &b});
  require_workspace(op, workspace, x.device(), xm.rows, n, xm.cols);
  const OpScope scope(OpFamily::gemm, op, x.device(),
                      traffic::gemm(xm.rows, n, xm.cols, x.dtype(), W.dtype(), y.dtype(), false, b.defined(),
                                    b.defined() ? b.dtype() : y.dtype()));
  if (x.device() == Device::meta) return;
  GemmProblem g;
  g.m = xm.rows, g.n = n, g.k = xm.cols;
  g.a = data_or_null(x), g.a_dtype = x.dtype(), g.lda = xm.cols;
  g.b = data_or_null(W), g.b_dtype = W.dtype(), g.ldb = n;
  g.c = data_or_null(y), g.c_dtype = y.dtype(), g.ldc = n;
  if (b.defined()) g.bias = data_or_null(b), g.bias_dtype = b.dtype();
  run(op, x.device(), g, workspace);
}

namespace {

void backward_input(const char* op, Tensor& grad_x, const Tensor& grad_y, const Tensor& W, Tensor& workspace,
                    double beta) {
  require_defined(op, {{"grad_x", &grad_x}, {"grad_y", &grad_y}, {"W", &W}});
  const Matrix gy = as_matrix(op, "grad_y", grad_y);
  require(W.dim() == 2 && W.size(1) == gy.cols, op,
          "W must be [K, " + std::to_string(gy.cols) + "] for grad_y " + grad_y.describe() + "; got " + W.describe());
  const int64_t k = W.size(0);
  require(grad_x.shape() == leading_dims_with(grad_y, k), op,
          "grad_x must have shape " + shape_string(leading_dims_with(grad_y, k)) + "; got " + grad_x.describe());
  require_gemm_dtypes(op, {{"grad_y", &grad_y}, {"W", &W}}, "grad_x", grad_x, false);
  require_same_device(op, grad_y, {&grad_x, &W});
  require_workspace(op, workspace, grad_y.device(), gy.rows, k, gy.cols);
  const OpScope scope(OpFamily::gemm, op, grad_y.device(),
                      traffic::gemm(gy.rows, k, gy.cols, grad_y.dtype(), W.dtype(), grad_x.dtype(),
                                    beta_reads_c(beta, grad_x.dtype()), false, grad_x.dtype()));
  if (grad_y.device() == Device::meta) return;
  GemmProblem g;  // [R, N] x ([K, N] transposed)
  g.m = gy.rows, g.n = k, g.k = gy.cols;
  g.a = data_or_null(grad_y), g.a_dtype = grad_y.dtype(), g.lda = gy.cols;
  g.b = data_or_null(W), g.b_dtype = W.dtype(), g.ldb = gy.cols, g.transpose_b = true;
  g.c = data_or_null(grad_x), g.c_dtype = grad_x.dtype(), g.ldc = k;
  g.beta = beta;
  run(op, grad_y.device(), g, workspace);
}

}  // namespace

void linear_backward_input(Tensor& grad_x, const Tensor& grad_y, const Tensor& W, Tensor& workspace) {
  backward_input("linear_backward_input", grad_x, grad_y, W, workspace, 0.0);
}

void linear_backward_input_accumulate(Tensor& grad_x, const Tensor& grad_y, const Tensor& W, Tensor& workspace) {
  backward_input("linear_backward_input", grad_x, grad_y, W, workspace, 1.0);
}

bool accumulate_in_product(Device device) {
  if (device == Device::meta) device = meta_target();
  return device == Device::cuda;
}

namespace {

GemmProblem weight_problem(Tensor& grad_W, const Tensor& x, const Tensor& grad_y, const Matrix& xm, const Matrix& gy) {
  GemmProblem g;  // ([R, K] transposed) x [R, N], a reduction over the R rows
  g.m = xm.cols, g.n = gy.cols, g.k = xm.rows;
  g.a = data_or_null(x), g.a_dtype = x.dtype(), g.lda = xm.cols, g.transpose_a = true;
  g.b = data_or_null(grad_y), g.b_dtype = grad_y.dtype(), g.ldb = gy.cols;
  g.c = data_or_null(grad_W), g.c_dtype = grad_W.dtype(), g.ldc = gy.cols;
  g.beta = 1.0;
  return g;
}

void check_weight_operands(const char* op, Tensor& grad_W, const Tensor& x, const Tensor& grad_y, Tensor& workspace,
                           const Matrix& xm, const Matrix& gy) {
  require(x.dim() == grad_y.dim() && leading_dims_with(x, gy.cols) == grad_y.shape(), op,
          "x and grad_y must share their leading dims; got x " + x.describe() + ", grad_y " + grad_y.describe());
  require(grad_W.dim() == 2 && grad_W.size(0) == xm.cols && grad_W.size(1) == gy.cols, op,
          "grad_W must be [" + std::to_string(xm.cols) + ", " + std::to_string(gy.cols) + "]; got " +
              grad_W.describe());
  require_gemm_dtypes(op, {{"x", &x}, {"grad_y", &grad_y}}, "grad_W", grad_W, true);
  require_same_device(op, x, {&grad_W, &grad_y});
  require_workspace(op, workspace, x.device(), xm.cols, gy.cols, xm.rows);
}

}  // namespace

uint64_t bias_epilogue_fallbacks() {
#ifdef GC_CUDA
  return cuda::bias_epilogue_fallbacks();
#else
  return 0;
#endif
}

bool bias_gradient_folds(Device device) {
  if (device == Device::meta) device = meta_target();
  return device == Device::cuda;
}

bool bias_gradient_in_weight_product(Device device, DType grad_W_dtype) {
  if (device == Device::meta) device = meta_target();
  return device == Device::cuda && grad_W_dtype == DType::f32;
}

void linear_backward_weight(Tensor& grad_W, const Tensor& x, const Tensor& grad_y, Tensor& workspace) {
  const char* op = "linear_backward_weight";
  require_defined(op, {{"grad_W", &grad_W}, {"x", &x}, {"grad_y", &grad_y}});
  const Matrix xm = as_matrix(op, "x", x);
  const Matrix gy = as_matrix(op, "grad_y", grad_y);
  check_weight_operands(op, grad_W, x, grad_y, workspace, xm, gy);
  const OpScope scope(OpFamily::gemm, op, x.device(),
                      traffic::gemm(xm.cols, gy.cols, xm.rows, x.dtype(), grad_y.dtype(), grad_W.dtype(), true, false,
                                    grad_W.dtype()));
  if (x.device() == Device::meta) return;
  GemmProblem g = weight_problem(grad_W, x, grad_y, xm, gy);
  run(op, x.device(), g, workspace);
}

void linear_backward_weight_and_bias(Tensor& grad_W, Tensor& grad_b, const Tensor& x, const Tensor& grad_y,
                                     Tensor& workspace) {
  const char* op = "linear_backward_weight";
  require_defined(op, {{"grad_W", &grad_W}, {"grad_b", &grad_b}, {"x", &x}, {"grad_y", &grad_y}});
  const Matrix xm = as_matrix(op, "x", x);
  const Matrix gy = as_matrix(op, "grad_y", grad_y);
  check_weight_operands(op, grad_W, x, grad_y, workspace, xm, gy);
  require(grad_b.dim() == 1 && grad_b.size(0) == gy.cols && grad_b.dtype() == grad_W.dtype(), op,
          "grad_b must be [" + std::to_string(gy.cols) + "] of grad_W's dtype; got " + grad_b.describe());
  require_same_device(op, x, {&grad_b});
  // The product, then sum_rows (on cuda its partials in the workspace). cuBLASLt
  // could sum grad_y's rows in the product's own pass (CUBLASLT_EPILOGUE_BGRADA),
  // but on an H200 that product ran at a sixth of the plain product's rate
  // (graphcast-small, bf16: 37.8 ms a step against 6.6): a weight gradient's
  // [in, out] output is a few tiles and its k (the rows) is long, and the heuristic
  // offers no split-k under that epilogue, so the plain product is used.
  const OpScope scope(OpFamily::gemm, "linear_backward_weight_and_bias", x.device(),
                      traffic::gemm_with_bias_gradient(xm.cols, gy.cols, xm.rows, x.dtype(), grad_y.dtype(),
                                                       grad_W.dtype(), grad_b, grad_y));
  if (x.device() == Device::meta) return;
  GemmProblem g = weight_problem(grad_W, x, grad_y, xm, gy);
  if (x.device() == Device::cuda) {
    g.tf32 = tf32_enabled();
    run(op, x.device(), g, workspace);
    // The column sums' partials in the workspace: the product before them is done in stream order.
    const size_t scratch_bytes = cuda::sum_rows_scratch_bytes(gy.cols);
    const Tensor scratch = scratch_bytes ? workspace.slice_rows(0, static_cast<int64_t>((scratch_bytes + 3) / 4)) : Tensor();
    GC_CUDA_RUN(op, cuda::sum_rows(grad_b, grad_y, true, scratch));
    return;
  }
  run(op, x.device(), g, workspace);
  cpu::sum_rows(grad_b, grad_y, true);
}

void matmul(Tensor& out, const Tensor& a, bool transpose_a, const Tensor& b, bool transpose_b, double beta,
            Tensor& workspace) {
  const char* op = "matmul";
  require_defined(op, {{"out", &out}, {"a", &a}, {"b", &b}});
  require(a.dim() == 2 && b.dim() == 2 && out.dim() == 2, op,
          "a, b and out must be 2-D; got a " + a.describe() + ", b " + b.describe() + ", out " + out.describe());
  const int64_t m = transpose_a ? a.size(1) : a.size(0), k = transpose_a ? a.size(0) : a.size(1);
  const int64_t kb = transpose_b ? b.size(1) : b.size(0), n = transpose_b ? b.size(0) : b.size(1);
  require(k == kb, op,
          "inner dims differ: op(a) is [" + std::to_string(m) + ", " + std::to_string(k) + "], op(b) is [" +
              std::to_string(kb) + ", " + std::to_string(n) + "]");
  require(out.size(0) == m && out.size(1) == n, op,
          "out must be [" + std::to_string(m) + ", " + std::to_string(n) + "]; got " + out.describe());
  require_gemm_dtypes(op, {{"a", &a}, {"b", &b}}, "out", out, false);
  require(std::isfinite(beta), op, "beta must be finite; got " + std::to_string(beta));
  require_same_device(op, a, {&out, &b});
  require_workspace(op, workspace, a.device(), m, n, k);
  const OpScope scope(OpFamily::gemm, op, a.device(),
                      traffic::gemm(m, n, k, a.dtype(), b.dtype(), out.dtype(), beta_reads_c(beta, out.dtype()), false,
                                    out.dtype()));
  if (a.device() == Device::meta) return;
  GemmProblem g;
  g.m = m, g.n = n, g.k = k;
  g.a = data_or_null(a), g.a_dtype = a.dtype(), g.lda = a.size(1), g.transpose_a = transpose_a;
  g.b = data_or_null(b), g.b_dtype = b.dtype(), g.ldb = b.size(1), g.transpose_b = transpose_b;
  g.c = data_or_null(out), g.c_dtype = out.dtype(), g.ldc = n;
  g.beta = beta;
  run(op, a.device(), g, workspace);
}

}  // namespace gc::kernels
