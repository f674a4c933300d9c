// kernels/attention.cpp: validation and device dispatch of kernels/attention.h.
// Every check runs on every device, meta included (a dry run rejects what a
// real run rejects); offsets are checked on their device before a row is read,
// with the index check's scratch on cuda (and on meta standing for cuda).
#include "kernels/attention.h"

#include <string>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/index.h"
#include "kernels/cuda/attention.h"
#include "kernels/cuda/backend.h"
#include "kernels/cuda/index.h"
#include "kernels/cuda/scratch.h"
#include "kernels/dispatch.h"
#include "kernels/index.h"
#include "kernels/traffic.h"
#include "runtime/profile.h"

namespace gc::kernels {
namespace {

void require_matrix(const char* op, const char* name, const Tensor& t, int64_t rows, int64_t cols, DType dtype) {
  require(t.defined() && t.dim() == 2 && t.size(0) == rows && t.size(1) == cols && t.dtype() == dtype, op,
          std::string(name) + " must be " + dtype_name(dtype) + "[" + std::to_string(rows) + ", " +
              std::to_string(cols) + "]; got " + (t.defined() ? t.describe() : std::string("an undefined tensor")));
}

// The checks both directions share; returns {edges, nodes}.
std::pair<int64_t, int64_t> check_attention(const char* op, const Tensor& scores, const Tensor& values,
                                            const Tensor& offsets) {
  require_defined(op, {{"scores", &scores}, {"values", &values}, {"offsets", &offsets}});
  require(scores.dim() == 2 && dtype_is_floating(scores.dtype()), op,
          "scores must be a float tensor [E, H]; got " + scores.describe());
  const int64_t edges = scores.size(0), heads = scores.size(1);
  require(heads >= 1, op, "scores need at least one head column; got " + scores.describe());
  require(values.dim() == 2 && values.size(0) == edges && values.dtype() == scores.dtype(), op,
          "values must be " + std::string(dtype_name(scores.dtype())) + "[" + std::to_string(edges) +
              ", C] like scores " + scores.describe() + "; got " + values.describe());
  require(values.size(1) % heads == 0, op,
          "values' " + std::to_string(values.size(1)) + " channels must split into the " + std::to_string(heads) +
              " heads of scores");
  require(edges <= 2147483647, op, "edge count " + std::to_string(edges) + " does not fit the i32 offsets");
  require(offsets.dtype() == DType::i32 && offsets.dim() == 1 && offsets.numel() >= 1, op,
          "offsets must be i32[N + 1]; got " + offsets.describe());
  require_same_device(op, scores, {&values, &offsets});
  return {edges, offsets.numel() - 1};
}

}  // namespace

void segment_softmax_sum_forward(Tensor& out, Tensor& logsumexp, const Tensor& scores, const Tensor& values,
                                 const Tensor& offsets) {
  const char* op = "segment_softmax_sum_forward";
  const auto [edges, nodes] = check_attention(op, scores, values, offsets);
  require_matrix(op, "out", out, nodes, values.size(1), values.dtype());
  require_matrix(op, "logsumexp", logsumexp, nodes, scores.size(1), accumulation_dtype(scores.dtype()));
  require_same_device(op, scores, {&out, &logsumexp});
  if (!offsets_checked(offsets, edges)) {
    const Tensor scratch = cuda::allocate_scratch(out.device(), cuda::index_check_scratch_bytes());
    const OpScope scope(OpFamily::index_check, op, out.device(), traffic::check_offsets(offsets));
    if (runs_on_cuda(out)) GC_CUDA_RUN(op, cuda::check_offsets(offsets, edges, op, scratch));
    else if (runs_on_cpu(out)) cpu::check_offsets(offsets, edges, op);
  }
  const OpScope scope(OpFamily::segment_sum, op, out.device(),
                      traffic::segment_softmax_sum_forward(out, logsumexp, scores, values, offsets));
  if (runs_on_cuda(out)) GC_CUDA_RUN(op, cuda::segment_softmax_sum_forward(out, logsumexp, scores, values, offsets));
  else if (runs_on_cpu(out)) cpu::segment_softmax_sum_forward(out, logsumexp, scores, values, offsets);
}

void segment_softmax_sum_backward(Tensor& grad_scores, Tensor& grad_values, const Tensor& grad_out,
                                  const Tensor& scores, const Tensor& values, const Tensor& logsumexp,
                                  const Tensor& offsets) {
  const char* op = "segment_softmax_sum_backward";
  const auto [edges, nodes] = check_attention(op, scores, values, offsets);
  require_matrix(op, "grad_out", grad_out, nodes, values.size(1), values.dtype());
  require_matrix(op, "logsumexp", logsumexp, nodes, scores.size(1), accumulation_dtype(scores.dtype()));
  require_matrix(op, "grad_scores", grad_scores, edges, scores.size(1), scores.dtype());
  require_matrix(op, "grad_values", grad_values, edges, values.size(1), values.dtype());
  require_same_device(op, scores, {&grad_out, &logsumexp, &grad_scores, &grad_values});
  if (!offsets_checked(offsets, edges)) {
    const Tensor scratch = cuda::allocate_scratch(grad_values.device(), cuda::index_check_scratch_bytes());
    const OpScope scope(OpFamily::index_check, op, grad_values.device(), traffic::check_offsets(offsets));
    if (runs_on_cuda(grad_values)) GC_CUDA_RUN(op, cuda::check_offsets(offsets, edges, op, scratch));
    else if (runs_on_cpu(grad_values)) cpu::check_offsets(offsets, edges, op);
  }
  const OpScope scope(OpFamily::segment_sum, op, grad_values.device(),
                      traffic::segment_softmax_sum_backward(grad_out, scores, values, logsumexp, offsets));
  if (runs_on_cuda(grad_values))
    GC_CUDA_RUN(op, cuda::segment_softmax_sum_backward(grad_scores, grad_values, grad_out, scores, values,
                                                        logsumexp, offsets));
  else if (runs_on_cpu(grad_values))
    cpu::segment_softmax_sum_backward(grad_scores, grad_values, grad_out, scores, values, logsumexp, offsets);
}

}  // namespace gc::kernels
