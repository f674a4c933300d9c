// kernels/cuda/reduce.cu: sums over whole tensors and over rows on the gpu, in
// the fixed orders of reduce_common.h (whole tensors) and column_sums.h (rows):
// no atomics, so the bits depend on the shapes alone. Their partials live in the
// caller's scratch (scratch.h), never in device memory of this file.
#include "kernels/cuda/reduce.h"

#include <algorithm>
#include <vector>

#include "kernels/cuda/column_sums.h"
#include "kernels/cuda/common.h"
#include "kernels/cuda/reduce_common.h"
#include "kernels/cuda/scratch.h"

namespace gc::cuda {
namespace {

template <class T, class Acc>
struct ValueItem {
  const T* x;  // [n]
  __device__ Acc operator()(int64_t i) const { return static_cast<Acc>(load_value(x[i])); }
};

template <class T, class Acc>
struct SquareItem {
  const T* x;  // [n]
  __device__ Acc operator()(int64_t i) const {
    const Acc v = static_cast<Acc>(load_value(x[i]));
    return v * v;
  }
};

template <class T, class Acc>
struct RowValueTerm {
  const T* x;  // [R, C]
  int64_t cols;
  __device__ void operator()(int64_t r, int64_t c, Acc (&terms)[1]) const {
    terms[0] = static_cast<Acc>(load_value(x[r * cols + c]));
  }
};

template <class Acc>
struct StoreColumnTotal {
  Acc* out;  // [C]
  bool accumulate;
  __device__ void operator()(int64_t c, const Acc (&totals)[1]) const {
    out[c] = accumulate ? out[c] + totals[0] : totals[0];
  }
};

// out [1] = (sum of Item over x) / divisor.
template <template <class, class> class Item>
void launch_whole_sum(const char* op, Tensor& out, const Tensor& x, double divisor, const Tensor& scratch) {
  require_on_cuda(op, {&out, &x});
  require_scratch(op, scratch, whole_sum_scratch_bytes());
  visit_float_dtype(op, x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    using Acc = compute_t<T>;
    const T* data = x.numel() ? x.data_as<T>() : nullptr;
    launch_fixed_order_sum<Acc>(scratch, x.numel(), Item<T, Acc>{data},
                                StoreQuotient<Acc>{out.data_as<Acc>(), static_cast<Acc>(divisor)});
  });
}

}  // namespace

void sum_all(Tensor& out, const Tensor& x, const Tensor& scratch) {
  launch_whole_sum<ValueItem>("sum_all", out, x, 1.0, scratch);
}

void mean_all(Tensor& out, const Tensor& x, const Tensor& scratch) {
  launch_whole_sum<ValueItem>("mean_all", out, x, static_cast<double>(x.numel()), scratch);
}

void sum_squares(Tensor& out, const Tensor& x, const Tensor& scratch) {
  launch_whole_sum<SquareItem>("sum_squares", out, x, 1.0, scratch);
}

// Tensors of one dtype run together (their item type is the kernel's), in the
// order their dtype first appears, kSumsPerLaunch at a time; every launch reuses
// the scratch's first rows (one stream: its partials are written after the
// previous launch's finish has read them).
void sum_squares_many(Tensor& out, const std::vector<Tensor>& xs, const Tensor& scratch) {
  const char* op = "sum_squares_many";
  require_on_cuda(op, {&out});
  for (const Tensor& x : xs) require_on_cuda(op, {&x});
  require_scratch(op, scratch, whole_sums_scratch_bytes(static_cast<int64_t>(xs.size())));
  std::vector<bool> done(xs.size(), false);
  for (size_t first = 0; first < xs.size(); ++first) {
    if (done[first]) continue;
    const DType dtype = xs[first].dtype();
    std::vector<size_t> group;  // indices into xs (and out) of this dtype
    for (size_t k = first; k < xs.size(); ++k) {
      if (done[k] || xs[k].dtype() != dtype) continue;
      group.push_back(k);
      done[k] = true;
    }
    visit_float_dtype(op, dtype, [&](auto tag) {
      using T = decltype(tag);
      using Acc = compute_t<T>;
      Acc* totals = out.data_as<Acc>();  // [K]
      for (size_t begin = 0; begin < group.size(); begin += kSumsPerLaunch) {
        const int count = static_cast<int>(std::min<size_t>(kSumsPerLaunch, group.size() - begin));
        SumRanges<SquareItem<T, Acc>> ranges{};
        StoreTotals<Acc> store{};
        for (int j = 0; j < count; ++j) {
          const Tensor& x = xs[group[begin + static_cast<size_t>(j)]];
          ranges.item[j] = SquareItem<T, Acc>{x.numel() ? x.data_as<T>() : nullptr};
          ranges.num_items[j] = x.numel();
          store.out[j] = totals + group[begin + static_cast<size_t>(j)];
        }
        launch_fixed_order_sums<Acc>(scratch, count, ranges, store);
      }
    });
  }
}

void sum_rows(Tensor& out, const Tensor& x, bool accumulate, const Tensor& scratch) {
  require_on_cuda("sum_rows", {&out, &x});
  const int64_t rows = x.size(0), cols = x.size(1);
  if (cols == 0) return;
  require_scratch("sum_rows", scratch, sum_rows_scratch_bytes(cols));
  visit_float_dtype("sum_rows", x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    using Acc = compute_t<T>;
    const RowValueTerm<T, Acc> term{rows ? x.data_as<T>() : nullptr, cols};
    launch_column_sums<1, Acc>(scratch, rows, cols, term, StoreColumnTotal<Acc>{out.data_as<Acc>(), accumulate});
  });
}

}  // namespace gc::cuda
