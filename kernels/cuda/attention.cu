// kernels/cuda/attention.cu: the softmax-weighted sum over a receiver's edges on
// the gpu, mirroring kernels/cpu/attention.cpp step for step: the statistics of
// a (receiver, head) pair by one thread, then each output element (forward: a
// node channel; backward: a value-gradient channel of the receiver's edges) by
// one thread, over the receiver's edges in CSR order. No atomics: repeatable
// bits; they differ from the cpu's only through exp and log.
#include "kernels/cuda/attention.h"

#include "kernels/cuda/common.h"

namespace gc::cuda {
namespace {

__device__ __forceinline__ float log_compute(float v) { return logf(v); }
__device__ __forceinline__ double log_compute(double v) { return log(v); }

// logsumexp[n, h] over the receiver's edges (-inf without edges).
template <class T>
__global__ void logsumexp_kernel(compute_t<T>* logsumexp,  // [N, H]
                                 const T* scores,          // [E, H]
                                 const int32_t* offsets,   // [N + 1]
                                 int64_t nodes, int64_t heads) {
  using Acc = compute_t<T>;
  for (int64_t i = global_thread(); i < nodes * heads; i += total_threads()) {
    const int64_t n = i / heads, h = i % heads;
    const int64_t begin = offsets[n], end = offsets[n + 1];
    Acc max_score = -INFINITY;
    for (int64_t e = begin; e < end; ++e) max_score = fmax(max_score, static_cast<Acc>(load_value(scores[e * heads + h])));
    Acc total = 0;
    for (int64_t e = begin; e < end; ++e) total += exp_compute(static_cast<Acc>(load_value(scores[e * heads + h])) - max_score);
    logsumexp[i] = end > begin ? max_score + log_compute(total) : Acc(-INFINITY);
  }
}

// out[n, c] = sum_e exp(s[e, h(c)] - lse[n, h(c)]) values[e, c].
template <class T>
__global__ void weighted_sum_kernel(T* out,                          // [N, C]
                                    const compute_t<T>* logsumexp,   // [N, H]
                                    const T* scores,                 // [E, H]
                                    const T* values,                 // [E, C]
                                    const int32_t* offsets,          // [N + 1]
                                    int64_t nodes, int64_t heads, int64_t cols) {
  using Acc = compute_t<T>;
  const int64_t width = cols / heads;
  for (int64_t i = global_thread(); i < nodes * cols; i += total_threads()) {
    const int64_t n = i / cols, c = i % cols, h = c / width;
    const Acc lse = logsumexp[n * heads + h];
    Acc acc = 0;
    for (int64_t e = offsets[n]; e < offsets[n + 1]; ++e)
      acc += exp_compute(static_cast<Acc>(load_value(scores[e * heads + h])) - lse) *
             static_cast<Acc>(load_value(values[e * cols + c]));
    out[i] = to_storage<T>(acc);
  }
}

// grad_scores[e, h] = a_e (d_e - sum_e' a_e' d_e') for the edges of receiver n.
template <class T>
__global__ void score_gradient_kernel(T* grad_scores,                 // [E, H]
                                      const T* grad_out,              // [N, C]
                                      const T* scores,                // [E, H]
                                      const T* values,                // [E, C]
                                      const compute_t<T>* logsumexp,  // [N, H]
                                      const int32_t* offsets,         // [N + 1]
                                      int64_t nodes, int64_t heads, int64_t cols) {
  using Acc = compute_t<T>;
  const int64_t width = cols / heads;
  for (int64_t i = global_thread(); i < nodes * heads; i += total_threads()) {
    const int64_t n = i / heads, h = i % heads, c0 = h * width;
    const int64_t begin = offsets[n], end = offsets[n + 1];
    const Acc lse = logsumexp[i];
    Acc delta = 0;
    for (int64_t e = begin; e < end; ++e) {
      Acc d = 0;
      for (int64_t c = c0; c < c0 + width; ++c)
        d += static_cast<Acc>(load_value(grad_out[n * cols + c])) * static_cast<Acc>(load_value(values[e * cols + c]));
      delta += exp_compute(static_cast<Acc>(load_value(scores[e * heads + h])) - lse) * d;
    }
    for (int64_t e = begin; e < end; ++e) {
      Acc d = 0;
      for (int64_t c = c0; c < c0 + width; ++c)
        d += static_cast<Acc>(load_value(grad_out[n * cols + c])) * static_cast<Acc>(load_value(values[e * cols + c]));
      const Acc a = exp_compute(static_cast<Acc>(load_value(scores[e * heads + h])) - lse);
      grad_scores[e * heads + h] = to_storage<T>(a * (d - delta));
    }
  }
}

// grad_values[e, c] = a_e grad_out[n, c] for the edges of receiver n.
template <class T>
__global__ void value_gradient_kernel(T* grad_values,                 // [E, C]
                                      const T* grad_out,              // [N, C]
                                      const T* scores,                // [E, H]
                                      const compute_t<T>* logsumexp,  // [N, H]
                                      const int32_t* offsets,         // [N + 1]
                                      int64_t nodes, int64_t heads, int64_t cols) {
  using Acc = compute_t<T>;
  const int64_t width = cols / heads;
  for (int64_t i = global_thread(); i < nodes * cols; i += total_threads()) {
    const int64_t n = i / cols, c = i % cols, h = c / width;
    const Acc lse = logsumexp[n * heads + h];
    const Acc g = static_cast<Acc>(load_value(grad_out[i]));
    for (int64_t e = offsets[n]; e < offsets[n + 1]; ++e)
      grad_values[e * cols + c] = to_storage<T>(exp_compute(static_cast<Acc>(load_value(scores[e * heads + h])) - lse) * g);
  }
}

}  // namespace

void segment_softmax_sum_forward(Tensor& out, Tensor& logsumexp, const Tensor& scores, const Tensor& values,
                                 const Tensor& offsets) {
  const char* op = "segment_softmax_sum_forward";
  require_on_cuda(op, {&out, &logsumexp, &scores, &values, &offsets});
  const int64_t nodes = out.size(0), heads = scores.size(1), cols = values.size(1);
  if (nodes == 0) return;
  visit_float_dtype(op, values.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* s = scores.numel() ? scores.data_as<T>() : nullptr;
    const T* v = values.numel() ? values.data_as<T>() : nullptr;
    auto* lse = logsumexp.data_as<compute_t<T>>();
    logsumexp_kernel<T><<<element_blocks(nodes * heads), kThreadsPerBlock>>>(lse, s, offsets.data_as<int32_t>(),
                                                                             nodes, heads);
    GC_CUDA_CHECK(cudaGetLastError());
    if (cols == 0) return;
    weighted_sum_kernel<T><<<element_blocks(nodes * cols), kThreadsPerBlock>>>(
        out.data_as<T>(), lse, s, v, offsets.data_as<int32_t>(), nodes, heads, cols);
    GC_CUDA_CHECK(cudaGetLastError());
  });
}

void segment_softmax_sum_backward(Tensor& grad_scores, Tensor& grad_values, const Tensor& grad_out,
                                  const Tensor& scores, const Tensor& values, const Tensor& logsumexp,
                                  const Tensor& offsets) {
  const char* op = "segment_softmax_sum_backward";
  require_on_cuda(op, {&grad_scores, &grad_values, &grad_out, &scores, &values, &logsumexp, &offsets});
  const int64_t nodes = grad_out.size(0), heads = scores.size(1), cols = values.size(1);
  if (scores.size(0) == 0 || nodes == 0) return;
  visit_float_dtype(op, values.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* go = cols ? grad_out.data_as<T>() : nullptr;
    const T* v = cols ? values.data_as<T>() : nullptr;
    const auto* lse = logsumexp.data_as<compute_t<T>>();
    score_gradient_kernel<T><<<element_blocks(nodes * heads), kThreadsPerBlock>>>(
        grad_scores.data_as<T>(), go, scores.data_as<T>(), v, lse, offsets.data_as<int32_t>(), nodes, heads, cols);
    GC_CUDA_CHECK(cudaGetLastError());
    if (cols == 0) return;
    value_gradient_kernel<T><<<element_blocks(nodes * cols), kThreadsPerBlock>>>(
        grad_values.data_as<T>(), go, scores.data_as<T>(), lse, offsets.data_as<int32_t>(), nodes, heads, cols);
    GC_CUDA_CHECK(cudaGetLastError());
  });
}

}  // namespace gc::cuda
