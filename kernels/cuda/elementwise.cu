// kernels/cuda/elementwise.cu: element-by-element ops on the gpu, in three layers
// (kernel, launcher, exported entry), mirroring kernels/cpu/elementwise.cpp.
//
// Every output element is one expression of the same-index input elements, so the
// result never depends on the launch shape. SiLU forward and backward are single
// passes (sigmoid recomputed in place), so no activation but x is ever stored.
#include "kernels/cuda/elementwise.h"

#include "kernels/cuda/column_sums.h"
#include "kernels/cuda/common.h"
#include "kernels/cuda/scratch.h"

namespace gc::cuda {
namespace {

// ---- element functors (C is the compute type) ----------------------------------------

struct AddOp {
  template <class C>
  __device__ C operator()(C a, C b) const { return a + b; }
};
struct MulOp {
  template <class C>
  __device__ C operator()(C a, C b) const { return a * b; }
};
struct ScaleOp {
  double factor;
  template <class C>
  __device__ C operator()(C v) const { return static_cast<C>(factor) * v; }
};

template <class C>
__device__ __forceinline__ C sigmoid(C v) {
  return C(1) / (C(1) + exp_compute(-v));
}
struct SiluOp {
  template <class C>
  __device__ C operator()(C v) const { return v * sigmoid(v); }
};
// grad_x = grad_out * (s + x s (1 - s)), the derivative of x s(x).
struct SiluBackwardOp {
  template <class C>
  __device__ C operator()(C grad_out, C v) const {
    const C s = sigmoid(v);
    return grad_out * (s * (C(1) + v * (C(1) - s)));
  }
};

struct SigmoidOp {
  template <class C>
  __device__ C operator()(C v) const { return sigmoid(v); }
};
// grad_x = grad_out * y (1 - y) from the forward's output y.
struct SigmoidBackwardOp {
  template <class C>
  __device__ C operator()(C grad_out, C s) const { return grad_out * (s * (C(1) - s)); }
};

__device__ __forceinline__ bool is_finite_value(float v) { return isfinite(v); }
__device__ __forceinline__ bool is_finite_value(double v) { return isfinite(v); }
__device__ __forceinline__ bool is_finite_value(bf16_t v) { return (v.bits & 0x7f80u) != 0x7f80u; }
__device__ __forceinline__ bool is_finite_value(f16_t v) { return (v.bits & 0x7c00u) != 0x7c00u; }

// ---- kernels ------------------------------------------------------------------------------

template <class Op, class O, class A, class B>
__global__ void binary_kernel(O* out, const A* a, const B* b, int64_t n, Op op) {  // out, a, b [n]
  using C = common_compute_t<O, A, B>;
  for (int64_t i = global_thread(); i < n; i += total_threads())
    out[i] = to_storage<O>(op(static_cast<C>(load_value(a[i])), static_cast<C>(load_value(b[i]))));
}

template <class Op, class O, class X>
__global__ void unary_kernel(O* out, const X* x, int64_t n, Op op) {  // out, x [n]
  using C = common_compute_t<O, X>;
  for (int64_t i = global_thread(); i < n; i += total_threads())
    out[i] = to_storage<O>(op(static_cast<C>(load_value(x[i]))));
}

// 16-byte accesses. When every operand's elements have one size and every
// pointer is 16-byte aligned (the allocator's blocks are; a view may not be),
// each thread loads and stores whole packs of 16 bytes (8 bf16/f16, 4 f32, 2 f64)
// instead of one element at a time, and the last n % V elements go one by one.
// Each element's arithmetic is the one-element kernel's, so the bits are the
// same on either path. In place (out == a) is fine: a thread reads its pack
// before it writes it.
template <class T>
struct alignas(16) Pack16 {
  T v[16 / sizeof(T)];
};

template <class Op, class O, class A, class B>
__global__ void binary_pack_kernel(O* out, const A* a, const B* b, int64_t n, Op op) {  // out, a, b [n]
  static_assert(sizeof(O) == sizeof(A) && sizeof(O) == sizeof(B), "one element size");
  using C = common_compute_t<O, A, B>;
  constexpr int kPack = 16 / sizeof(O);
  const int64_t packs = n / kPack;
  for (int64_t p = global_thread(); p < packs; p += total_threads()) {
    const Pack16<A> x = reinterpret_cast<const Pack16<A>*>(a)[p];
    const Pack16<B> y = reinterpret_cast<const Pack16<B>*>(b)[p];
    Pack16<O> r;
#pragma unroll
    for (int j = 0; j < kPack; ++j)
      r.v[j] = to_storage<O>(op(static_cast<C>(load_value(x.v[j])), static_cast<C>(load_value(y.v[j]))));
    reinterpret_cast<Pack16<O>*>(out)[p] = r;
  }
  for (int64_t i = packs * kPack + global_thread(); i < n; i += total_threads())
    out[i] = to_storage<O>(op(static_cast<C>(load_value(a[i])), static_cast<C>(load_value(b[i]))));
}

template <class Op, class O, class X>
__global__ void unary_pack_kernel(O* out, const X* x, int64_t n, Op op) {  // out, x [n]
  static_assert(sizeof(O) == sizeof(X), "one element size");
  using C = common_compute_t<O, X>;
  constexpr int kPack = 16 / sizeof(O);
  const int64_t packs = n / kPack;
  for (int64_t p = global_thread(); p < packs; p += total_threads()) {
    const Pack16<X> v = reinterpret_cast<const Pack16<X>*>(x)[p];
    Pack16<O> r;
#pragma unroll
    for (int j = 0; j < kPack; ++j) r.v[j] = to_storage<O>(op(static_cast<C>(load_value(v.v[j]))));
    reinterpret_cast<Pack16<O>*>(out)[p] = r;
  }
  for (int64_t i = packs * kPack + global_thread(); i < n; i += total_threads())
    out[i] = to_storage<O>(op(static_cast<C>(load_value(x[i]))));
}

inline bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// One element of a cast: a double rounds once into O (through f32 rounded to
// odd for 16-bit O); a narrower value widens exactly, then rounds at most once.
template <class O, class X>
__device__ __forceinline__ O cast_element(X v) {
  if constexpr (std::is_same_v<X, double>)
    return round_double_to<O>(v);
  else
    return to_storage<O>(load_value(v));
}

template <class O, class X>
__global__ void cast_kernel(O* out, const X* x, int64_t n) {  // out, x [n]
  for (int64_t i = global_thread(); i < n; i += total_threads()) out[i] = cast_element<O>(x[i]);
}

// The same with packs (both tensors 16-byte aligned): a thread takes kCastPack
// elements, 16 bytes of the narrower dtype and 16, 32 or 64 bytes of the wider,
// each a run of 16-byte loads or stores; the tail goes one element at a time.
template <class O, class X>
constexpr int kCastPack = static_cast<int>(16 / (sizeof(O) < sizeof(X) ? sizeof(O) : sizeof(X)));

template <class T, int N>
struct alignas(16) CastPack {
  T v[N];
};

template <class O, class X>
__global__ void cast_pack_kernel(O* out, const X* x, int64_t n) {  // out, x [n]
  constexpr int kPack = kCastPack<O, X>;
  const int64_t packs = n / kPack;
  for (int64_t p = global_thread(); p < packs; p += total_threads()) {
    const CastPack<X, kPack> v = reinterpret_cast<const CastPack<X, kPack>*>(x)[p];
    CastPack<O, kPack> r;
#pragma unroll
    for (int j = 0; j < kPack; ++j) r.v[j] = cast_element<O>(v.v[j]);
    reinterpret_cast<CastPack<O, kPack>*>(out)[p] = r;
  }
  for (int64_t i = packs * kPack + global_thread(); i < n; i += total_threads()) out[i] = cast_element<O>(x[i]);
}

template <class T>
__global__ void fill_kernel(T* x, int64_t n, double value) {  // x [n]
  const T stored = round_double_to<T>(value);
  for (int64_t i = global_thread(); i < n; i += total_threads()) x[i] = stored;
}

// Sets *non_finite (zeroed before the launch) when it meets a non-finite value.
template <class T>
__global__ void all_finite_kernel(const T* x, int64_t n, unsigned int* non_finite) {  // x [n], non_finite [1]
  bool finite = true;
  for (int64_t i = global_thread(); i < n; i += total_threads()) finite = finite && is_finite_value(x[i]);
  if (!finite) atomicOr(non_finite, 1u);
}

// ---- launchers ------------------------------------------------------------------------------

template <class Op>
void launch_binary(const char* op_name, Op op, Tensor& out, const Tensor& a, const Tensor& b) {
  const int64_t n = out.numel();
  if (n == 0) return;
  visit_float_dtypes(op_name, out.dtype(), a.dtype(), b.dtype(), [&](auto o_tag, auto a_tag, auto b_tag) {
    using O = decltype(o_tag);
    using A = decltype(a_tag);
    using B = decltype(b_tag);
    if constexpr (sizeof(O) == sizeof(A) && sizeof(O) == sizeof(B)) {
      if (aligned16(out.data()) && aligned16(a.data()) && aligned16(b.data())) {
        const int64_t packs = n / static_cast<int64_t>(16 / sizeof(O));
        binary_pack_kernel<<<element_blocks(packs > 0 ? packs : n), kThreadsPerBlock>>>(
            out.data_as<O>(), a.data_as<A>(), b.data_as<B>(), n, op);
        return;
      }
    }
    binary_kernel<<<element_blocks(n), kThreadsPerBlock>>>(out.data_as<O>(), a.data_as<A>(), b.data_as<B>(), n, op);
  });
  GC_CUDA_CHECK(cudaGetLastError());
}

template <class Op>
void launch_unary(const char* op_name, Op op, Tensor& out, const Tensor& x) {
  const int64_t n = out.numel();
  if (n == 0) return;
  visit_float_dtypes(op_name, out.dtype(), x.dtype(), [&](auto o_tag, auto x_tag) {
    using O = decltype(o_tag);
    using X = decltype(x_tag);
    if constexpr (sizeof(O) == sizeof(X)) {
      if (aligned16(out.data()) && aligned16(x.data())) {
        const int64_t packs = n / static_cast<int64_t>(16 / sizeof(O));
        unary_pack_kernel<<<element_blocks(packs > 0 ? packs : n), kThreadsPerBlock>>>(out.data_as<O>(),
                                                                                      x.data_as<X>(), n, op);
        return;
      }
    }
    unary_kernel<<<element_blocks(n), kThreadsPerBlock>>>(out.data_as<O>(), x.data_as<X>(), n, op);
  });
  GC_CUDA_CHECK(cudaGetLastError());
}

// Copies a [rows, part_columns] block between row-major matrices of different
// widths (the column ranges of concat_cols and split_cols), as one 2-D copy on
// the default stream.
void copy_column_block(void* destination, size_t destination_row_bytes, const void* source, size_t source_row_bytes,
                       size_t part_row_bytes, int64_t rows) {
  if (part_row_bytes == 0 || rows == 0) return;
  GC_CUDA_CHECK(cudaMemcpy2DAsync(destination, destination_row_bytes, source, source_row_bytes, part_row_bytes,
                                  static_cast<size_t>(rows), cudaMemcpyDeviceToDevice, /*default stream*/ 0));
}

}  // namespace

// ---- exported entries ------------------------------------------------------------------------

void add_forward(Tensor& out, const Tensor& a, const Tensor& b) {
  require_on_cuda("add_forward", {&out, &a, &b});
  launch_binary("add_forward", AddOp{}, out, a, b);
}

void mul_forward(Tensor& out, const Tensor& a, const Tensor& b) {
  require_on_cuda("mul_forward", {&out, &a, &b});
  launch_binary("mul_forward", MulOp{}, out, a, b);
}

void scale_forward(Tensor& out, const Tensor& x, double factor) {
  require_on_cuda("scale_forward", {&out, &x});
  launch_unary("scale_forward", ScaleOp{factor}, out, x);
}

void accumulate(Tensor& acc, const Tensor& x) {
  require_on_cuda("accumulate", {&acc, &x});
  launch_binary("accumulate", AddOp{}, acc, acc, x);
}

void scale_inplace(Tensor& x, double factor) { scale_forward(x, x, factor); }

void fill(Tensor& x, double value) {
  require_on_cuda("fill", {&x});
  const int64_t n = x.numel();
  if (n == 0) return;
  visit_float_dtype("fill", x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    fill_kernel<<<element_blocks(n), kThreadsPerBlock>>>(x.data_as<T>(), n, value);
  });
  GC_CUDA_CHECK(cudaGetLastError());
}

void silu_forward(Tensor& out, const Tensor& x) {
  require_on_cuda("silu_forward", {&out, &x});
  launch_unary("silu_forward", SiluOp{}, out, x);
}

void silu_backward(Tensor& grad_x, const Tensor& grad_out, const Tensor& x) {
  require_on_cuda("silu_backward", {&grad_x, &grad_out, &x});
  launch_binary("silu_backward", SiluBackwardOp{}, grad_x, grad_out, x);
}

// SiLU's backward as a column-sum term (column_sums.h visits every element of
// [R, C] once): the element as silu_backward's kernels write it (the same
// functor, one rounding), stored, and its stored value handed to the sum, as
// sum_rows would load it. So grad_x is silu_backward's and the total sum_rows',
// bit for bit, in one pass over the rows.
template <class T, class Acc>
struct SiluBackwardColumnTerm {
  T* grad_x;          // [R, C]
  const T* grad_out;  // [R, C]
  const T* x;         // [R, C]
  int64_t cols;
  __device__ void operator()(int64_t r, int64_t c, Acc (&terms)[1]) const {
    using C = compute_t<T>;
    const int64_t i = r * cols + c;
    const T g = to_storage<T>(SiluBackwardOp{}(static_cast<C>(load_value(grad_out[i])), static_cast<C>(load_value(x[i]))));
    grad_x[i] = g;
    terms[0] = static_cast<Acc>(load_value(g));
  }
};

template <class Acc>
struct AccumulateColumnTotal {
  Acc* out;  // [C]
  __device__ void operator()(int64_t c, const Acc (&totals)[1]) const { out[c] = out[c] + totals[0]; }
};

void silu_backward_bias(Tensor& grad_x, Tensor& grad_bias, const Tensor& grad_out, const Tensor& x,
                        const Tensor& scratch) {
  const char* op = "silu_backward_bias";
  require_on_cuda(op, {&grad_x, &grad_bias, &grad_out, &x});
  const int64_t rows = x.size(0), cols = x.size(1);
  if (rows == 0 || cols == 0) return;
  require_scratch(op, scratch, sum_rows_scratch_bytes(cols));
  visit_float_dtype(op, x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    using Acc = compute_t<T>;
    const SiluBackwardColumnTerm<T, Acc> term{grad_x.data_as<T>(), grad_out.data_as<T>(), x.data_as<T>(), cols};
    launch_column_sums<1, Acc>(scratch, rows, cols, term, AccumulateColumnTotal<Acc>{grad_bias.data_as<Acc>()});
  });
}

void sigmoid_forward(Tensor& out, const Tensor& x) {
  require_on_cuda("sigmoid_forward", {&out, &x});
  launch_unary("sigmoid_forward", SigmoidOp{}, out, x);
}

void sigmoid_backward(Tensor& grad_x, const Tensor& grad_out, const Tensor& y) {
  require_on_cuda("sigmoid_backward", {&grad_x, &grad_out, &y});
  launch_binary("sigmoid_backward", SigmoidBackwardOp{}, grad_x, grad_out, y);
}

void cast(Tensor& out, const Tensor& x) {
  require_on_cuda("cast", {&out, &x});
  const int64_t n = out.numel();
  if (n == 0) return;
  visit_float_dtypes("cast", out.dtype(), x.dtype(), [&](auto o_tag, auto x_tag) {
    using O = decltype(o_tag);
    using X = decltype(x_tag);
    if (aligned16(out.data()) && aligned16(x.data())) {
      const int64_t packs = n / kCastPack<O, X>;
      cast_pack_kernel<<<element_blocks(packs > 0 ? packs : n), kThreadsPerBlock>>>(out.data_as<O>(), x.data_as<X>(),
                                                                                   n);
    } else {
      cast_kernel<<<element_blocks(n), kThreadsPerBlock>>>(out.data_as<O>(), x.data_as<X>(), n);
    }
  });
  GC_CUDA_CHECK(cudaGetLastError());
}

void concat_cols(Tensor& out, const std::vector<Tensor>& parts) {
  require_on_cuda("concat_cols", {&out});
  for (const Tensor& part : parts) require_on_cuda("concat_cols", {&part});
  const int64_t rows = out.size(0);
  const size_t element_bytes = dtype_size(out.dtype());
  const size_t out_row_bytes = static_cast<size_t>(out.size(1)) * element_bytes;
  if (rows == 0 || out_row_bytes == 0) return;
  auto* out_bytes = static_cast<unsigned char*>(out.data());  // [R, sum Ci]
  size_t column_offset_bytes = 0;
  for (const Tensor& part : parts) {
    const size_t part_row_bytes = static_cast<size_t>(part.size(1)) * element_bytes;
    if (part_row_bytes == 0) continue;  // an empty part may have no storage
    copy_column_block(out_bytes + column_offset_bytes, out_row_bytes, part.data(), part_row_bytes, part_row_bytes,
                      rows);
    column_offset_bytes += part_row_bytes;
  }
}

void split_cols(std::vector<Tensor>& parts, const Tensor& x) {
  require_on_cuda("split_cols", {&x});
  for (const Tensor& part : parts) require_on_cuda("split_cols", {&part});
  const int64_t rows = x.size(0);
  const size_t element_bytes = dtype_size(x.dtype());
  const size_t x_row_bytes = static_cast<size_t>(x.size(1)) * element_bytes;
  if (rows == 0 || x_row_bytes == 0) return;
  const auto* x_bytes = static_cast<const unsigned char*>(x.data());  // [R, sum Ci]
  size_t column_offset_bytes = 0;
  for (Tensor& part : parts) {
    const size_t part_row_bytes = static_cast<size_t>(part.size(1)) * element_bytes;
    if (part_row_bytes == 0) continue;
    copy_column_block(part.data(), part_row_bytes, x_bytes + column_offset_bytes, x_row_bytes, part_row_bytes, rows);
    column_offset_bytes += part_row_bytes;
  }
}

bool all_finite(const Tensor& x, const Tensor& scratch) {
  require_on_cuda("all_finite", {&x});
  const int64_t n = x.numel();
  if (n == 0) return true;
  require_scratch("all_finite", scratch, all_finite_scratch_bytes(n));
  auto* device_flag = static_cast<unsigned int*>(scratch.data());  // [1]
  GC_CUDA_CHECK(cudaMemsetAsync(device_flag, 0, sizeof(unsigned int), /*default stream*/ 0));
  visit_float_dtype("all_finite", x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    all_finite_kernel<<<element_blocks(n), kThreadsPerBlock>>>(x.data_as<T>(), n, device_flag);
  });
  GC_CUDA_CHECK(cudaGetLastError());
  // Into a host variable (pageable): the copy waits for the kernel on the one stream.
  unsigned int non_finite = 0;
  GC_CUDA_CHECK(cudaMemcpy(&non_finite, device_flag, sizeof(non_finite), cudaMemcpyDeviceToHost));
  return non_finite == 0;
}

}  // namespace gc::cuda
