// kernels/cpu/index.cpp: gather and segment sums over CSR groups on the cpu, the
// reference the cuda kernels are tested against.
//
// Determinism: every output element is a sum over its group's edges taken in CSR
// order by one task, starting from zero (or from out's value when accumulating),
// a long group in fixed sub-ranges combined in order (kernels/group_split.h);
// tasks never share an output element, so results are bitwise the same for any
// thread count. A task is (node, tile of kColumnTile columns), which spreads a hub
// node that receives most edges over several threads. Scratch: one tile on the stack.
#include "kernels/cpu/index.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "kernels/cpu/dtype_dispatch.h"
#include "kernels/cpu/parallel.h"
#include "kernels/group_split.h"

namespace gc::kernels::cpu {
namespace {

constexpr int64_t kColumnTile = 64;

template <class S, class D>
inline void convert_row(D* destination, const S* source, int64_t cols) {
  if constexpr (std::is_same_v<S, D>) {
    std::memcpy(destination, source, static_cast<size_t>(cols) * sizeof(S));
  } else {
    for (int64_t c = 0; c < cols; ++c) destination[c] = from_compute_d<D>(to_compute(source[c]));
  }
}

template <class S, class D>
void gather_impl(D* out,                // [E, C]
                 const S* x,            // [N, C]
                 const int32_t* index,  // [E]
                 int64_t edges, int64_t cols) {
#pragma omp parallel for schedule(static) if (edges * cols >= kParallelMinElements)
  for (int64_t e = 0; e < edges; ++e) convert_row(out + e * cols, x + static_cast<int64_t>(index[e]) * cols, cols);
}

// out[n] (+)= sum of in rows order[i] (or i when order is null) for i in group n.
// The accumulator is the wider of the pair: f32 for 16-bit floats, f64 for f64.
template <class S, class D>
void sum_groups_impl(D* out,                  // [N, C]
                     const S* in,             // [E, C]
                     const int32_t* order,    // [E] or null for the identity
                     const int32_t* offsets,  // [N + 1]
                     int64_t nodes, int64_t cols, bool accumulate) {
  using Acc = compute_t<S>;
  const int64_t tiles = (cols + kColumnTile - 1) / kColumnTile;
  const int64_t tasks = nodes * tiles;
  const int64_t elements = (nodes + offsets[nodes]) * cols;
#pragma omp parallel for schedule(dynamic, 16) if (elements >= kParallelMinElements)
  for (int64_t task = 0; task < tasks; ++task) {
    const int64_t n = task / tiles;
    const int64_t c0 = (task % tiles) * kColumnTile;
    const int64_t width = std::min(kColumnTile, cols - c0);
    D* out_tile = out + n * cols + c0;
    Acc acc[kColumnTile];
    for (int64_t j = 0; j < width; ++j) acc[j] = accumulate ? Acc(to_compute(out_tile[j])) : Acc(0);
    auto add_rows = [&](Acc* sums, int64_t first, int64_t last) {
      for (int64_t i = first; i < last; ++i) {
        const int64_t e = order ? order[i] : i;
        const S* row = in + e * cols + c0;
        for (int64_t j = 0; j < width; ++j) sums[j] += Acc(to_compute(row[j]));
      }
    };
    // Sub-ranges of kGroupSplit rows (group_split.h): the first into acc, each
    // later one from zero, added to acc in order.
    const int64_t begin = offsets[n], end = offsets[n + 1];
    add_rows(acc, begin, std::min(end, begin + kGroupSplit));
    for (int64_t first = begin + kGroupSplit; first < end; first += kGroupSplit) {
      Acc part[kColumnTile];
      for (int64_t j = 0; j < width; ++j) part[j] = Acc(0);
      add_rows(part, first, std::min(end, first + kGroupSplit));
      for (int64_t j = 0; j < width; ++j) acc[j] += part[j];
    }
    for (int64_t j = 0; j < width; ++j) out_tile[j] = from_compute_d<D>(acc[j]);
  }
}

// With an addend, each element is the addend plus the row's element rounded to D
// (what the assigned broadcast would hold), rounded once more: accumulate's sum.
template <class S, class D>
void broadcast_groups_impl(D* grad_x,               // [E, C]
                           const S* grad_out,       // [N, C]
                           const int32_t* offsets,  // [N + 1]
                           const D* addend,         // [E, C] or null
                           int64_t nodes, int64_t cols) {
  using C = common_compute_t<D>;
  const int64_t elements = offsets[nodes] * cols;
#pragma omp parallel for schedule(dynamic, 64) if (elements >= kParallelMinElements)
  for (int64_t n = 0; n < nodes; ++n) {
    for (int64_t e = offsets[n]; e < offsets[n + 1]; ++e) {
      if (!addend) {
        convert_row(grad_x + e * cols, grad_out + n * cols, cols);
        continue;
      }
      D* out = grad_x + e * cols;
      const D* base = addend + e * cols;
      const S* row = grad_out + n * cols;
      for (int64_t c = 0; c < cols; ++c) {
        D assigned;
        convert_row(&assigned, row + c, 1);
        out[c] = to_storage<D>(static_cast<C>(to_compute(base[c])) + static_cast<C>(to_compute(assigned)));
      }
    }
  }
}

}  // namespace

void check_index_values(const Tensor& index, int64_t limit, const char* op, const char* name) {
  const int32_t* values = index.data_as<int32_t>();
  const int64_t count = index.numel();
  for (int64_t i = 0; i < count; ++i)
    if (values[i] < 0 || values[i] >= limit)
      throw std::invalid_argument(std::string(op) + ": " + name + " value " + std::to_string(values[i]) + " at " +
                                  std::to_string(i) + " outside [0, " + std::to_string(limit) + ") in " +
                                  index.describe());
}

void check_offsets(const Tensor& offsets, int64_t total, const char* op) {
  const int32_t* values = offsets.data_as<int32_t>();
  const int64_t count = offsets.numel();
  auto fail = [&](const std::string& why) {
    throw std::invalid_argument(std::string(op) + ": offsets " + offsets.describe() + " " + why);
  };
  if (values[0] != 0) fail("must start at 0; starts at " + std::to_string(values[0]));
  for (int64_t i = 1; i < count; ++i)
    if (values[i] < values[i - 1])
      fail("decrease at " + std::to_string(i) + " (" + std::to_string(values[i - 1]) + " then " +
           std::to_string(values[i]) + ")");
  if (values[count - 1] != total)
    fail("must end at the edge count " + std::to_string(total) + "; ends at " + std::to_string(values[count - 1]));
}

void gather_rows_forward(Tensor& out, const Tensor& x, const Tensor& index) {
  if (out.numel() == 0) return;
  visit_float_pair(x.dtype(), out.dtype(), "gather_rows_forward", [&](auto s, auto d) {
    using S = decltype(s);
    using D = decltype(d);
    gather_impl<S, D>(out.data_as<D>(), x.data_as<S>(), index.data_as<int32_t>(), out.rows(), out.cols());
  });
}

void gather_rows_backward(Tensor& grad_x, const Tensor& grad_out, const Tensor& order, const Tensor& offsets) {
  if (grad_x.numel() == 0) return;
  visit_float_pair(grad_out.dtype(), grad_x.dtype(), "gather_rows_backward", [&](auto s, auto d) {
    using S = decltype(s);
    using D = decltype(d);
    // grad_out may have no rows (E = 0); then no row pointer is ever formed from it.
    const S* rows = grad_out.numel() ? grad_out.data_as<S>() : nullptr;
    const int32_t* order_ids = order.numel() ? order.data_as<int32_t>() : nullptr;
    sum_groups_impl<S, D>(grad_x.data_as<D>(), rows, order_ids, offsets.data_as<int32_t>(), grad_x.rows(),
                          grad_x.cols(), false);
  });
}

// Each edge's element: the first sum rounded to T, then the second, as two
// separate adds (map_binary) round them.
void add_gathered_rows(Tensor& out, const Tensor& base, const Tensor& s, const Tensor& s_index, const Tensor& r,
                       const Tensor& r_index) {
  visit_float_dtype(out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    using C = common_compute_t<T>;
    T* o = out.data_as<T>();                              // [E, C]
    const T* b = base.data_as<T>();                       // [E, C]
    const T* sv = s.data_as<T>();                         // [Ns, C]
    const T* rv = r.data_as<T>();                         // [Nr, C]
    const int32_t* si = s_index.data_as<int32_t>();       // [E]
    const int32_t* ri = r_index.data_as<int32_t>();       // [E]
    const int64_t edges = out.rows(), cols = out.cols();
#pragma omp parallel for schedule(static) if (edges * cols >= kParallelMinElements)
    for (int64_t e = 0; e < edges; ++e) {
      const T* s_row = sv + static_cast<int64_t>(si[e]) * cols;
      const T* r_row = rv + static_cast<int64_t>(ri[e]) * cols;
      for (int64_t c = 0; c < cols; ++c) {
        const T first = to_storage<T>(static_cast<C>(to_compute(b[e * cols + c])) + static_cast<C>(to_compute(s_row[c])));
        o[e * cols + c] = to_storage<T>(static_cast<C>(to_compute(first)) + static_cast<C>(to_compute(r_row[c])));
      }
    }
  });
}

// Rows are distinct, so each task (a row) owns its acc row: any thread count gives
// the same bits.
void index_add_rows(Tensor& acc, const Tensor& x, const Tensor& rows) {
  if (x.numel() == 0) return;
  visit_float_dtype(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    T* a = acc.data_as<T>();                      // [N, C]
    const T* s = x.data_as<T>();                  // [U, C]
    const int32_t* r = rows.data_as<int32_t>();   // [U]
    const int64_t count = x.rows(), cols = x.cols();
#pragma omp parallel for schedule(static) if (count * cols >= kParallelMinElements)
    for (int64_t u = 0; u < count; ++u) {
      T* destination = a + static_cast<int64_t>(r[u]) * cols;
      const T* source = s + u * cols;
      for (int64_t c = 0; c < cols; ++c) destination[c] = to_storage<T>(to_compute(destination[c]) + to_compute(source[c]));
    }
  });
}

void segment_sum_forward(Tensor& out, const Tensor& x, const Tensor& offsets, bool accumulate) {
  if (out.numel() == 0) return;
  visit_float_pair(x.dtype(), out.dtype(), "segment_sum_forward", [&](auto s, auto d) {
    using S = decltype(s);
    using D = decltype(d);
    const S* rows = x.numel() ? x.data_as<S>() : nullptr;
    sum_groups_impl<S, D>(out.data_as<D>(), rows, nullptr, offsets.data_as<int32_t>(), out.rows(), out.cols(),
                          accumulate);
  });
}

void segment_sum_backward(Tensor& grad_x, const Tensor& grad_out, const Tensor& offsets, const Tensor& addend) {
  if (grad_x.numel() == 0) return;
  visit_float_pair(grad_out.dtype(), grad_x.dtype(), "segment_sum_backward", [&](auto s, auto d) {
    using S = decltype(s);
    using D = decltype(d);
    broadcast_groups_impl<S, D>(grad_x.data_as<D>(), grad_out.data_as<S>(), offsets.data_as<int32_t>(),
                                addend.defined() ? addend.data_as<D>() : nullptr, grad_out.rows(), grad_x.cols());
  });
}

// Stable counting sort with offsets doubling as the per-node cursor: after the
// placement pass offsets[n] holds the end of group n, so one shift restores starts.
void build_csr(Tensor& order, Tensor& offsets, const Tensor& index, int64_t num_nodes) {
  int32_t* starts = offsets.data_as<int32_t>();  // [N + 1]
  const int64_t edges = index.numel();
  std::fill(starts, starts + num_nodes + 1, 0);
  if (edges == 0) return;
  const int32_t* node_of_edge = index.data_as<int32_t>();  // [E]
  int32_t* sorted_edges = order.data_as<int32_t>();       // [E]
  for (int64_t e = 0; e < edges; ++e) ++starts[node_of_edge[e] + 1];
  for (int64_t n = 0; n < num_nodes; ++n) starts[n + 1] += starts[n];
  for (int64_t e = 0; e < edges; ++e) sorted_edges[starts[node_of_edge[e]]++] = static_cast<int32_t>(e);
  for (int64_t n = num_nodes; n > 0; --n) starts[n] = starts[n - 1];
  starts[0] = 0;
}

}  // namespace gc::kernels::cpu
