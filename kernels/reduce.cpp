// reduce.cpp: validation and device dispatch of kernels/reduce.h.
//
// The output dtype is part of the contract: f32 for f32/bf16/f16 inputs, f64 for
// f64, so a reduction never rounds through a 16-bit type. An empty x sums to 0.
// The cuda kernels' partial sums come from a scratch tensor allocated here, on
// cuda and on meta standing for cuda alike (kernels/cuda/scratch.h), so a dry run
// requests what the real run requests.
#include "kernels/reduce.h"

#include <string>

#include "kernels/cpu/reduce.h"
#include "kernels/cuda/backend.h"
#include "kernels/cuda/reduce.h"
#include "kernels/cuda/scratch.h"
#include "kernels/dispatch.h"
#include "kernels/traffic.h"
#include "runtime/profile.h"

namespace gc::kernels {
namespace {

// x float; out defined on x's device with the reduction dtype and `out_numel` elements.
void check_reduction(const char* op, const Tensor& out, const Tensor& x, int64_t out_numel) {
  if (!x.defined()) fail(op, "x is undefined");
  if (!dtype_is_floating(x.dtype())) fail(op, "x must be a float tensor, got " + x.describe());
  if (!out.defined()) fail(op, "out is undefined");
  if (out.device() != x.device())
    fail(op, "out is " + out.describe() + " but x is " + x.describe() + ": tensors on different devices");
  const DType expected = accumulation_dtype(x.dtype());
  if (out.dtype() != expected)
    fail(op, std::string("out must be ") + dtype_name(expected) + " for x " + x.describe() + ", got " +
                 out.describe());
  if (out.numel() != out_numel)
    fail(op, "out must have " + std::to_string(out_numel) + " elements for x " + x.describe() + ", got " +
                 out.describe());
}

}  // namespace

void sum_all(Tensor& out, const Tensor& x) {
  check_reduction("sum_all", out, x, 1);
  const Tensor scratch = cuda::allocate_scratch(x.device(), cuda::whole_sum_scratch_bytes());
  const OpScope scope(OpFamily::reduce, "sum_all", x.device(), traffic::whole_sum(x, 1));
  if (runs_on_cuda(x)) GC_CUDA_RUN("sum_all", cuda::sum_all(out, x, scratch));
  else if (runs_on_cpu(x)) cpu::sum_all(out, x);
}

void mean_all(Tensor& out, const Tensor& x) {
  check_reduction("mean_all", out, x, 1);
  if (x.numel() == 0) fail("mean_all", "the mean of an empty tensor " + x.describe() + " is undefined");
  const Tensor scratch = cuda::allocate_scratch(x.device(), cuda::whole_sum_scratch_bytes());
  const OpScope scope(OpFamily::reduce, "mean_all", x.device(), traffic::whole_sum(x, 1));
  if (runs_on_cuda(x)) GC_CUDA_RUN("mean_all", cuda::mean_all(out, x, scratch));
  else if (runs_on_cpu(x)) cpu::mean_all(out, x);
}

void sum_rows(Tensor& out, const Tensor& x, bool accumulate) {
  if (x.defined() && x.dim() != 2) fail("sum_rows", "x must be 2-D [rows, columns], got " + x.describe());
  check_reduction("sum_rows", out, x, x.defined() ? x.size(1) : 0);
  if (out.numel() == 0) return;
  const Tensor scratch = cuda::allocate_scratch(x.device(), cuda::sum_rows_scratch_bytes(x.size(1)));
  const OpScope scope(OpFamily::reduce, "sum_rows", x.device(), traffic::sum_rows(out, x, accumulate));
  if (runs_on_cuda(x)) GC_CUDA_RUN("sum_rows", cuda::sum_rows(out, x, accumulate, scratch));
  else if (runs_on_cpu(x)) cpu::sum_rows(out, x, accumulate);
}

void sum_squares(Tensor& out, const Tensor& x) {
  check_reduction("sum_squares", out, x, 1);
  const Tensor scratch = cuda::allocate_scratch(x.device(), cuda::whole_sum_scratch_bytes());
  const OpScope scope(OpFamily::reduce, "sum_squares", x.device(), traffic::whole_sum(x, 2));
  if (runs_on_cuda(x)) GC_CUDA_RUN("sum_squares", cuda::sum_squares(out, x, scratch));
  else if (runs_on_cpu(x)) cpu::sum_squares(out, x);
}

void sum_squares_many(Tensor& out, const std::vector<Tensor>& xs) {
  const char* op = "sum_squares_many";
  if (!out.defined()) fail(op, "out is undefined");
  const int64_t count = static_cast<int64_t>(xs.size());
  if (out.dim() != 1 || out.size(0) != count)
    fail(op, "out must be [" + std::to_string(count) + "] for " + std::to_string(count) + " tensors, got " +
                 out.describe());
  for (size_t k = 0; k < xs.size(); ++k) {
    const Tensor& x = xs[k];
    const std::string which = "xs[" + std::to_string(k) + "]";
    if (!x.defined()) fail(op, which + " is undefined");
    if (!dtype_is_floating(x.dtype())) fail(op, which + " must be a float tensor, got " + x.describe());
    if (x.device() != out.device())
      fail(op, "out is " + out.describe() + " but " + which + " is " + x.describe() + ": tensors on different devices");
    const DType expected = accumulation_dtype(x.dtype());
    if (out.dtype() != expected)
      fail(op, std::string("out must be ") + dtype_name(expected) + " for " + which + " " + x.describe() + ", got " +
                   out.describe());
  }
  const Tensor scratch = cuda::allocate_scratch(out.device(), cuda::whole_sums_scratch_bytes(count));
  const OpScope scope(OpFamily::reduce, "sum_squares_many", out.device(), traffic::sum_squares_many(xs));
  if (runs_on_cuda(out)) GC_CUDA_RUN("sum_squares_many", cuda::sum_squares_many(out, xs, scratch));
  else if (runs_on_cpu(out)) cpu::sum_squares_many(out, xs);
}

}  // namespace gc::kernels
