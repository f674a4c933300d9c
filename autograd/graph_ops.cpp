// graph_ops.cpp: forward and backward of the graph ops (autograd/ops.h): gathers
// of node rows to the edges, the fused edge sum, segment sums and the segment
// softmax. A gather's backward sums each node's edges over the CSR of its index;
// an edge block's gathers list the rows they touch (IndexCsr::rows), so their
// backward adds those rows only.
#include <string>

#include "autograd/op_util.h"
#include "autograd/ops.h"
#include "kernels/attention.h"
#include "kernels/index.h"

namespace gc {

using op_util::make_node;
using op_util::require;
using op_util::shapes;

namespace {

void require_gather_csr(const char* op, const Var& x, const IndexCsr& csr) {
  require(x.value().dim() == 2, std::string(op) + ": x [N, C] expected, got " + x.value().describe());
  require(csr.num_nodes == x.shape()[0], std::string(op) + ": index built for " + std::to_string(csr.num_nodes) +
                                             " nodes, x has " + std::to_string(x.shape()[0]) + " rows");
  const int64_t groups = csr.rows.defined() ? csr.rows.numel() : csr.num_nodes;
  require(csr.offsets.numel() == groups + 1, std::string(op) + ": offsets " + csr.offsets.describe() + " for " +
                                                 std::to_string(groups) + (csr.rows.defined() ? " listed rows" : " nodes"));
}

// What a gather's backward needs: the grouping of its edges and x's shape.
struct GatherGrad {
  Shape x_shape;
  DType x_dtype;
  Tensor order, offsets, rows;
  GatherGrad(const Var& x, const IndexCsr& csr)
      : x_shape(x.shape()), x_dtype(x.dtype()), order(csr.order), offsets(csr.offsets), rows(csr.rows) {}
  // Input `input` of the node gets the sums of g's rows over each node's edges:
  // into the listed rows only when the CSR lists them, else a full [N, C] gradient.
  void add_to(BackwardContext& ctx, size_t input, const Tensor& g) const {
    if (!ctx.needs_grad(input)) return;
    if (rows.defined()) {
      Tensor part = Tensor::empty({rows.numel(), x_shape[1]}, x_dtype, g.device());
      kernels::gather_rows_backward(part, g, order, offsets);
      ctx.add_grad_rows(input, part, rows);
      return;
    }
    Tensor gx = Tensor::empty(x_shape, x_dtype, g.device());
    kernels::gather_rows_backward(gx, g, order, offsets);
    ctx.add_grad(input, gx);
  }
};

}  // namespace

Var add_gathered(const Var& base, const Var& s, const IndexCsr& senders, const Var& r, const IndexCsr& receivers) {
  require_gather_csr("add_gathered (senders)", s, senders);
  require_gather_csr("add_gathered (receivers)", r, receivers);
  Tensor y = Tensor::empty(base.shape(), base.dtype(), base.device());
  kernels::add_gathered_rows(y, base.value(), s.value(), senders.index, r.value(), receivers.index);
  const bool record = should_record({&base, &s, &r});
  Var out = Var::make_output(y, record);
  if (!record) return out;
  auto node = make_node("add_gathered");
  node->add_input(base);
  node->add_input(s);
  node->add_input(r);
  node->add_output(out);
  node->set_backward([sg = GatherGrad(s, senders), rg = GatherGrad(r, receivers)](BackwardContext& ctx) {
    const Tensor& g = ctx.grad_output();
    if (ctx.needs_grad(0)) ctx.add_grad(0, g);
    sg.add_to(ctx, 1, g);
    rg.add_to(ctx, 2, g);
  });
  record_node(std::move(node));
  return out;
}

Var gather_rows(const Var& x, const IndexCsr& csr) {
  require_gather_csr("gather_rows", x, csr);
  const int64_t edges = csr.index.numel();
  Tensor y = Tensor::empty({edges, x.shape()[1]}, x.dtype(), x.device());
  kernels::gather_rows_forward(y, x.value(), csr.index);
  const bool record = should_record({&x});
  Var out = Var::make_output(y, record);
  if (!record) return out;
  auto node = make_node("gather_rows");
  node->add_input(x);
  node->add_output(out);
  node->set_backward([gg = GatherGrad(x, csr)](BackwardContext& ctx) { gg.add_to(ctx, 0, ctx.grad_output()); });
  record_node(std::move(node));
  return out;
}

Var segment_sum(const Var& x, const Tensor& offsets, DType out_dtype) {
  require(x.value().dim() == 2, "segment_sum: x [E, C] expected, got " + x.value().describe());
  const int64_t nodes = offsets.numel() - 1;
  Tensor y = Tensor::empty({nodes, x.shape()[1]}, out_dtype, x.device());
  kernels::segment_sum_forward(y, x.value(), offsets, false);
  const bool record = should_record({&x});
  Var out = Var::make_output(y, record);
  if (!record) return out;
  auto node = make_node("segment_sum");
  node->add_input(x);
  node->add_output(out);
  const Shape x_shape = x.shape();
  const DType x_dtype = x.dtype();
  node->set_backward([x_shape, x_dtype, offsets](BackwardContext& ctx) {
    const Tensor& g = ctx.grad_output();
    Tensor gx = Tensor::empty(x_shape, x_dtype, g.device());
    // x already holding a contribution (a processor's residual) gains this one in
    // the same pass: no broadcast rows written and read back by an accumulate.
    const Tensor pending = ctx.pending_grad(0);
    if (pending.defined() && pending.dtype() == x_dtype) {
      kernels::segment_sum_backward(gx, g, offsets, pending);
      ctx.replace_grad(0, gx);
      return;
    }
    kernels::segment_sum_backward(gx, g, offsets);
    ctx.add_grad(0, gx);
  });
  record_node(std::move(node));
  return out;
}

Var segment_softmax_sum(const Var& scores, const Var& values, const Tensor& offsets) {
  require(scores.value().dim() == 2 && values.value().dim() == 2,
          "segment_softmax_sum: scores [E, H] and values [E, C] expected, got " + shapes(scores, values));
  const int64_t nodes = offsets.numel() - 1;
  Tensor y = Tensor::empty({nodes, values.shape()[1]}, values.dtype(), values.device());
  Tensor lse = Tensor::empty({nodes, scores.shape()[1]}, accumulation_dtype(scores.dtype()), scores.device());
  kernels::segment_softmax_sum_forward(y, lse, scores.value(), values.value(), offsets);
  const bool record = should_record({&scores, &values});
  Var out = Var::make_output(y, record);
  if (!record) return out;
  auto node = make_node("segment_softmax_sum");
  node->add_input(scores);
  node->add_input(values);
  node->add_output(out);
  node->save(scores.value());
  node->save(values.value());
  node->save(lse);
  node->set_backward([offsets](BackwardContext& ctx) {
    const Tensor& g = ctx.grad_output();
    const Tensor &s = ctx.saved(0), &v = ctx.saved(1);
    Tensor gs = Tensor::empty(s.shape(), s.dtype(), s.device());
    Tensor gv = Tensor::empty(v.shape(), v.dtype(), v.device());
    kernels::segment_softmax_sum_backward(gs, gv, g, s, v, ctx.saved(2), offsets);
    if (ctx.needs_grad(0)) ctx.add_grad(0, gs);
    if (ctx.needs_grad(1)) ctx.add_grad(1, gv);
  });
  record_node(std::move(node));
  return out;
}

}  // namespace gc
