// kernels/cpu/attention.cpp: the softmax-weighted sum over a receiver's edges.
//
// One task per (receiver, head) computes everything of that pair: its maximum,
// its log-sum-exp and its C / H output channels (backward: its edges' score
// gradients and value gradients), over the receiver's edges in CSR order. Tasks
// never share an output element, so the bits do not depend on the thread count.
// The cuda kernels (kernels/cuda/attention.cu) take the same steps in the same order.
#include "kernels/cpu/attention.h"

#include <cmath>
#include <limits>

#include "kernels/cpu/dtype_dispatch.h"
#include "kernels/cpu/parallel.h"

namespace gc::kernels::cpu {
namespace {

template <class T>
void forward_impl(T* out,                      // [N, C]
                  compute_t<T>* logsumexp,     // [N, H]
                  const T* scores,             // [E, H]
                  const T* values,             // [E, C]
                  const int32_t* offsets,      // [N + 1]
                  int64_t nodes, int64_t heads, int64_t cols) {
  using Acc = compute_t<T>;
  const int64_t width = cols / heads;
  const int64_t tasks = nodes * heads;
#pragma omp parallel for schedule(dynamic, 16) if ((offsets[nodes] + nodes) * cols >= kParallelMinElements)
  for (int64_t task = 0; task < tasks; ++task) {
    const int64_t n = task / heads, h = task % heads;
    const int64_t begin = offsets[n], end = offsets[n + 1];
    Acc max_score = -std::numeric_limits<Acc>::infinity();
    for (int64_t e = begin; e < end; ++e) max_score = std::max(max_score, static_cast<Acc>(to_compute(scores[e * heads + h])));
    Acc total = 0;
    for (int64_t e = begin; e < end; ++e) total += std::exp(static_cast<Acc>(to_compute(scores[e * heads + h])) - max_score);
    const Acc lse = end > begin ? max_score + std::log(total) : -std::numeric_limits<Acc>::infinity();
    logsumexp[n * heads + h] = lse;
    for (int64_t c = h * width; c < (h + 1) * width; ++c) {
      Acc acc = 0;
      for (int64_t e = begin; e < end; ++e)
        acc += std::exp(static_cast<Acc>(to_compute(scores[e * heads + h])) - lse) *
               static_cast<Acc>(to_compute(values[e * cols + c]));
      out[n * cols + c] = to_storage<T>(acc);
    }
  }
}

template <class T>
void backward_impl(T* grad_scores,                 // [E, H]
                   T* grad_values,                 // [E, C]
                   const T* grad_out,              // [N, C]
                   const T* scores,                // [E, H]
                   const T* values,                // [E, C]
                   const compute_t<T>* logsumexp,  // [N, H]
                   const int32_t* offsets,         // [N + 1]
                   int64_t nodes, int64_t heads, int64_t cols) {
  using Acc = compute_t<T>;
  const int64_t width = cols / heads;
  const int64_t tasks = nodes * heads;
#pragma omp parallel for schedule(dynamic, 16) if ((offsets[nodes] + nodes) * cols >= kParallelMinElements)
  for (int64_t task = 0; task < tasks; ++task) {
    const int64_t n = task / heads, h = task % heads;
    const int64_t begin = offsets[n], end = offsets[n + 1];
    const Acc lse = logsumexp[n * heads + h];
    const int64_t c0 = h * width;
    auto dot = [&](int64_t e) {  // grad_out[n, head] . values[e, head]
      Acc d = 0;
      for (int64_t c = c0; c < c0 + width; ++c)
        d += static_cast<Acc>(to_compute(grad_out[n * cols + c])) * static_cast<Acc>(to_compute(values[e * cols + c]));
      return d;
    };
    Acc delta = 0;  // sum_e a_e d_e = grad_out[n, head] . out[n, head]
    for (int64_t e = begin; e < end; ++e)
      delta += std::exp(static_cast<Acc>(to_compute(scores[e * heads + h])) - lse) * dot(e);
    for (int64_t e = begin; e < end; ++e) {
      const Acc a = std::exp(static_cast<Acc>(to_compute(scores[e * heads + h])) - lse);
      grad_scores[e * heads + h] = to_storage<T>(a * (dot(e) - delta));
      for (int64_t c = c0; c < c0 + width; ++c)
        grad_values[e * cols + c] = to_storage<T>(a * static_cast<Acc>(to_compute(grad_out[n * cols + c])));
    }
  }
}

}  // namespace

void segment_softmax_sum_forward(Tensor& out, Tensor& logsumexp, const Tensor& scores, const Tensor& values,
                                 const Tensor& offsets) {
  const int64_t nodes = out.size(0), heads = scores.size(1), cols = values.size(1);
  if (nodes == 0) return;
  visit_float_dtype(values.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* s = scores.numel() ? scores.data_as<T>() : nullptr;
    const T* v = values.numel() ? values.data_as<T>() : nullptr;
    forward_impl<T>(cols ? out.data_as<T>() : nullptr, logsumexp.data_as<compute_t<T>>(), s, v,
                    offsets.data_as<int32_t>(), nodes, heads, cols);
  });
}

void segment_softmax_sum_backward(Tensor& grad_scores, Tensor& grad_values, const Tensor& grad_out,
                                  const Tensor& scores, const Tensor& values, const Tensor& logsumexp,
                                  const Tensor& offsets) {
  const int64_t nodes = grad_out.size(0), heads = scores.size(1), cols = values.size(1);
  if (scores.size(0) == 0 || nodes == 0) return;
  visit_float_dtype(values.dtype(), [&](auto tag) {
    using T = decltype(tag);
    backward_impl<T>(grad_scores.data_as<T>(), cols ? grad_values.data_as<T>() : nullptr,
                     cols ? grad_out.data_as<T>() : nullptr, scores.data_as<T>(),
                     cols ? values.data_as<T>() : nullptr, logsumexp.data_as<compute_t<T>>(),
                     offsets.data_as<int32_t>(), nodes, heads, cols);
  });
}

}  // namespace gc::kernels::cpu
