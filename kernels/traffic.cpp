// kernels/traffic.cpp: the cost model of kernels/traffic.h, op by op, each
// function beside the cuda code it describes (file named in its comment).
#include "kernels/traffic.h"

#include <algorithm>

#include "kernels/cuda/scratch.h"
#include "kernels/gemm_problem.h"

namespace gc::kernels::traffic {
namespace {

double size_of(DType d) { return static_cast<double>(dtype_size(d)); }
// The accumulation type of the cuda kernels (compute_t): f64 for f64, f32 otherwise.
double acc_size(DType d) { return d == DType::f64 ? 8.0 : 4.0; }

FlopKind gemm_kind(DType inputs) {
  if (inputs == DType::bf16 || inputs == DType::f16) return FlopKind::gemm_16bit;
  if (inputs == DType::f64) return FlopKind::gemm_f64;
  return FlopKind::gemm_f32;
}

// column_sums.h: per pass of at most kPassColumns columns, a partials kernel
// (writes sums x kRowGroups x width doubles) and a totals kernel (reads them).
OpCost column_sums(int sums, int64_t cols) {
  OpCost c;
  if (cols <= 0) return c;
  const int64_t passes = (cols + cuda::kPassColumns - 1) / cuda::kPassColumns;
  c.launches = 2 * passes;
  c.bytes = 2.0 * sums * cuda::kRowGroups * static_cast<double>(cols) * 8.0;
  return c;
}

// sum_rows of x [rows, cols] into out [cols].
OpCost row_sums(int64_t rows, int64_t cols, DType x, DType out, bool accumulate) {
  if (cols == 0) return OpCost();
  OpCost c = column_sums(1, cols);
  c.bytes += static_cast<double>(rows) * static_cast<double>(cols) * size_of(x) +
             static_cast<double>(cols) * size_of(out) * (accumulate ? 2 : 1);
  c.flops = static_cast<double>(rows) * static_cast<double>(cols);
  return c;
}

}  // namespace

// ---- elementwise.cu ----------------------------------------------------------------------

OpCost binary(const Tensor& out, const Tensor& a, const Tensor& b, double flops_per_element) {
  OpCost c;
  const double n = static_cast<double>(out.numel());
  if (n == 0) return c;
  c.launches = 1;
  c.bytes = n * (size_of(out.dtype()) + size_of(a.dtype()) + size_of(b.dtype()));
  c.flops = n * flops_per_element;
  return c;
}

OpCost unary(const Tensor& out, const Tensor& x, double flops_per_element) {
  OpCost c;
  const double n = static_cast<double>(out.numel());
  if (n == 0) return c;
  c.launches = 1;
  c.bytes = n * (size_of(out.dtype()) + size_of(x.dtype()));
  c.flops = n * flops_per_element;
  return c;
}

OpCost accumulate(const Tensor& acc, const Tensor& x) { return binary(acc, acc, x, 1); }

OpCost fill(const Tensor& x) {
  OpCost c;
  const double n = static_cast<double>(x.numel());
  if (n == 0) return c;
  c.launches = 1;
  c.bytes = n * size_of(x.dtype());
  return c;
}

// sigmoid (exp, add, divide) and the product rule: about 8 operations an element.
OpCost silu_backward(const Tensor& grad_x, const Tensor& grad_out, const Tensor& x) {
  return binary(grad_x, grad_out, x, 8);
}

OpCost silu_backward_bias(const Tensor& grad_x, const Tensor& grad_bias, const Tensor& grad_out, const Tensor& x) {
  if (x.numel() == 0) return OpCost();
  OpCost c = column_sums(1, x.size(1));  // the launches and the partials
  const OpCost silu = silu_backward(grad_x, grad_out, x);
  c.bytes += silu.bytes + 2.0 * static_cast<double>(grad_bias.numel()) * size_of(grad_bias.dtype());
  c.flops = silu.flops + static_cast<double>(x.numel());
  return c;
}

// y (1 - y) times the gradient: 3 operations an element.
OpCost sigmoid_backward(const Tensor& grad_x, const Tensor& grad_out, const Tensor& y) {
  return binary(grad_x, grad_out, y, 3);
}

// One cudaMemcpy2DAsync (device to device) per non-empty part.
OpCost column_copy(const Tensor& whole, const std::vector<Tensor>& parts) {
  OpCost c;
  if (whole.numel() == 0) return c;
  const double rows = static_cast<double>(whole.size(0));
  for (const Tensor& part : parts) {
    if (part.size(1) == 0) continue;
    c.launches += 1;
    c.bytes += 2.0 * rows * static_cast<double>(part.size(1)) * size_of(part.dtype());
  }
  return c;
}

// A memset of the flag, the kernel, and a blocking copy of the flag to the host.
OpCost all_finite(const Tensor& x) {
  OpCost c;
  const double n = static_cast<double>(x.numel());
  if (n == 0) return c;
  c.launches = 3;
  c.host_syncs = 1;
  c.bytes = n * size_of(x.dtype()) + 3 * 4.0;
  return c;
}

// ---- attention.cu ----------------------------------------------------------------------------

// logsumexp_kernel (a thread per node and head: its scores, the offsets, the statistic written),
// then, with values, weighted_sum_kernel (a thread per node and column: scores, values and the
// statistic read, the output written). exp, subtract, multiply-add: about 3 operations a term.
OpCost segment_softmax_sum_forward(const Tensor& out, const Tensor& logsumexp, const Tensor& scores,
                                   const Tensor& values, const Tensor& offsets) {
  OpCost c;
  const double nodes = static_cast<double>(out.size(0));
  if (nodes == 0) return c;
  const double score_bytes = static_cast<double>(scores.numel()) * size_of(scores.dtype());
  const double lse_bytes = static_cast<double>(logsumexp.numel()) * acc_size(scores.dtype());
  const double offset_bytes = static_cast<double>(offsets.numel()) * 4.0;
  c.launches = 1;
  c.bytes = score_bytes + offset_bytes + lse_bytes;
  c.flops = 3.0 * static_cast<double>(scores.numel());
  if (values.size(1) == 0) return c;
  c.launches += 1;
  c.bytes += score_bytes + offset_bytes + lse_bytes + static_cast<double>(values.numel()) * size_of(values.dtype()) +
             static_cast<double>(out.numel()) * size_of(out.dtype());
  c.flops += 3.0 * static_cast<double>(values.numel());
  return c;
}

// score_gradient_kernel (a thread per node and head: the output gradient, scores, values,
// statistic and offsets read, the score gradients written), then, with values,
// value_gradient_kernel (a thread per node and column: the output gradient, scores, statistic
// and offsets read, the value gradients written).
OpCost segment_softmax_sum_backward(const Tensor& grad_out, const Tensor& scores, const Tensor& values,
                                    const Tensor& logsumexp, const Tensor& offsets) {
  OpCost c;
  if (scores.size(0) == 0 || grad_out.size(0) == 0) return c;
  const double score_bytes = static_cast<double>(scores.numel()) * size_of(scores.dtype());
  const double value_bytes = static_cast<double>(values.numel()) * size_of(values.dtype());
  const double grad_out_bytes = static_cast<double>(grad_out.numel()) * size_of(grad_out.dtype());
  const double lse_bytes = static_cast<double>(logsumexp.numel()) * acc_size(scores.dtype());
  const double offset_bytes = static_cast<double>(offsets.numel()) * 4.0;
  c.launches = 1;
  c.bytes = grad_out_bytes + 2 * score_bytes + value_bytes + lse_bytes + offset_bytes;
  c.flops = 5.0 * static_cast<double>(values.numel()) + 3.0 * static_cast<double>(scores.numel());
  if (values.size(1) == 0) return c;
  c.launches += 1;
  c.bytes += grad_out_bytes + score_bytes + lse_bytes + offset_bytes + value_bytes;
  c.flops += 3.0 * static_cast<double>(values.numel());
  return c;
}

// ---- index.cu ------------------------------------------------------------------------------

// reset_verdict_kernel, find_bad_index_kernel, and the verdict copied back (blocking).
OpCost check_index_values(const Tensor& index) {
  OpCost c;
  const double n = static_cast<double>(index.numel());
  if (n == 0) return c;
  c.launches = 3;
  c.host_syncs = 1;
  c.bytes = n * 4.0 + 2 * static_cast<double>(cuda::index_check_scratch_bytes());
  return c;
}

// reset_verdict_kernel, find_offsets_decrease_kernel, the verdict copied back.
OpCost check_offsets(const Tensor& offsets) {
  OpCost c;
  c.launches = 3;
  c.host_syncs = 1;
  c.bytes = static_cast<double>(offsets.numel()) * 4.0 + 2 * static_cast<double>(cuda::index_check_scratch_bytes());
  return c;
}

OpCost check_offsets_and_order(const Tensor& offsets, const Tensor& order) {
  OpCost c = check_offsets(offsets);
  const OpCost o = check_index_values(order);
  c.launches += o.launches;
  c.host_syncs += o.host_syncs;
  c.bytes += o.bytes;
  return c;
}

// gather_rows_kernel: each out row read from x by index (no reuse assumed).
OpCost gather_rows_forward(const Tensor& out, const Tensor& x, const Tensor& /*index*/) {
  OpCost c;
  if (out.numel() == 0) return c;
  const double edges = static_cast<double>(out.rows()), elements = static_cast<double>(out.numel());
  c.launches = 1;
  c.bytes = elements * (size_of(x.dtype()) + size_of(out.dtype())) + edges * 4.0;
  return c;
}

// add_gathered_rows_kernel: base read, a sender and a receiver row read per edge
// (in full, as gathers are counted), both indices, out written.
OpCost add_gathered_rows(const Tensor& out) {
  OpCost c;
  if (out.numel() == 0) return c;
  const double edges = static_cast<double>(out.rows()), elements = static_cast<double>(out.numel());
  c.launches = 1;
  c.bytes = 4 * elements * size_of(out.dtype()) + 2 * edges * 4.0;
  c.flops = 2 * elements;
  return c;
}

// index_add_rows_kernel: rows [U] once, x [U, C] read, the listed acc rows read
// and written; acc's other rows untouched.
OpCost index_add_rows(const Tensor& /*acc*/, const Tensor& x, const Tensor& /*rows*/) {
  OpCost c;
  if (x.numel() == 0) return c;
  const double count = static_cast<double>(x.rows()), elements = static_cast<double>(x.numel());
  c.launches = 1;
  c.bytes = 3 * elements * size_of(x.dtype()) + count * 4.0;
  c.flops = elements;
  return c;
}

// sum_groups_kernel: out [N, C] (read too when accumulating), in [E, C], the
// order [E] when given, offsets [N + 1].
OpCost sum_groups(const Tensor& out, const Tensor& in, bool with_order, bool accumulate) {
  OpCost c;
  if (out.numel() == 0) return c;
  const double nodes = static_cast<double>(out.rows()), edges = static_cast<double>(in.rows());
  const double out_elements = static_cast<double>(out.numel()), in_elements = static_cast<double>(in.numel());
  c.launches = 1;
  c.bytes = out_elements * size_of(out.dtype()) * (accumulate ? 2 : 1) + in_elements * size_of(in.dtype()) +
            (with_order ? edges * 4.0 : 0.0) + (nodes + 1) * 4.0;
  c.flops = in_elements;
  return c;
}

// broadcast_groups_kernel: each node row read once (its warp's re-reads hit the
// cache), written to each of its edges.
OpCost segment_sum_backward(const Tensor& grad_x, const Tensor& grad_out, bool with_addend) {
  OpCost c;
  if (grad_x.numel() == 0) return c;
  const double nodes = static_cast<double>(grad_out.rows());
  c.launches = 1;
  if (with_addend) {  // the addend read too
    c.bytes += static_cast<double>(grad_x.numel()) * size_of(grad_x.dtype());
    c.flops = static_cast<double>(grad_x.numel());
  }
  c.bytes += static_cast<double>(grad_x.numel()) * size_of(grad_x.dtype()) +
            static_cast<double>(grad_out.numel()) * size_of(grad_out.dtype()) + (nodes + 1) * 4.0;
  return c;
}

// ---- linear.cu -------------------------------------------------------------------------------

OpCost gemm(int64_t m, int64_t n, int64_t k, DType a, DType b, DType c_dtype, bool reads_c, bool has_bias,
            DType bias) {
  OpCost c;
  if (m <= 0 || n <= 0) return c;
  const double md = static_cast<double>(m), nd = static_cast<double>(n), kd = static_cast<double>(k);
  const double c_bytes = md * nd * size_of(c_dtype);
  // An f32 bias under a 16-bit C: round_bias_kernel first (f32 read, C's dtype
  // written), then the products read the rounded bias.
  OpCost rounding;
  if (has_bias && rounds_bias_first(c_dtype, bias)) {
    rounding.launches = 1;
    rounding.bytes = nd * (4 + size_of(c_dtype));
    rounding.serial_bytes = rounding.bytes;
    bias = c_dtype;
  }
  const double bias_bytes = has_bias ? nd * size_of(bias) : 0.0;
  if (k == 0) {  // gemm_epilogue_kernel alone: C = beta C + bias
    c.launches = 1 + rounding.launches;
    c.bytes = c_bytes * (reads_c ? 2 : 1) + bias_bytes + rounding.bytes;
    c.flops = has_bias ? md * nd : 0;
    return c;
  }
  c.launches = 1 + rounding.launches;
  c.serial_bytes = rounding.serial_bytes;
  c.kind = gemm_kind(a);
  c.flops = 2 * md * nd * kd;
  c.bytes = md * kd * size_of(a) + kd * nd * size_of(b) + c_bytes * (reads_c ? 2 : 1);
  c.bytes += rounding.bytes;
  if (has_bias && bias_in_gemm_epilogue(c_dtype, bias)) {  // cuBLASLt's bias epilogue: the bias read in C's pass
    c.bytes += bias_bytes;
    c.flops += md * nd;
  } else if (has_bias) {  // gemm_epilogue_kernel after cuBLAS: C read, bias added, C written
    c.launches += 1;
    c.serial_bytes += 2 * c_bytes + bias_bytes;
    c.bytes += 2 * c_bytes + bias_bytes;
    c.flops += md * nd;
  }
  return c;
}

OpCost gemm_with_bias_gradient(int64_t m, int64_t n, int64_t k, DType a, DType b, DType c_dtype,
                               const Tensor& grad_b, const Tensor& grad_y) {
  OpCost c = gemm(m, n, k, a, b, c_dtype, true, false, c_dtype);
  const OpCost after = sum_rows(grad_b, grad_y, true);  // a pass after the product's
  c.launches += after.launches;
  c.bytes += after.bytes;
  c.flops += after.flops;
  c.serial_bytes += after.bytes;
  return c;
}

// ---- layernorm.cu ------------------------------------------------------------------------------

// One kernel: x read (its three loops over a row hit the cache), out written,
// gamma and beta read, the mean and rstd of each row written.
OpCost layernorm_forward(const Tensor& x, const Tensor& gamma) {
  OpCost c;
  const int64_t cols = x.dim() > 0 ? x.size(-1) : 0;
  if (cols <= 0 || x.numel() == 0) return c;
  const double rows = static_cast<double>(x.numel() / cols), elements = static_cast<double>(x.numel());
  c.launches = 1;
  c.bytes = 2 * elements * size_of(x.dtype()) + 2 * static_cast<double>(cols) * size_of(gamma.dtype()) +
            2 * rows * acc_size(x.dtype());
  c.flops = 8 * elements;
  return c;
}

// The parameter gradients sum in the cpu's order through partials [2,
// ceil(R / 256), C] in the accumulation type, written once and read once by the
// fold, which reads and writes grad_gamma and grad_beta. Rows of at most
// kLayerNormFusedColumns: the fused kernel (x and grad_out read once, grad_x
// written, the statistics and gamma read, the partials written), then the fold:
// 2 launches. Wider rows: the grad_x kernel (the same reads and writes), the
// partials kernel (grad_out and x read again, the statistics once per chunk of
// kLayerNormFusedColumns columns), the fold: 3 launches.
// With input_bias, rows of at most kLayerNormFusedColumns add a third sum (grad_x's
// columns, its rows read back from the cache right after the block stored them:
// no memory traffic counted) to the partials and the fold; wider rows add
// sum_rows over grad_x.
OpCost layernorm_backward(const Tensor& x, const Tensor& gamma, bool input_bias) {
  OpCost c;
  const int64_t cols = x.dim() > 0 ? x.size(-1) : 0;
  if (cols <= 0 || x.numel() == 0) return c;
  const double rows = static_cast<double>(x.numel() / cols), elements = static_cast<double>(x.numel());
  const double es = size_of(x.dtype()), acc = acc_size(x.dtype());
  const bool fused = cols <= cuda::kLayerNormFusedColumns;
  const double sums = input_bias && fused ? 3.0 : 2.0;
  const double partials = sums * static_cast<double>(cuda::layernorm_row_blocks(x.numel() / cols)) *
                          static_cast<double>(cols);
  c.bytes = 3 * elements * es + 2 * rows * acc + static_cast<double>(cols) * size_of(gamma.dtype()) +
            2 * partials * acc + sums * 2 * static_cast<double>(cols) * acc;
  c.flops = 16 * elements + partials + (input_bias && fused ? elements : 0);
  if (fused) {
    c.launches = 2;
  } else {
    const double chunks = static_cast<double>((cols + cuda::kLayerNormFusedColumns - 1) / cuda::kLayerNormFusedColumns);
    c.launches = 3;
    c.bytes += 2 * elements * es + chunks * 2 * rows * acc;
    if (input_bias) {
      const OpCost after = row_sums(x.numel() / cols, cols, x.dtype(), accumulation_dtype(x.dtype()), true);
      c.launches += after.launches;
      c.bytes += after.bytes;
      c.flops += after.flops;
    }
  }
  return c;
}

// ---- reduce.cu, loss.cu, optim.cu ----------------------------------------------------------------

// reduce_common.h: partial_sums_kernel (kSumBlocks doubles written) and
// finish_sum_kernel (read back, one value written); both launch for n = 0 too.
OpCost whole_sum(const Tensor& x, double flops_per_element) {
  OpCost c;
  const double n = static_cast<double>(x.numel());
  c.launches = 2;
  c.bytes = n * size_of(x.dtype()) + 2 * cuda::kSumBlocks * 8.0 + acc_size(x.dtype());
  c.flops = n * flops_per_element;
  return c;
}

// reduce_common.h: launch_fixed_order_sums, two launches for each kSumsPerLaunch
// tensors of one dtype (reduce.cu groups them by dtype); each tensor costs what
// whole_sum counts for it alone (its elements, its partials written and read,
// its total), as the partials of a launch are its tensors' side by side.
OpCost sum_squares_many(const std::vector<Tensor>& xs) {
  OpCost c;
  std::vector<std::pair<DType, int64_t>> per_dtype;  // tensors of each dtype
  for (const Tensor& x : xs) {
    const OpCost one = whole_sum(x, 2);
    c.bytes += one.bytes;
    c.flops += one.flops;
    auto it = std::find_if(per_dtype.begin(), per_dtype.end(), [&](const auto& d) { return d.first == x.dtype(); });
    if (it == per_dtype.end()) per_dtype.push_back({x.dtype(), 1});
    else ++it->second;
  }
  for (const auto& group : per_dtype)
    c.launches += 2 * ((group.second + cuda::kSumsPerLaunch - 1) / cuda::kSumsPerLaunch);
  return c;
}

OpCost sum_rows(const Tensor& out, const Tensor& x, bool accumulate) {
  if (out.numel() == 0) return OpCost();
  return row_sums(x.size(0), x.size(1), x.dtype(), out.dtype(), accumulate);
}

OpCost weighted_mse_forward(const Tensor& pred, const Tensor& target, const Tensor& row_weight) {
  OpCost c;
  const double n = static_cast<double>(pred.numel());
  c.launches = 2;
  c.bytes = n * (size_of(pred.dtype()) + size_of(target.dtype())) +
            static_cast<double>(row_weight.numel()) * size_of(row_weight.dtype()) + 2 * cuda::kSumBlocks * 8.0 +
            acc_size(pred.dtype());
  c.flops = 4 * n;
  return c;
}

OpCost weighted_mse_backward(const Tensor& pred, const Tensor& target, const Tensor& row_weight) {
  OpCost c;
  const double n = static_cast<double>(pred.numel());
  if (n == 0) return c;
  c.launches = 1;
  c.bytes = n * (2 * size_of(pred.dtype()) + size_of(target.dtype())) +
            static_cast<double>(row_weight.numel()) * size_of(row_weight.dtype());
  c.flops = 4 * n;
  return c;
}

// adamw_kernel: param, m and v read and written, grad read.
OpCost adamw_step(const Tensor& param) {
  OpCost c;
  const double n = static_cast<double>(param.numel());
  if (n == 0) return c;
  c.launches = 1;
  c.bytes = 7 * n * size_of(param.dtype());
  c.flops = 15 * n;
  return c;
}

}  // namespace gc::kernels::traffic
