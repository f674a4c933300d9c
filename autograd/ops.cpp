// ops.cpp: forward and backward of every differentiable op, side by side (the
// graph ops, gathers and segment sums, are in graph_ops.cpp).
// Convention: input gradients of intermediate values are assigned through
// ctx.add_grad (which sums when a value is used twice); parameter gradients are
// accumulated in place into their f32 buffers (ctx.grad_buffer).
#include "autograd/ops.h"

#include <stdexcept>

#include "autograd/op_util.h"
#include "autograd/precision.h"
#include "kernels/elementwise.h"
#include "kernels/layernorm.h"
#include "kernels/linear.h"
#include "kernels/loss.h"
#include "kernels/reduce.h"
#include "runtime/communicator.h"
#include "runtime/profile.h"

namespace gc {

using op_util::make_node;
using op_util::require;
using op_util::shapes;

namespace {

Tensor gemm_workspace(Device device, int64_t m, int64_t n, int64_t k) {
  const size_t bytes = kernels::gemm_workspace_bytes(device, m, n, k);
  if (bytes == 0) return Tensor();
  MemoryScope category(Category::workspace);
  return Tensor::empty({static_cast<int64_t>((bytes + 3) / 4)}, DType::i32, device);
}

}  // namespace

double& linear_flops() {
  static double flops = 0;
  return flops;
}

double scalar_value(const Tensor& t) {
  if (t.is_meta()) {  // no value; the read-back a real run makes, in the modelled cost
    const OpScope scope(OpFamily::copy_cast, "item", Device::meta,
                        copy_cost(Device::cpu, Device::meta, static_cast<double>(dtype_size(t.dtype()))));
    return 0.0;
  }
  return t.item(0);
}

// ---- linear ----------------------------------------------------------------------

Var linear(const Var& x, const Var& W, const Var& b, int64_t w_row_start, bool bias_gradient_by_consumer) {
  require(x.value().dim() == 2 && W.value().dim() == 2 && w_row_start >= 0 &&
              w_row_start + x.shape()[1] <= W.shape()[0],
          "linear: x [R, K] and W [>= K, N] expected, got " + shapes(x, W));
  require(!b.defined() || (b.value().dim() == 1 && b.shape()[0] == W.shape()[1]),
          "linear: bias of " + std::to_string(W.shape()[1]) + " elements expected");
  const int64_t rows = x.shape()[0], in = x.shape()[1], out_features = W.shape()[1];
  const bool whole = (w_row_start == 0 && in == W.shape()[0]);
  const DType compute = x.dtype();
  Tensor w_full = (W.is_leaf() && W.dtype() != compute) ? compute_copy(W, compute) : W.value();
  Tensor w = whole ? w_full : w_full.slice_rows(w_row_start, in);
  Tensor y = Tensor::empty({rows, out_features}, compute, x.device());
  {
    Tensor ws = gemm_workspace(x.device(), rows, out_features, in);
    Tensor bias = b.defined() ? b.value() : Tensor();
    kernels::linear_forward(y, x.value(), w, bias, ws);
  }
  linear_flops() += 2.0 * static_cast<double>(rows) * static_cast<double>(in) * static_cast<double>(out_features);
  const bool record = should_record({&x, &W, &b});
  Var out = Var::make_output(y, record);
  if (!record) return out;
  auto node = make_node("linear");
  node->add_input(x);
  node->add_input(W);
  if (b.defined()) node->add_input(b);
  node->add_output(out);
  const bool need_x = x.requires_grad(), need_w = W.requires_grad();
  node->save(need_w ? x.value() : Tensor());
  node->save(need_x ? w : Tensor());
  const bool has_bias = b.defined();
  // Summed by the consumer's backward (silu or layernorm given b) on cuda.
  const bool bias_elsewhere = has_bias && bias_gradient_by_consumer && kernels::bias_gradient_folds(x.device());
  node->set_backward([need_x, need_w, has_bias, bias_elsewhere, rows, in, out_features, whole,
                      w_row_start](BackwardContext& ctx) {
    const Tensor& grad_y = ctx.grad_output();  // [R, N]
    if (need_x) {
      const Tensor& w_used = ctx.saved(1);
      // On cuda, a gradient x already holds (a residual's) gains the product in
      // the product's pass (one rounding): in place when x owns it, else in a copy,
      // so the bits do not depend on who else holds the tensor (remat's seeds do).
      // (Ownership is asked first: holding `pending` would itself share the tensor.)
      const bool in_product = kernels::accumulate_in_product(grad_y.device());
      Tensor grad_x = in_product ? ctx.owned_grad(0, grad_y.dtype()) : Tensor();
      const bool owned = grad_x.defined();
      bool into_pending = owned;
      if (in_product && !owned) {
        const Tensor pending = ctx.pending_grad(0);
        into_pending = pending.defined() && pending.dtype() == grad_y.dtype();
        if (into_pending) grad_x = pending.clone();
      }
      if (!into_pending) grad_x = Tensor::empty({rows, in}, grad_y.dtype(), grad_y.device());
      Tensor ws = gemm_workspace(grad_y.device(), rows, in, out_features);
      if (into_pending)
        kernels::linear_backward_input_accumulate(grad_x, grad_y, w_used, ws);
      else
        kernels::linear_backward_input(grad_x, grad_y, w_used, ws);
      linear_flops() += 2.0 * static_cast<double>(rows) * static_cast<double>(in) * static_cast<double>(out_features);
      if (into_pending && !owned) ctx.replace_grad(0, grad_x);
      if (!into_pending) ctx.add_grad(0, grad_x);
    }
    bool bias_done = bias_elsewhere;
    if (need_w) {
      Tensor grad_w = whole ? ctx.grad_buffer(1) : ctx.grad_buffer(1).slice_rows(w_row_start, in);
      Tensor ws = gemm_workspace(grad_y.device(), in, out_features, rows);
      if (has_bias && !bias_done && ctx.needs_grad(2) &&
          kernels::bias_gradient_in_weight_product(grad_y.device(), grad_w.dtype())) {
        // On cuda the bias gradient follows the weight product inside one op, its
        // row sums' partials in the product's workspace (its buffer is made while
        // the workspace is held: the dry run makes it there too).
        kernels::linear_backward_weight_and_bias(grad_w, ctx.grad_buffer(2), ctx.saved(0), grad_y, ws);
        bias_done = true;
      } else {
        kernels::linear_backward_weight(grad_w, ctx.saved(0), grad_y, ws);
      }
      linear_flops() += 2.0 * static_cast<double>(rows) * static_cast<double>(in) * static_cast<double>(out_features);
    }
    if (has_bias && ctx.needs_grad(2) && !bias_done) kernels::sum_rows(ctx.grad_buffer(2), grad_y, true);
  });
  record_node(std::move(node));
  return out;
}

// ---- elementwise ---------------------------------------------------------------------

Var add(const Var& a, const Var& b) {
  require(a.shape() == b.shape(), "add: shapes differ: " + shapes(a, b));
  Tensor y = Tensor::empty(a.shape(), a.dtype(), a.device());
  kernels::add_forward(y, a.value(), b.value());
  const bool record = should_record({&a, &b});
  Var out = Var::make_output(y, record);
  if (!record) return out;
  auto node = make_node("add");
  node->add_input(a);
  node->add_input(b);
  node->add_output(out);
  const DType b_dtype = b.dtype();
  node->set_backward([b_dtype](BackwardContext& ctx) {
    const Tensor& g = ctx.grad_output();
    if (ctx.needs_grad(0)) ctx.add_grad(0, g);
    if (ctx.needs_grad(1)) {
      if (g.dtype() == b_dtype) {
        ctx.add_grad(1, g);
      } else {
        Tensor gb = Tensor::empty(g.shape(), b_dtype, g.device());
        kernels::cast(gb, g);
        ctx.add_grad(1, gb);
      }
    }
  });
  record_node(std::move(node));
  return out;
}

Var mul(const Var& a, const Var& b) {
  require(a.shape() == b.shape(), "mul: shapes differ: " + shapes(a, b));
  Tensor y = Tensor::empty(a.shape(), a.dtype(), a.device());
  kernels::mul_forward(y, a.value(), b.value());
  const bool record = should_record({&a, &b});
  Var out = Var::make_output(y, record);
  if (!record) return out;
  auto node = make_node("mul");
  node->add_input(a);
  node->add_input(b);
  node->add_output(out);
  node->save(b.requires_grad() ? a.value() : Tensor());
  node->save(a.requires_grad() ? b.value() : Tensor());
  const DType a_dtype = a.dtype(), b_dtype = b.dtype();
  node->set_backward([a_dtype, b_dtype](BackwardContext& ctx) {
    const Tensor& g = ctx.grad_output();
    if (ctx.needs_grad(0)) {
      Tensor ga = Tensor::empty(g.shape(), a_dtype, g.device());
      kernels::mul_forward(ga, g, ctx.saved(1));
      ctx.add_grad(0, ga);
    }
    if (ctx.needs_grad(1)) {
      Tensor gb = Tensor::empty(g.shape(), b_dtype, g.device());
      kernels::mul_forward(gb, g, ctx.saved(0));
      ctx.add_grad(1, gb);
    }
  });
  record_node(std::move(node));
  return out;
}

Var scale(const Var& x, double factor) {
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  kernels::scale_forward(y, x.value(), factor);
  const bool record = should_record({&x});
  Var out = Var::make_output(y, record);
  if (!record) return out;
  auto node = make_node("scale");
  node->add_input(x);
  node->add_output(out);
  node->set_backward([factor](BackwardContext& ctx) {
    const Tensor& g = ctx.grad_output();
    Tensor gx = Tensor::empty(g.shape(), g.dtype(), g.device());
    kernels::scale_forward(gx, g, factor);
    ctx.add_grad(0, gx);
  });
  record_node(std::move(node));
  return out;
}

namespace {

// Whether an op whose input x holds a linear's bias sums that bias's gradient
// (linear's bias_gradient_by_consumer decides the same on the same device).
bool folds_bias_of(const Var& x, const Var& bias, const char* op) {
  if (!bias.defined() || !kernels::bias_gradient_folds(x.device())) return false;
  require(x.value().dim() == 2 && bias.value().dim() == 1 && bias.shape()[0] == x.shape()[1],
          std::string(op) + ": a bias of x's " + (x.value().dim() == 2 ? std::to_string(x.shape()[1]) : "?") +
              " columns expected, got " + shapes(x, bias));
  require(accumulation_dtype(bias.dtype()) == accumulation_dtype(x.dtype()),
          std::string(op) + ": the bias's gradient must be x's accumulation dtype, got " + shapes(x, bias));
  return bias.requires_grad();
}

}  // namespace

Var silu(const Var& x, const Var& bias_in_x) {
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  kernels::silu_forward(y, x.value());
  const bool record = should_record({&x});
  Var out = Var::make_output(y, record);
  if (!record) return out;
  const bool fold = folds_bias_of(x, bias_in_x, "silu");
  auto node = make_node("silu");
  node->add_input(x);
  if (fold) node->add_input(bias_in_x);
  node->add_output(out);
  node->save(x.value());
  node->set_backward([fold](BackwardContext& ctx) {
    const Tensor& g = ctx.grad_output();
    const Tensor& xs = ctx.saved(0);
    Tensor gx = Tensor::empty(xs.shape(), xs.dtype(), xs.device());
    if (fold && ctx.needs_grad(1))
      kernels::silu_backward_bias(gx, ctx.grad_buffer(1), g, xs);  // and the bias's gradient, in the same pass
    else
      kernels::silu_backward(gx, g, xs);
    ctx.add_grad(0, gx);
  });
  record_node(std::move(node));
  return out;
}

Var sigmoid(const Var& x) {
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  kernels::sigmoid_forward(y, x.value());
  const bool record = should_record({&x});
  Var out = Var::make_output(y, record);
  if (!record) return out;
  auto node = make_node("sigmoid");
  node->add_input(x);
  node->add_output(out);
  node->save(y);
  node->set_backward([](BackwardContext& ctx) {
    const Tensor& g = ctx.grad_output();
    const Tensor& ys = ctx.saved(0);
    Tensor gx = Tensor::empty(ys.shape(), ys.dtype(), ys.device());
    kernels::sigmoid_backward(gx, g, ys);
    ctx.add_grad(0, gx);
  });
  record_node(std::move(node));
  return out;
}

// ---- LayerNorm -------------------------------------------------------------------------

Var layernorm(const Var& x, const Var& gamma, const Var& beta, double eps, const Var& bias_in_x) {
  require(x.value().dim() == 2, "layernorm: x [R, C] expected, got " + x.value().describe());
  const int64_t rows = x.shape()[0], cols = x.shape()[1];
  require(gamma.value().numel() == cols && beta.value().numel() == cols,
          "layernorm: gamma and beta of " + std::to_string(cols) + " elements expected");
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  Tensor mean = Tensor::empty({rows}, accumulation_dtype(x.dtype()), x.device());
  Tensor rstd = Tensor::empty({rows}, accumulation_dtype(x.dtype()), x.device());
  kernels::layernorm_forward(y, mean, rstd, x.value(), gamma.value(), beta.value(), eps);
  const bool record = should_record({&x, &gamma, &beta});
  Var out = Var::make_output(y, record);
  if (!record) return out;
  const bool fold = folds_bias_of(x, bias_in_x, "layernorm");
  auto node = make_node("layernorm");
  node->add_input(x);
  node->add_input(gamma);
  node->add_input(beta);
  if (fold) node->add_input(bias_in_x);
  node->add_output(out);
  node->save(x.value());
  node->save(mean);
  node->save(rstd);
  node->save(gamma.value());
  node->set_backward([cols, fold](BackwardContext& ctx) {
    const Tensor& g = ctx.grad_output();
    const Tensor& xs = ctx.saved(0);
    Tensor gx = Tensor::empty(xs.shape(), xs.dtype(), xs.device());
    const DType sd = accumulation_dtype(xs.dtype());
    Tensor scratch_gamma, scratch_beta;
    Tensor* gg = &scratch_gamma;
    Tensor* gb = &scratch_beta;
    if (ctx.needs_grad(1)) gg = &ctx.grad_buffer(1);
    else scratch_gamma = Tensor::zeros({cols}, sd, xs.device());
    if (ctx.needs_grad(2)) gb = &ctx.grad_buffer(2);
    else scratch_beta = Tensor::zeros({cols}, sd, xs.device());
    if (fold && ctx.needs_grad(3))  // and the bias's gradient, in the same pass
      kernels::layernorm_backward_bias(gx, *gg, *gb, ctx.grad_buffer(3), g, xs, ctx.saved(1), ctx.saved(2),
                                       ctx.saved(3));
    else
      kernels::layernorm_backward(gx, *gg, *gb, g, xs, ctx.saved(1), ctx.saved(2), ctx.saved(3));
    if (ctx.needs_grad(0)) ctx.add_grad(0, gx);
  });
  record_node(std::move(node));
  return out;
}

// ---- shape ops -----------------------------------------------------------------------------------

Var concat_cols(const std::vector<Var>& parts) {
  require(!parts.empty(), "concat_cols: no parts");
  int64_t cols = 0;
  std::vector<Tensor> values;
  std::vector<int64_t> widths;
  std::vector<DType> dtypes;
  for (const Var& p : parts) {
    require(p.value().dim() == 2 && p.shape()[0] == parts[0].shape()[0],
            "concat_cols: parts must be [R, Ci] with the same R, got " + shapes(parts[0], p));
    cols += p.shape()[1];
    values.push_back(p.value());
    widths.push_back(p.shape()[1]);
    dtypes.push_back(p.dtype());
  }
  Tensor y = Tensor::empty({parts[0].shape()[0], cols}, parts[0].dtype(), parts[0].device());
  kernels::concat_cols(y, values);
  bool record = false;
  for (const Var& p : parts) record = record || should_record({&p});
  Var out = Var::make_output(y, record);
  if (!record) return out;
  auto node = make_node("concat_cols");
  for (const Var& p : parts) node->add_input(p);
  node->add_output(out);
  node->set_backward([widths, dtypes](BackwardContext& ctx) {
    const Tensor& g = ctx.grad_output();
    std::vector<Tensor> grads;
    for (size_t i = 0; i < widths.size(); ++i)
      grads.push_back(Tensor::empty({g.shape()[0], widths[i]}, g.dtype(), g.device()));
    kernels::split_cols(grads, g);
    for (size_t i = 0; i < widths.size(); ++i) {
      if (!ctx.needs_grad(i)) continue;
      if (dtypes[i] == g.dtype()) {
        ctx.add_grad(i, grads[i]);
      } else {
        Tensor cast_grad = Tensor::empty(grads[i].shape(), dtypes[i], g.device());
        kernels::cast(cast_grad, grads[i]);
        ctx.add_grad(i, cast_grad);
      }
    }
  });
  record_node(std::move(node));
  return out;
}

std::vector<Var> split_cols(const Var& x, const std::vector<int64_t>& widths) {
  int64_t total = 0;
  for (int64_t w : widths) total += w;
  require(x.value().dim() == 2 && total == x.shape()[1],
          "split_cols: widths sum to " + std::to_string(total) + " but x is " + x.value().describe());
  std::vector<Tensor> parts;
  for (int64_t w : widths) parts.push_back(Tensor::empty({x.shape()[0], w}, x.dtype(), x.device()));
  kernels::split_cols(parts, x.value());
  const bool record = should_record({&x});
  std::vector<Var> outs;
  for (Tensor& p : parts) outs.push_back(Var::make_output(p, record));
  if (!record) return outs;
  auto node = make_node("split_cols");
  node->add_input(x);
  for (Var& o : outs) node->add_output(o);
  const Shape x_shape = x.shape();
  node->set_backward([x_shape, n = widths.size()](BackwardContext& ctx) {
    std::vector<Tensor> grads;
    for (size_t i = 0; i < n; ++i) grads.push_back(ctx.grad_output(i));
    Tensor gx = Tensor::empty(x_shape, grads[0].dtype(), grads[0].device());
    kernels::concat_cols(gx, grads);
    ctx.add_grad(0, gx);
  });
  record_node(std::move(node));
  return outs;
}

Var cast(const Var& x, DType dtype) {
  Tensor y = Tensor::empty(x.shape(), dtype, x.device());
  kernels::cast(y, x.value());
  const bool record = should_record({&x});
  Var out = Var::make_output(y, record);
  if (!record) return out;
  auto node = make_node("cast");
  node->add_input(x);
  node->add_output(out);
  const DType x_dtype = x.dtype();
  node->set_backward([x_dtype](BackwardContext& ctx) {
    const Tensor& g = ctx.grad_output();
    Tensor gx = Tensor::empty(g.shape(), x_dtype, g.device());
    kernels::cast(gx, g);
    ctx.add_grad(0, gx);
  });
  record_node(std::move(node));
  return out;
}

Var concat_rows(const std::vector<Var>& parts) {
  require(!parts.empty(), "concat_rows: no parts");
  int64_t rows = 0;
  std::vector<int64_t> counts;
  for (const Var& p : parts) {
    require(p.value().dim() == 2 && p.shape()[1] == parts[0].shape()[1] && p.dtype() == parts[0].dtype(),
            "concat_rows: parts must be [Ri, C] of one dtype, got " + shapes(parts[0], p));
    counts.push_back(p.shape()[0]);
    rows += p.shape()[0];
  }
  Tensor y = Tensor::empty({rows, parts[0].shape()[1]}, parts[0].dtype(), parts[0].device());
  int64_t start = 0;
  for (const Var& p : parts) {
    Tensor region = y.slice_rows(start, p.shape()[0]);
    region.copy_from(p.value());
    start += p.shape()[0];
  }
  bool record = false;
  for (const Var& p : parts) record = record || should_record({&p});
  Var out = Var::make_output(y, record);
  if (!record) return out;
  auto node = make_node("concat_rows");
  for (const Var& p : parts) node->add_input(p);
  node->add_output(out);
  node->set_backward([counts](BackwardContext& ctx) {
    const Tensor& g = ctx.grad_output();
    int64_t first = 0;
    for (size_t i = 0; i < counts.size(); ++i) {
      if (ctx.needs_grad(i)) ctx.add_grad(i, g.slice_rows(first, counts[i]).clone());
      first += counts[i];
    }
  });
  record_node(std::move(node));
  return out;
}

Var exchange_rows(const Var& send, Communicator& comm, const std::vector<int64_t>& send_counts,
                  const std::vector<int64_t>& recv_counts) {
  require(send.value().dim() == 2, "exchange_rows: send [R, C] expected, got " + send.value().describe());
  int64_t rows = 0;
  for (int64_t c : recv_counts) rows += c;
  Tensor y;
  {
    MemoryScope category(Category::communication);
    y = Tensor::empty({rows, send.shape()[1]}, send.dtype(), send.device());
  }
  {
    OpScope op(OpFamily::communication, "exchange_rows", send.value().device());
    comm.all_to_all(send.value(), send_counts, y, recv_counts);
  }
  const bool record = should_record({&send});
  Var out = Var::make_output(y, record);
  if (!record) return out;
  auto node = make_node("exchange_rows");
  node->add_input(send);
  node->add_output(out);
  const Shape send_shape = send.shape();
  Communicator* c = &comm;
  node->set_backward([c, send_shape, send_counts, recv_counts](BackwardContext& ctx) {
    const Tensor& g = ctx.grad_output();
    Tensor gs;
    {
      MemoryScope category(Category::communication);
      gs = Tensor::empty(send_shape, g.dtype(), g.device());
    }
    OpScope op(OpFamily::communication, "exchange_rows", g.device());
    c->all_to_all(g, recv_counts, gs, send_counts);
    ctx.add_grad(0, gs);
  });
  record_node(std::move(node));
  return out;
}

Var slice_rows(const Var& x, int64_t start, int64_t count) {
  Tensor y = x.value().slice_rows(start, count).clone();
  const bool record = should_record({&x});
  Var out = Var::make_output(y, record);
  if (!record) return out;
  auto node = make_node("slice_rows");
  node->add_input(x);
  node->add_output(out);
  const Shape x_shape = x.shape();
  node->set_backward([x_shape, start, count](BackwardContext& ctx) {
    const Tensor& g = ctx.grad_output();
    Tensor gx = Tensor::zeros(x_shape, g.dtype(), g.device());
    Tensor region = gx.slice_rows(start, count);
    region.copy_from(g);
    ctx.add_grad(0, gx);
  });
  record_node(std::move(node));
  return out;
}

// ---- reductions and the loss ---------------------------------------------------------------------

namespace {
Var reduce_all(const Var& x, bool mean) {
  Tensor y = Tensor::empty({1}, accumulation_dtype(x.dtype()), x.device());
  if (mean) kernels::mean_all(y, x.value());
  else kernels::sum_all(y, x.value());
  const bool record = should_record({&x});
  Var out = Var::make_output(y, record);
  if (!record) return out;
  auto node = make_node(mean ? "mean_all" : "sum_all");
  node->add_input(x);
  node->add_output(out);
  const Shape x_shape = x.shape();
  const DType x_dtype = x.dtype();
  const double n = static_cast<double>(x.value().numel());
  node->set_backward([x_shape, x_dtype, mean, n](BackwardContext& ctx) {
    const double g = scalar_value(ctx.grad_output());
    Tensor gx = Tensor::empty(x_shape, x_dtype, ctx.grad_output().device());
    kernels::fill(gx, mean ? g / n : g);
    ctx.add_grad(0, gx);
  });
  record_node(std::move(node));
  return out;
}
}  // namespace

Var sum_all(const Var& x) { return reduce_all(x, false); }
Var mean_all(const Var& x) { return reduce_all(x, true); }

Var weighted_mse(const Var& pred, const Tensor& target, const Tensor& row_weight, const Tensor& col_weight) {
  require(pred.shape() == target.shape(), "weighted_mse: prediction " + pred.value().describe() + " vs target " +
                                              target.describe());
  Tensor loss = Tensor::empty({1}, accumulation_dtype(pred.dtype()), pred.device());
  kernels::weighted_mse_forward(loss, pred.value(), target, row_weight, col_weight);
  const bool record = should_record({&pred});
  Var out = Var::make_output(loss, record);
  if (!record) return out;
  auto node = make_node("weighted_mse");
  node->add_input(pred);
  node->add_output(out);
  node->save(pred.value());
  node->save(target);
  node->save(row_weight);
  node->save(col_weight);
  node->set_backward([](BackwardContext& ctx) {
    const Tensor& p = ctx.saved(0);
    Tensor gp = Tensor::empty(p.shape(), p.dtype(), p.device());
    kernels::weighted_mse_backward(gp, scalar_value(ctx.grad_output()), p, ctx.saved(1), ctx.saved(2),
                                   ctx.saved(3));
    ctx.add_grad(0, gp);
  });
  record_node(std::move(node));
  return out;
}

}  // namespace gc
