// cpu/elementwise.cpp: element-by-element ops over any mix of float storage types.
//
// Every op loads each operand in its compute type (f32, or f64 as soon as one
// operand is f64), computes, and rounds once into the output's storage type.
// Outputs may alias inputs element for element (out = a + out is fine).
#include "kernels/cpu/elementwise.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/cpu/dtype_dispatch.h"
#include "kernels/cpu/exp_f32.h"
#include "kernels/cpu/parallel.h"

namespace gc::kernels::cpu {

namespace {

template <class Body>
void for_each_index(int64_t n, const Body& body) {
#pragma omp parallel for schedule(static) if (n >= kParallelMinElements)
  for (int64_t i = 0; i < n; ++i) body(i);
}

inline bool is_finite_value(float v) { return std::isfinite(v); }
inline bool is_finite_value(double v) { return std::isfinite(v); }
// A 16-bit float is non-finite exactly when its exponent bits are all ones.
inline bool is_finite_value(bf16_t v) { return (v.bits & 0x7f80u) != 0x7f80u; }
inline bool is_finite_value(f16_t v) { return (v.bits & 0x7c00u) != 0x7c00u; }

// sigmoid(x) from e = e^-x: 1 / (1 + e^-x).
template <class C>
inline C sigmoid_of_exp(C e) {
  return C(1) / (C(1) + e);
}

// out[i] = op(a[i]) with a[i] loaded in the compute type C of (out, a) and the
// result rounded once into out's storage type; op takes and returns C.
template <class Op>
void map_unary(Tensor& out, const Tensor& a, const Op& op) {
  visit_float_dtypes(out.dtype(), a.dtype(), [&](auto o_tag, auto a_tag) {
    using O = decltype(o_tag);
    using A = decltype(a_tag);
    using C = common_compute_t<O, A>;
    O* o = out.data_as<O>();        // [n]
    const A* pa = a.data_as<A>();   // [n]
    for_each_index(out.numel(), [=](int64_t i) { o[i] = to_storage<O>(op(static_cast<C>(to_compute(pa[i])))); });
  });
}

// out[i] = op(a[i], b[i]), likewise with C the compute type of (out, a, b).
template <class Op>
void map_binary(Tensor& out, const Tensor& a, const Tensor& b, const Op& op) {
  visit_float_dtypes(out.dtype(), a.dtype(), b.dtype(), [&](auto o_tag, auto a_tag, auto b_tag) {
    using O = decltype(o_tag);
    using A = decltype(a_tag);
    using B = decltype(b_tag);
    using C = common_compute_t<O, A, B>;
    O* o = out.data_as<O>();        // [n]
    const A* pa = a.data_as<A>();   // [n]
    const B* pb = b.data_as<B>();   // [n]
    for_each_index(out.numel(), [=](int64_t i) {
      o[i] = to_storage<O>(op(static_cast<C>(to_compute(pa[i])), static_cast<C>(to_compute(pb[i]))));
    });
  });
}

// The ops built on e^-x (SiLU, sigmoid): out[i] = op(a[i], e) (or op(a[i], b[i], e))
// with e = e^-a[i] in the compute type. In f32, e comes from exp_f32 a chunk at a
// time (the values of std::exp's expf, bit for bit, many at once), in f64 from
// std::exp; op's expression is the one the ops always had, so are the bits.
constexpr int64_t kExpChunk = 256;

template <class Op>
void map_unary_exp(Tensor& out, const Tensor& a, const Op& op) {
  visit_float_dtypes(out.dtype(), a.dtype(), [&](auto o_tag, auto a_tag) {
    using O = decltype(o_tag);
    using A = decltype(a_tag);
    using C = common_compute_t<O, A>;
    O* o = out.data_as<O>();        // [n]
    const A* pa = a.data_as<A>();   // [n]
    const int64_t n = out.numel();
    if constexpr (std::is_same_v<C, double>) {
      for_each_index(n, [=](int64_t i) {
        const C v = static_cast<C>(to_compute(pa[i]));
        o[i] = to_storage<O>(op(v, std::exp(-v)));
      });
    } else {
      const int64_t chunks = (n + kExpChunk - 1) / kExpChunk;
#pragma omp parallel for schedule(static) if (n >= kParallelMinElements)
      for (int64_t c = 0; c < chunks; ++c) {
        const int64_t begin = c * kExpChunk, count = std::min(kExpChunk, n - begin);
        float v[kExpChunk], e[kExpChunk];
        for (int64_t j = 0; j < count; ++j) v[j] = static_cast<float>(to_compute(pa[begin + j]));
        exp_f32(e, v, count, /*negate=*/true);
        for (int64_t j = 0; j < count; ++j) o[begin + j] = to_storage<O>(op(v[j], e[j]));
      }
    }
  });
}

// out[i] = op(a[i], b[i], e) with e = e^-b[i].
template <class Op>
void map_binary_exp(Tensor& out, const Tensor& a, const Tensor& b, const Op& op) {
  visit_float_dtypes(out.dtype(), a.dtype(), b.dtype(), [&](auto o_tag, auto a_tag, auto b_tag) {
    using O = decltype(o_tag);
    using A = decltype(a_tag);
    using B = decltype(b_tag);
    using C = common_compute_t<O, A, B>;
    O* o = out.data_as<O>();        // [n]
    const A* pa = a.data_as<A>();   // [n]
    const B* pb = b.data_as<B>();   // [n]
    const int64_t n = out.numel();
    if constexpr (std::is_same_v<C, double>) {
      for_each_index(n, [=](int64_t i) {
        const C v = static_cast<C>(to_compute(pb[i]));
        o[i] = to_storage<O>(op(static_cast<C>(to_compute(pa[i])), v, std::exp(-v)));
      });
    } else {
      const int64_t chunks = (n + kExpChunk - 1) / kExpChunk;
#pragma omp parallel for schedule(static) if (n >= kParallelMinElements)
      for (int64_t c = 0; c < chunks; ++c) {
        const int64_t begin = c * kExpChunk, count = std::min(kExpChunk, n - begin);
        float u[kExpChunk], v[kExpChunk], e[kExpChunk];  // both read before out is written (it may alias them)
        for (int64_t j = 0; j < count; ++j) {
          u[j] = static_cast<float>(to_compute(pa[begin + j]));
          v[j] = static_cast<float>(to_compute(pb[begin + j]));
        }
        exp_f32(e, v, count, /*negate=*/true);
        for (int64_t j = 0; j < count; ++j) o[begin + j] = to_storage<O>(op(u[j], v[j], e[j]));
      }
    }
  });
}

// Which way copy_column_blocks moves the bytes (concat_cols, split_cols).
enum class BlockCopy { parts_into_whole, whole_into_parts };

// Copies between whole [R, sum Ci] and parts [R, Ci], all of one dtype: part p
// is the column block of whole that follows the blocks of parts 0 .. p-1.
void copy_column_blocks(const Tensor& whole, const std::vector<Tensor>& parts, BlockCopy direction) {
  const int64_t rows = whole.size(0);
  const size_t element_bytes = dtype_size(whole.dtype());
  const size_t whole_row_bytes = static_cast<size_t>(whole.size(1)) * element_bytes;
  auto* whole_bytes = static_cast<unsigned char*>(whole.data());  // [R, sum Ci]
  const bool into_whole = direction == BlockCopy::parts_into_whole;
  size_t column_offset_bytes = 0;
  for (const Tensor& part : parts) {
    const size_t part_row_bytes = static_cast<size_t>(part.size(1)) * element_bytes;
    if (part_row_bytes == 0 || rows == 0) continue;  // an empty part may have no storage
    auto* part_bytes = static_cast<unsigned char*>(part.data());  // [R, Ci]
    unsigned char* block = whole_bytes + column_offset_bytes;
    unsigned char* destination = into_whole ? block : part_bytes;
    const unsigned char* source = into_whole ? part_bytes : block;
    const size_t destination_row_bytes = into_whole ? whole_row_bytes : part_row_bytes;
    const size_t source_row_bytes = into_whole ? part_row_bytes : whole_row_bytes;
#pragma omp parallel for schedule(static) if (rows * static_cast<int64_t>(part_row_bytes) >= 8 * kParallelMinElements)
    for (int64_t r = 0; r < rows; ++r)
      std::memcpy(destination + r * destination_row_bytes, source + r * source_row_bytes, part_row_bytes);
    column_offset_bytes += part_row_bytes;
  }
}

}  // namespace

const exp_detail::Table& exp_detail::table() {
  static const Table filled;
  return filled;
}

exp_detail::Table::Table() {
  for (int i = 0; i < kTableSize; ++i)
    entry[i] = bits_of(std::exp2(static_cast<double>(i) / kTableSize)) - (static_cast<uint64_t>(i) << (52 - kTableBits));
}

void add_forward(Tensor& out, const Tensor& a, const Tensor& b) {
  map_binary(out, a, b, [](auto x, auto y) { return x + y; });
}

void mul_forward(Tensor& out, const Tensor& a, const Tensor& b) {
  map_binary(out, a, b, [](auto x, auto y) { return x * y; });
}

void scale_forward(Tensor& out, const Tensor& x, double factor) {
  map_unary(out, x, [factor](auto v) { return static_cast<decltype(v)>(factor) * v; });
}

void accumulate(Tensor& acc, const Tensor& x) { add_forward(acc, acc, x); }

void scale_inplace(Tensor& x, double factor) { scale_forward(x, x, factor); }

void fill(Tensor& x, double value) {
  visit_float_dtype(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    T* p = x.data_as<T>();  // [n]
    const T stored = round_double_to<T>(value);
    for_each_index(x.numel(), [=](int64_t i) { p[i] = stored; });
  });
}

void silu_forward(Tensor& out, const Tensor& x) {
  map_unary_exp(out, x, [](auto v, auto e) { return v * sigmoid_of_exp(e); });
}

void silu_backward(Tensor& grad_x, const Tensor& grad_out, const Tensor& x) {
  map_binary_exp(grad_x, grad_out, x, [](auto go, auto v, auto e) {
    using C = decltype(v);
    const C s = sigmoid_of_exp(e);
    // d/dx x s(x) = s + x s (1 - s)
    return go * (s * (C(1) + v * (C(1) - s)));
  });
}

void sigmoid_forward(Tensor& out, const Tensor& x) {
  map_unary_exp(out, x, [](auto, auto e) { return sigmoid_of_exp(e); });
}

void sigmoid_backward(Tensor& grad_x, const Tensor& grad_out, const Tensor& y) {
  // d/dx s(x) = s (1 - s), from the saved output
  map_binary(grad_x, grad_out, y, [](auto go, auto s) { return go * (s * (decltype(s)(1) - s)); });
}

void cast(Tensor& out, const Tensor& x) {
  visit_float_dtypes(out.dtype(), x.dtype(), [&](auto o_tag, auto x_tag) {
    using O = decltype(o_tag);
    using X = decltype(x_tag);
    O* o = out.data_as<O>();        // [n]
    const X* px = x.data_as<X>();   // [n]
    if constexpr (std::is_same_v<X, double>) {
      for_each_index(out.numel(), [=](int64_t i) { o[i] = round_double_to<O>(px[i]); });
    } else {
      // Widening a 16-bit float to f32 is exact, so one rounding happens at most.
      for_each_index(out.numel(), [=](int64_t i) { o[i] = to_storage<O>(to_compute(px[i])); });
    }
  });
}

void concat_cols(Tensor& out, const std::vector<Tensor>& parts) {
  copy_column_blocks(out, parts, BlockCopy::parts_into_whole);
}

void split_cols(std::vector<Tensor>& parts, const Tensor& x) {
  copy_column_blocks(x, parts, BlockCopy::whole_into_parts);
}

bool all_finite(const Tensor& x) {
  int64_t non_finite = 0;
  visit_float_dtype(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* p = x.data_as<T>();  // [n]
    const int64_t n = x.numel();
    int64_t count = 0;
#pragma omp parallel for schedule(static) reduction(+ : count) if (n >= kParallelMinElements)
    for (int64_t i = 0; i < n; ++i) count += is_finite_value(p[i]) ? 0 : 1;
    non_finite = count;
  });
  return non_finite == 0;
}

}  // namespace gc::kernels::cpu
