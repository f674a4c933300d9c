// cpu/reduce.cpp: sums over whole tensors and over rows, in the fixed order of
// cpu/reduce.h (bitwise the same result for any thread count).
//
// sum_rows cuts the rows into the same kReduceChunks chunks for every column:
// inside a chunk, blocks of kRowBlock rows are summed in sequence and the block
// sums pairwise; the chunk totals are then combined pairwise. Columns are taken
// kColumnGroup at a time so the partials live on the stack.
#include "kernels/cpu/reduce.h"

#include "kernels/cpu/dtype_dispatch.h"
#include "kernels/cpu/parallel.h"

namespace gc::kernels::cpu {
namespace {

constexpr int64_t kColumnGroup = 64;
constexpr int64_t kRowBlock = 16;

// PairwiseSum over vectors of up to kColumnGroup values.
template <class Acc>
class PairwiseVectorSum {
 public:
  void add(Acc* values, int64_t width) {  // values [width], used as scratch
    uint64_t carry = count_++;
    int level = 0;
    for (; carry & 1u; carry >>= 1, ++level)
      for (int64_t c = 0; c < width; ++c) values[c] = partial_[level][c] + values[c];
    for (int64_t c = 0; c < width; ++c) partial_[level][c] = values[c];
  }
  void total(Acc* out, int64_t width) const {  // out [width]
    for (int64_t c = 0; c < width; ++c) out[c] = 0;
    for (int level = 63; level >= 0; --level)
      if ((count_ >> level) & 1u)
        for (int64_t c = 0; c < width; ++c) out[c] += partial_[level][c];
  }

 private:
  Acc partial_[64][kColumnGroup];
  uint64_t count_ = 0;
};

template <class T>
void sum_rows_typed(Tensor& out, const Tensor& x, bool accumulate) {
  using Acc = compute_t<T>;
  const int64_t rows = x.size(0);
  const int64_t cols = x.size(1);
  const T* px = x.data_as<T>();    // [R, C]
  Acc* po = out.data_as<Acc>();    // [C]
  const int64_t rows_per_chunk = (rows + kReduceChunks - 1) / kReduceChunks;
  for (int64_t c0 = 0; c0 < cols; c0 += kColumnGroup) {
    const int64_t width = std::min(kColumnGroup, cols - c0);
    Acc chunk_total[kReduceChunks][kColumnGroup];
#pragma omp parallel for schedule(static) if (rows * width >= kParallelMinElements)
    for (int64_t chunk = 0; chunk < kReduceChunks; ++chunk) {
      const int64_t begin = std::min(rows, chunk * rows_per_chunk);
      const int64_t end = std::min(rows, begin + rows_per_chunk);
      PairwiseVectorSum<Acc> chunk_sum;
      for (int64_t r0 = begin; r0 < end; r0 += kRowBlock) {
        Acc block[kColumnGroup] = {};
        for (int64_t r = r0; r < std::min(end, r0 + kRowBlock); ++r) {
          const T* row = px + r * cols + c0;
          for (int64_t c = 0; c < width; ++c) block[c] += static_cast<Acc>(to_compute(row[c]));
        }
        chunk_sum.add(block, width);
      }
      chunk_sum.total(chunk_total[chunk], width);
    }
    PairwiseVectorSum<Acc> sum;
    for (int64_t chunk = 0; chunk < kReduceChunks; ++chunk) sum.add(chunk_total[chunk], width);
    Acc column_total[kColumnGroup];
    sum.total(column_total, width);
    for (int64_t c = 0; c < width; ++c) po[c0 + c] = accumulate ? po[c0 + c] + column_total[c] : column_total[c];
  }
}

// Writes the fixed-order sum of term(x[i]) into out[slot].
template <class Term>
void reduce_all(Tensor& out, int64_t slot, const Tensor& x, const Term& term) {
  visit_float_dtype(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    using Acc = compute_t<T>;
    const T* px = x.data_as<T>();  // [n]
    const int64_t n = x.numel();
    out.data_as<Acc>()[slot] = fixed_order_sum_elements<Acc>(
        n, [=](int64_t i) { return term(static_cast<Acc>(to_compute(px[i]))); }, n >= kParallelMinElements);
  });
}

constexpr auto kSquare = [](auto v) { return v * v; };

}  // namespace

void sum_all(Tensor& out, const Tensor& x) {
  reduce_all(out, 0, x, [](auto v) { return v; });
}

void mean_all(Tensor& out, const Tensor& x) {
  sum_all(out, x);
  if (out.dtype() == DType::f64)
    out.data_as<double>()[0] /= static_cast<double>(x.numel());
  else
    out.data_as<float>()[0] /= static_cast<float>(x.numel());
}

void sum_squares(Tensor& out, const Tensor& x) { reduce_all(out, 0, x, kSquare); }

// One tensor after another, each in sum_squares's order (its parallel loop inside).
void sum_squares_many(Tensor& out, const std::vector<Tensor>& xs) {
  for (size_t k = 0; k < xs.size(); ++k) reduce_all(out, static_cast<int64_t>(k), xs[k], kSquare);
}

void sum_rows(Tensor& out, const Tensor& x, bool accumulate) {
  visit_float_dtype(x.dtype(), [&](auto tag) { sum_rows_typed<decltype(tag)>(out, x, accumulate); });
}

}  // namespace gc::kernels::cpu
