// kernels/index.cpp: graph op entry points: validation and device dispatch.
//
// Shape, dtype and device checks run on every device, meta included, so a dry run
// rejects exactly what a real run rejects. Index values (gather indices, CSR
// order and offsets) are checked on the tensors' device before any row is read: a
// bad index is an std::invalid_argument, never an out-of-bounds access.
#include "kernels/index.h"

#include <cstdint>
#include <limits>
#include <string>
#include <tuple>

#include "kernels/cpu/index.h"
#include "kernels/cuda/backend.h"
#include "kernels/cuda/index.h"
#include "kernels/cuda/scratch.h"
#include "kernels/dispatch.h"
#include "kernels/traffic.h"
#include "runtime/profile.h"

namespace gc::kernels {
namespace {

// Equal float dtypes, or f32 paired with a 16-bit float (the accumulation dtype).
bool float_pair_allowed(DType a, DType b) {
  if (!dtype_is_floating(a) || !dtype_is_floating(b)) return false;
  if (a == b) return true;
  auto is_half = [](DType d) { return d == DType::bf16 || d == DType::f16; };
  return (a == DType::f32 && is_half(b)) || (b == DType::f32 && is_half(a));
}

void require_float_pair(const char* op, const Tensor& source, const Tensor& destination) {
  require(float_pair_allowed(source.dtype(), destination.dtype()), op,
          "dtypes must be equal floats, or f32 with bf16/f16; got " + source.describe() + " and " +
              destination.describe());
}

// A 1-D i32 tensor of `count` elements.
void require_index(const char* op, const char* name, const Tensor& t, int64_t count) {
  require(t.dtype() == DType::i32 && t.dim() == 1 && t.numel() == count, op,
          std::string(name) + " must be i32[" + std::to_string(count) + "]; got " + t.describe());
}

// rows [count, ...] with the trailing dims of like [*, ...].
void require_rows_like(const char* op, const char* name, const Tensor& t, int64_t count, const char* like_name,
                       const Tensor& like) {
  Shape expected = like.shape();
  expected[0] = count;
  require(t.shape() == expected, op,
          std::string(name) + " must have shape " + shape_string(expected) + " (" + like_name + " is " +
              like.describe() + "); got " + t.describe());
}

void require_float_rows(const char* op, const char* name, const Tensor& t) {
  require(t.defined() && t.dim() >= 1 && dtype_is_floating(t.dtype()), op,
          std::string(name) + " must be a float tensor [rows, ...]; got " +
              (t.defined() ? t.describe() : std::string("an undefined tensor")));
}

void require_fits_i32(const char* op, const char* what, int64_t count) {
  require(count <= std::numeric_limits<int32_t>::max(), op,
          std::string(what) + " count " + std::to_string(count) + " does not fit the i32 indices");
}

// A tensor with the name that error messages give it.
struct Named {
  const char* name;
  const Tensor& tensor;
};

// Which of a segment sum's tensors holds the nodes [N, ...]; the other holds the
// edges [E, ...] (forward: edges summed into nodes; backward: the reverse).
enum class SegmentSide { destination_is_nodes, destination_is_edges };

// The checks that segment_sum_forward and _backward share: float rows of one
// width, offsets i32[N + 1], dtypes and devices. Data flows from source to
// destination. Returns E.
int64_t check_segment_sum(const char* op, Named destination, Named source, const Tensor& offsets, SegmentSide side) {
  require_defined(op, {{destination.name, &destination.tensor}, {source.name, &source.tensor}, {"offsets", &offsets}});
  require_float_rows(op, destination.name, destination.tensor);
  require_float_rows(op, source.name, source.tensor);
  const bool destination_is_nodes = side == SegmentSide::destination_is_nodes;
  const Named& nodes = destination_is_nodes ? destination : source;
  const Named& edges = destination_is_nodes ? source : destination;
  const int64_t edge_count = edges.tensor.rows();
  require_fits_i32(op, "edge", edge_count);
  require_rows_like(op, edges.name, edges.tensor, edge_count, nodes.name, nodes.tensor);
  require_index(op, "offsets", offsets, nodes.tensor.rows() + 1);
  require_float_pair(op, source.tensor, destination.tensor);
  require_same_device(op, destination.tensor, {&source.tensor, &offsets});
  return edge_count;
}

}  // namespace

void gather_rows_forward(Tensor& out, const Tensor& x, const Tensor& index) {
  const char* op = "gather_rows_forward";
  require_defined(op, {{"out", &out}, {"x", &x}, {"index", &index}});
  require_float_rows(op, "x", x);
  require(index.dtype() == DType::i32 && index.dim() == 1, op, "index must be i32[E]; got " + index.describe());
  const int64_t edges = index.numel();
  require_rows_like(op, "out", out, edges, "x", x);
  require_float_pair(op, x, out);
  require_same_device(op, x, {&out, &index});
  if (!index_checked(index, x.rows())) {
    const Tensor scratch = cuda::allocate_scratch(x.device(), cuda::index_check_scratch_bytes());
    const OpScope scope(OpFamily::index_check, op, x.device(), traffic::check_index_values(index));
    if (runs_on_cuda(x)) GC_CUDA_RUN(op, cuda::check_index_values(index, x.rows(), op, "index", scratch));
    else if (runs_on_cpu(x)) cpu::check_index_values(index, x.rows(), op, "index");
  }
  const OpScope scope(OpFamily::gather, op, x.device(), traffic::gather_rows_forward(out, x, index));
  if (runs_on_cuda(x)) GC_CUDA_RUN(op, cuda::gather_rows_forward(out, x, index));
  else if (runs_on_cpu(x)) cpu::gather_rows_forward(out, x, index);
}

void gather_rows_backward(Tensor& grad_x, const Tensor& grad_out, const Tensor& order, const Tensor& offsets) {
  const char* op = "gather_rows_backward";
  require_defined(op, {{"grad_x", &grad_x}, {"grad_out", &grad_out}, {"order", &order}, {"offsets", &offsets}});
  require_float_rows(op, "grad_x", grad_x);
  require_float_rows(op, "grad_out", grad_out);
  const int64_t nodes = grad_x.rows(), edges = grad_out.rows();
  require_fits_i32(op, "edge", edges);
  require_rows_like(op, "grad_out", grad_out, edges, "grad_x", grad_x);
  require_index(op, "order", order, edges);
  require_index(op, "offsets", offsets, nodes + 1);
  require_float_pair(op, grad_out, grad_x);
  require_same_device(op, grad_x, {&grad_out, &order, &offsets});
  if (!offsets_checked(offsets, edges) || !index_checked(order, edges)) {
    const Tensor scratch = cuda::allocate_scratch(grad_x.device(), cuda::index_check_scratch_bytes());
    const OpScope scope(OpFamily::index_check, op, grad_x.device(),
                        traffic::check_offsets_and_order(offsets, order));
    if (runs_on_cuda(grad_x)) {
      GC_CUDA_RUN(op, cuda::check_offsets(offsets, edges, op, scratch));
      GC_CUDA_RUN(op, cuda::check_index_values(order, edges, op, "order", scratch));
    } else if (runs_on_cpu(grad_x)) {
      cpu::check_offsets(offsets, edges, op);
      cpu::check_index_values(order, edges, op, "order");
    }
  }
  const OpScope scope(OpFamily::gather, op, grad_x.device(), traffic::sum_groups(grad_x, grad_out, true, false));
  if (runs_on_cuda(grad_x)) GC_CUDA_RUN(op, cuda::gather_rows_backward(grad_x, grad_out, order, offsets));
  else if (runs_on_cpu(grad_x)) cpu::gather_rows_backward(grad_x, grad_out, order, offsets);
}

void add_gathered_rows(Tensor& out, const Tensor& base, const Tensor& s, const Tensor& s_index, const Tensor& r,
                       const Tensor& r_index) {
  const char* op = "add_gathered_rows";
  require_defined(op, {{"out", &out}, {"base", &base}, {"s", &s}, {"s_index", &s_index}, {"r", &r}, {"r_index", &r_index}});
  require_float_rows(op, "out", out);
  require_float_rows(op, "s", s);
  require_float_rows(op, "r", r);
  const int64_t edges = out.rows();
  require_fits_i32(op, "edge", edges);
  require(base.shape() == out.shape(), op, "base must have out's shape " + out.describe() + "; got " + base.describe());
  require_rows_like(op, "s", s, s.rows(), "out", out);
  require_rows_like(op, "r", r, r.rows(), "out", out);
  require_index(op, "s_index", s_index, edges);
  require_index(op, "r_index", r_index, edges);
  for (const Tensor* t : {&base, &s, &r})
    require(t->dtype() == out.dtype(), op, "one float dtype expected: out is " + out.describe() + ", got " + t->describe());
  require_same_device(op, out, {&base, &s, &s_index, &r, &r_index});
  if (!index_checked(s_index, s.rows()) || !index_checked(r_index, r.rows())) {
    const Tensor scratch = cuda::allocate_scratch(out.device(), cuda::index_check_scratch_bytes());
    for (const auto& [index, bound, name] :
         {std::make_tuple(&s_index, s.rows(), "s_index"), std::make_tuple(&r_index, r.rows(), "r_index")}) {
      if (index_checked(*index, bound)) continue;
      const OpScope scope(OpFamily::index_check, op, out.device(), traffic::check_index_values(*index));
      if (runs_on_cuda(out)) GC_CUDA_RUN(op, cuda::check_index_values(*index, bound, op, name, scratch));
      else if (runs_on_cpu(out)) cpu::check_index_values(*index, bound, op, name);
    }
  }
  if (out.numel() == 0) return;
  const OpScope scope(OpFamily::gather, op, out.device(), traffic::add_gathered_rows(out));
  if (runs_on_cuda(out)) GC_CUDA_RUN(op, cuda::add_gathered_rows(out, base, s, s_index, r, r_index));
  else if (runs_on_cpu(out)) cpu::add_gathered_rows(out, base, s, s_index, r, r_index);
}

void index_add_rows(Tensor& acc, const Tensor& x, const Tensor& rows) {
  const char* op = "index_add_rows";
  require_defined(op, {{"acc", &acc}, {"x", &x}, {"rows", &rows}});
  require_float_rows(op, "acc", acc);
  require_float_rows(op, "x", x);
  require(rows.dtype() == DType::i32 && rows.dim() == 1, op, "rows must be i32[U]; got " + rows.describe());
  require_rows_like(op, "x", x, rows.numel(), "acc", acc);
  require(x.dtype() == acc.dtype(), op, "acc and x must have one dtype; got " + acc.describe() + " and " + x.describe());
  require_same_device(op, acc, {&x, &rows});
  if (!index_checked(rows, acc.rows())) {
    const Tensor scratch = cuda::allocate_scratch(acc.device(), cuda::index_check_scratch_bytes());
    const OpScope scope(OpFamily::index_check, op, acc.device(), traffic::check_index_values(rows));
    if (runs_on_cuda(acc)) GC_CUDA_RUN(op, cuda::check_index_values(rows, acc.rows(), op, "rows", scratch));
    else if (runs_on_cpu(acc)) cpu::check_index_values(rows, acc.rows(), op, "rows");
  }
  if (x.numel() == 0) return;
  const OpScope scope(OpFamily::gather, op, acc.device(), traffic::index_add_rows(acc, x, rows));
  if (runs_on_cuda(acc)) GC_CUDA_RUN(op, cuda::index_add_rows(acc, x, rows));
  else if (runs_on_cpu(acc)) cpu::index_add_rows(acc, x, rows);
}

void segment_sum_forward(Tensor& out, const Tensor& x, const Tensor& offsets, bool accumulate) {
  const char* op = "segment_sum_forward";
  const int64_t edges = check_segment_sum(op, {"out", out}, {"x", x}, offsets, SegmentSide::destination_is_nodes);
  if (!offsets_checked(offsets, edges)) {
    const Tensor scratch = cuda::allocate_scratch(out.device(), cuda::index_check_scratch_bytes());
    const OpScope scope(OpFamily::index_check, op, out.device(), traffic::check_offsets(offsets));
    if (runs_on_cuda(out)) GC_CUDA_RUN(op, cuda::check_offsets(offsets, edges, op, scratch));
    else if (runs_on_cpu(out)) cpu::check_offsets(offsets, edges, op);
  }
  const OpScope scope(OpFamily::segment_sum, op, out.device(), traffic::sum_groups(out, x, false, accumulate));
  if (runs_on_cuda(out)) GC_CUDA_RUN(op, cuda::segment_sum_forward(out, x, offsets, accumulate));
  else if (runs_on_cpu(out)) cpu::segment_sum_forward(out, x, offsets, accumulate);
}

void segment_sum_backward(Tensor& grad_x, const Tensor& grad_out, const Tensor& offsets, const Tensor& addend) {
  const char* op = "segment_sum_backward";
  const int64_t edges =
      check_segment_sum(op, {"grad_x", grad_x}, {"grad_out", grad_out}, offsets, SegmentSide::destination_is_edges);
  if (addend.defined()) {
    require(addend.shape() == grad_x.shape() && addend.dtype() == grad_x.dtype(), op,
            "addend must have grad_x's shape and dtype " + grad_x.describe() + "; got " + addend.describe());
    require_same_device(op, grad_x, {&addend});
  }
  if (!offsets_checked(offsets, edges)) {
    const Tensor scratch = cuda::allocate_scratch(grad_x.device(), cuda::index_check_scratch_bytes());
    const OpScope scope(OpFamily::index_check, op, grad_x.device(), traffic::check_offsets(offsets));
    if (runs_on_cuda(grad_x)) GC_CUDA_RUN(op, cuda::check_offsets(offsets, edges, op, scratch));
    else if (runs_on_cpu(grad_x)) cpu::check_offsets(offsets, edges, op);
  }
  const OpScope scope(OpFamily::segment_sum, op, grad_x.device(),
                      traffic::segment_sum_backward(grad_x, grad_out, addend.defined()));
  if (runs_on_cuda(grad_x)) GC_CUDA_RUN(op, cuda::segment_sum_backward(grad_x, grad_out, offsets, addend));
  else if (runs_on_cpu(grad_x)) cpu::segment_sum_backward(grad_x, grad_out, offsets, addend);
}

bool index_checked(const Tensor& index, int64_t bound) {
  if (!index.defined() || !index.storage()) return false;
  const Storage::Checked& c = index.storage()->checked();
  return c.index_bound >= 0 && c.index_bound <= bound;
}

bool offsets_checked(const Tensor& offsets, int64_t edges) {
  if (!offsets.defined() || !offsets.storage()) return false;
  const Storage::Checked& c = offsets.storage()->checked();
  return c.offsets_edges == edges && c.offsets_start == offsets.offset() && c.offsets_count == offsets.numel();
}

void check_graph_index(const Tensor& index, int64_t bound, const char* what) {
  require_defined(what, {{"index", &index}});
  require(index.dtype() == DType::i32 && index.dim() == 1, what, "index must be i32[E]; got " + index.describe());
  require(bound >= 0, what, "the bound must be >= 0; got " + std::to_string(bound));
  require(index.offset() == 0 && static_cast<size_t>(index.numel()) * 4 == index.storage()->bytes(), what,
          "a graph index is checked whole, not through a view");
  const Tensor scratch = cuda::allocate_scratch(index.device(), cuda::index_check_scratch_bytes());
  {
    const OpScope scope(OpFamily::index_check, what, index.device(), traffic::check_index_values(index));
    if (runs_on_cuda(index)) GC_CUDA_RUN(what, cuda::check_index_values(index, bound, what, "index", scratch));
    else if (runs_on_cpu(index)) cpu::check_index_values(index, bound, what, "index");
  }
  index.storage()->checked().index_bound = bound;
}

void check_graph_offsets(const Tensor& offsets, int64_t edges, const char* what) {
  require_defined(what, {{"offsets", &offsets}});
  require(offsets.dtype() == DType::i32 && offsets.dim() == 1 && offsets.numel() >= 1, what,
          "offsets must be i32[N + 1]; got " + offsets.describe());
  const Tensor scratch = cuda::allocate_scratch(offsets.device(), cuda::index_check_scratch_bytes());
  {
    const OpScope scope(OpFamily::index_check, what, offsets.device(), traffic::check_offsets(offsets));
    if (runs_on_cuda(offsets)) GC_CUDA_RUN(what, cuda::check_offsets(offsets, edges, what, scratch));
    else if (runs_on_cpu(offsets)) cpu::check_offsets(offsets, edges, what);
  }
  Storage::Checked& c = offsets.storage()->checked();
  c.offsets_start = offsets.offset();
  c.offsets_count = offsets.numel();
  c.offsets_edges = edges;
}

void build_csr(Tensor& order, Tensor& offsets, const Tensor& index, int64_t num_nodes) {
  const char* op = "build_csr";
  require_defined(op, {{"order", &order}, {"offsets", &offsets}, {"index", &index}});
  require(num_nodes >= 0, op, "num_nodes must be >= 0; got " + std::to_string(num_nodes));
  require_fits_i32(op, "node", num_nodes);
  require(index.dtype() == DType::i32 && index.dim() == 1, op, "index must be i32[E]; got " + index.describe());
  const int64_t edges = index.numel();
  require_fits_i32(op, "edge", edges);
  require_index(op, "order", order, edges);
  require_index(op, "offsets", offsets, num_nodes + 1);
  require_same_device(op, index, {&order, &offsets});
  require(index.device() != Device::cuda, op,
          "builds graphs on the host: pass cpu tensors and copy them to the gpu; got " + index.describe());
  if (index.device() == Device::meta) return;
  cpu::check_index_values(index, num_nodes, op, "index");
  cpu::build_csr(order, offsets, index, num_nodes);
}

}  // namespace gc::kernels
