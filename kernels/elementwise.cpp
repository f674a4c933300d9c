// elementwise.cpp: validation and device dispatch of kernels/elementwise.h.
//
// Every op checks its operands completely before looking at the device, so a dry
// run on meta rejects exactly what a real run would. On meta nothing else
// happens (outputs belong to the caller, and these ops need no temporaries),
// except that all_finite allocates the cuda kernel's flag on cuda and on meta
// standing for cuda alike (kernels/cuda/scratch.h), so the dry run requests what
// the real run requests. Empty tensors reach no kernel: nothing to compute.
#include "kernels/elementwise.h"

#include <initializer_list>
#include <string>

#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/reduce.h"
#include "kernels/cuda/backend.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/scratch.h"
#include "kernels/dispatch.h"
#include "kernels/traffic.h"
#include "runtime/profile.h"

namespace gc::kernels {
namespace {

void require_defined_float(const char* op, const char* name, const Tensor& t) {
  if (!t.defined()) fail(op, std::string(name) + " is undefined");
  if (!dtype_is_floating(t.dtype())) fail(op, std::string(name) + " must be a float tensor, got " + t.describe());
}

struct Operand {
  const char* name;
  const Tensor& tensor;
};

// Every operand defined and float, all on the first one's device, all with its numel.
void check_operands(const char* op, std::initializer_list<Operand> operands) {
  const Operand& first = *operands.begin();
  for (const Operand& operand : operands) {
    require_defined_float(op, operand.name, operand.tensor);
    if (operand.tensor.device() != first.tensor.device())
      fail(op, std::string(operand.name) + " is " + operand.tensor.describe() + " but " + first.name + " is " +
                   first.tensor.describe() + ": tensors on different devices");
    if (operand.tensor.numel() != first.tensor.numel())
      fail(op, std::string(operand.name) + " is " + operand.tensor.describe() + " but " + first.name + " is " +
                   first.tensor.describe() + ": element counts differ");
  }
}

void check_columns(const char* op, const char* name, const Tensor& t) {
  if (!t.defined()) fail(op, std::string(name) + " is undefined");
  if (t.dim() != 2) fail(op, std::string(name) + " must be 2-D [rows, columns], got " + t.describe());
}

// Shared by concat_cols and split_cols: whole [R, sum Ci] against parts [R, Ci].
void check_column_parts(const char* op, const Tensor& whole, const std::vector<Tensor>& parts) {
  check_columns(op, "the concatenated tensor", whole);
  if (parts.empty()) fail(op, "no parts");
  int64_t total_columns = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    const Tensor& part = parts[i];
    const std::string name = "part " + std::to_string(i);
    check_columns(op, name.c_str(), part);
    if (part.dtype() != whole.dtype() || part.device() != whole.device())
      fail(op, name + " is " + part.describe() + " but the concatenated tensor is " + whole.describe());
    if (part.size(0) != whole.size(0))
      fail(op, name + " has " + std::to_string(part.size(0)) + " rows, the concatenated tensor " +
                   whole.describe() + " has " + std::to_string(whole.size(0)));
    total_columns += part.size(1);
  }
  if (total_columns != whole.size(1))
    fail(op, "parts have " + std::to_string(total_columns) + " columns in all, the concatenated tensor " +
                 whole.describe() + " has " + std::to_string(whole.size(1)));
}

}  // namespace

void add_forward(Tensor& out, const Tensor& a, const Tensor& b) {
  check_operands("add_forward", {{"out", out}, {"a", a}, {"b", b}});
  if (out.numel() == 0) return;
  const OpScope scope(OpFamily::elementwise, "add_forward", out.device(), traffic::binary(out, a, b, 1));
  if (runs_on_cuda(out)) GC_CUDA_RUN("add_forward", cuda::add_forward(out, a, b));
  else if (runs_on_cpu(out)) cpu::add_forward(out, a, b);
}

void mul_forward(Tensor& out, const Tensor& a, const Tensor& b) {
  check_operands("mul_forward", {{"out", out}, {"a", a}, {"b", b}});
  if (out.numel() == 0) return;
  const OpScope scope(OpFamily::elementwise, "mul_forward", out.device(), traffic::binary(out, a, b, 1));
  if (runs_on_cuda(out)) GC_CUDA_RUN("mul_forward", cuda::mul_forward(out, a, b));
  else if (runs_on_cpu(out)) cpu::mul_forward(out, a, b);
}

void scale_forward(Tensor& out, const Tensor& x, double factor) {
  check_operands("scale_forward", {{"out", out}, {"x", x}});
  if (out.numel() == 0) return;
  const OpScope scope(OpFamily::elementwise, "scale_forward", out.device(), traffic::unary(out, x, 1));
  if (runs_on_cuda(out)) GC_CUDA_RUN("scale_forward", cuda::scale_forward(out, x, factor));
  else if (runs_on_cpu(out)) cpu::scale_forward(out, x, factor);
}

void accumulate(Tensor& acc, const Tensor& x) {
  check_operands("accumulate", {{"acc", acc}, {"x", x}});
  if (acc.numel() == 0) return;
  const OpScope scope(OpFamily::elementwise, "accumulate", acc.device(), traffic::accumulate(acc, x));
  if (runs_on_cuda(acc)) GC_CUDA_RUN("accumulate", cuda::accumulate(acc, x));
  else if (runs_on_cpu(acc)) cpu::accumulate(acc, x);
}

void scale_inplace(Tensor& x, double factor) {
  check_operands("scale_inplace", {{"x", x}});
  if (x.numel() == 0) return;
  const OpScope scope(OpFamily::elementwise, "scale_inplace", x.device(), traffic::unary(x, x, 1));
  if (runs_on_cuda(x)) GC_CUDA_RUN("scale_inplace", cuda::scale_inplace(x, factor));
  else if (runs_on_cpu(x)) cpu::scale_inplace(x, factor);
}

void fill(Tensor& x, double value) {
  check_operands("fill", {{"x", x}});
  if (x.numel() == 0) return;
  const OpScope scope(OpFamily::elementwise, "fill", x.device(), traffic::fill(x));
  if (runs_on_cuda(x)) GC_CUDA_RUN("fill", cuda::fill(x, value));
  else if (runs_on_cpu(x)) cpu::fill(x, value);
}

void silu_forward(Tensor& out, const Tensor& x) {
  check_operands("silu_forward", {{"out", out}, {"x", x}});
  if (out.numel() == 0) return;
  const OpScope scope(OpFamily::elementwise, "silu_forward", out.device(), traffic::unary(out, x, 5));
  if (runs_on_cuda(out)) GC_CUDA_RUN("silu_forward", cuda::silu_forward(out, x));
  else if (runs_on_cpu(out)) cpu::silu_forward(out, x);
}

void silu_backward(Tensor& grad_x, const Tensor& grad_out, const Tensor& x) {
  check_operands("silu_backward", {{"grad_x", grad_x}, {"grad_out", grad_out}, {"x", x}});
  if (grad_x.numel() == 0) return;
  const OpScope scope(OpFamily::elementwise, "silu_backward", grad_x.device(),
                      traffic::silu_backward(grad_x, grad_out, x));
  if (runs_on_cuda(grad_x)) GC_CUDA_RUN("silu_backward", cuda::silu_backward(grad_x, grad_out, x));
  else if (runs_on_cpu(grad_x)) cpu::silu_backward(grad_x, grad_out, x);
}

void silu_backward_bias(Tensor& grad_x, Tensor& grad_bias, const Tensor& grad_out, const Tensor& x) {
  const char* op = "silu_backward_bias";
  check_operands(op, {{"grad_x", grad_x}, {"grad_out", grad_out}, {"x", x}});
  check_columns(op, "x", x);
  for (const Tensor* t : {static_cast<const Tensor*>(&grad_x), &grad_out})
    if (t->dtype() != x.dtype() || t->shape() != x.shape())
      fail(op, "grad_x and grad_out must have x's dtype and shape " + x.describe() + ", got " + t->describe());
  const int64_t cols = x.size(1);
  const DType acc = accumulation_dtype(x.dtype());
  if (!grad_bias.defined() || grad_bias.dtype() != acc || grad_bias.numel() != cols ||
      grad_bias.device() != x.device())
    fail(op, std::string("grad_bias must be ") + dtype_name(acc) + " [" + std::to_string(cols) + "] on x's device " +
                 x.describe() + ", got " + (grad_bias.defined() ? grad_bias.describe() : std::string("undefined")));
  if (x.numel() == 0) return;
  const Tensor scratch = cuda::allocate_scratch(x.device(), cuda::sum_rows_scratch_bytes(cols));
  const OpScope scope(OpFamily::elementwise, op, x.device(), traffic::silu_backward_bias(grad_x, grad_bias, grad_out, x));
  if (runs_on_cuda(x)) {
    GC_CUDA_RUN(op, cuda::silu_backward_bias(grad_x, grad_bias, grad_out, x, scratch));
  } else if (runs_on_cpu(x)) {
    cpu::silu_backward(grad_x, grad_out, x);
    cpu::sum_rows(grad_bias, grad_x, true);
  }
}

void sigmoid_forward(Tensor& out, const Tensor& x) {
  check_operands("sigmoid_forward", {{"out", out}, {"x", x}});
  if (out.numel() == 0) return;
  const OpScope scope(OpFamily::elementwise, "sigmoid_forward", out.device(), traffic::unary(out, x, 4));
  if (runs_on_cuda(out)) GC_CUDA_RUN("sigmoid_forward", cuda::sigmoid_forward(out, x));
  else if (runs_on_cpu(out)) cpu::sigmoid_forward(out, x);
}

void sigmoid_backward(Tensor& grad_x, const Tensor& grad_out, const Tensor& y) {
  check_operands("sigmoid_backward", {{"grad_x", grad_x}, {"grad_out", grad_out}, {"y", y}});
  if (grad_x.numel() == 0) return;
  const OpScope scope(OpFamily::elementwise, "sigmoid_backward", grad_x.device(),
                      traffic::sigmoid_backward(grad_x, grad_out, y));
  if (runs_on_cuda(grad_x)) GC_CUDA_RUN("sigmoid_backward", cuda::sigmoid_backward(grad_x, grad_out, y));
  else if (runs_on_cpu(grad_x)) cpu::sigmoid_backward(grad_x, grad_out, y);
}

void cast(Tensor& out, const Tensor& x) {
  check_operands("cast", {{"out", out}, {"x", x}});
  if (out.numel() == 0) return;
  const OpScope scope(OpFamily::copy_cast, "cast", out.device(), traffic::unary(out, x, 0));
  if (runs_on_cuda(out)) GC_CUDA_RUN("cast", cuda::cast(out, x));
  else if (runs_on_cpu(out)) cpu::cast(out, x);
}

void concat_cols(Tensor& out, const std::vector<Tensor>& parts) {
  check_column_parts("concat_cols", out, parts);
  if (out.numel() == 0) return;
  const OpScope scope(OpFamily::copy_cast, "concat_cols", out.device(), traffic::column_copy(out, parts));
  if (runs_on_cuda(out)) GC_CUDA_RUN("concat_cols", cuda::concat_cols(out, parts));
  else if (runs_on_cpu(out)) cpu::concat_cols(out, parts);
}

void split_cols(std::vector<Tensor>& parts, const Tensor& x) {
  check_column_parts("split_cols", x, parts);
  if (x.numel() == 0) return;
  const OpScope scope(OpFamily::copy_cast, "split_cols", x.device(), traffic::column_copy(x, parts));
  if (runs_on_cuda(x)) GC_CUDA_RUN("split_cols", cuda::split_cols(parts, x));
  else if (runs_on_cpu(x)) cpu::split_cols(parts, x);
}

bool all_finite(const Tensor& x) {
  check_operands("all_finite", {{"x", x}});
  bool finite = true;  // a dry run has no values; it must take the same path as a clean real step
  const OpScope scope(OpFamily::reduce, "all_finite", x.device(), traffic::all_finite(x));
  const Tensor scratch = cuda::allocate_scratch(x.device(), cuda::all_finite_scratch_bytes(x.numel()));
  if (x.numel() == 0) return finite;
  if (runs_on_cuda(x)) GC_CUDA_RUN("all_finite", finite = cuda::all_finite(x, scratch));
  else if (runs_on_cpu(x)) finite = cpu::all_finite(x);
  return finite;
}

}  // namespace gc::kernels
