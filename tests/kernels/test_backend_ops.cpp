// test_backend_ops.cpp: the backend table. One row per op: the dtypes it
// claims, a few odd shapes, the scratch its cuda path requests per call
// (kernels/cuda/scratch.h), and a function that runs the op on a given device from
// seeded inputs and names its outputs, each with how another backend must match
// the cpu: bitwise where both devices perform the same roundings in the same order,
// else within test_util.h's tolerance. For every row, dtype and shape:
//
//   Meta: every output has the cpu's shape and dtype; the op requests nothing from
//         the allocator on the cpu nor on meta standing for the cpu, and on meta
//         standing for cuda exactly its scratch, allocated and freed in each call
//         under the op's label in category workspace (the dry run's promise).
//   Cuda: every output matches the cpu's as the row says, and the op requests what
//         its dry run requests. Skips without a GPU; runs on cudasim in `make test`,
//         where the launches and host synchronizations the case makes are also
//         checked against the cost model's (kernels/traffic.h).
//
// Adding an op: one row in op_table(). The per-op math (f64 references, finite
// differences) stays in test_<family>.cpp; checks that are not one op against
// the cpu (grids beyond one launch, bad indices, cuBLAS's refusals, the tiny
// GraphCast) are in test_cuda_ops.cpp, those of the scratch itself in
// test_cuda_scratch.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "kernels/attention.h"
#include "kernels/cuda/scratch.h"
#include "kernels/elementwise.h"
#include "kernels/index.h"
#include "kernels/layernorm.h"
#include "kernels/linear.h"
#include "kernels/loss.h"
#include "kernels/optim.h"
#include "kernels/reduce.h"
#include "runtime/profile.h"
#include "tests/test_util.h"

#ifdef GC_CUDA_SIM
#include "sim_counters.h"
#endif

namespace gc {
namespace {

using test::MetaTargetGuard;

using test::Tolerance;
using test::tolerance_for;

// ---- the harness -----------------------------------------------------------------------------

// How an output on another device must match the cpu's.
struct Match {
  enum class Kind { bitwise, within, repeats } kind = Kind::bitwise;
  Tolerance tol{0, 0};
  std::vector<double> term_scale;  // within: relative to max(|ref|, term_scale) (long sums that cancel)
  std::string first;               // repeats: the bits of this earlier result of the same run
};

Match bitwise() { return {}; }
Match within(Tolerance tol) { return {Match::Kind::within, tol, {}, ""}; }
Match within_sums(Tolerance tol, std::vector<double> term_scale) {
  return {Match::Kind::within, tol, std::move(term_scale), ""};
}
// Determinism: the op run again on the same device gives the same bits.
Match repeats(const std::string& first) { return {Match::Kind::repeats, {0, 0}, {}, first}; }

struct Output {
  std::string name;
  Tensor value;  // a cpu copy (shapes only on meta)
  Match match;
};

// An allocator event as the dry-run contract sees it.
struct Request {
  AllocEventKind kind;
  int64_t bytes;
  Category category;
  std::string label;
  bool operator==(const Request& o) const {
    return kind == o.kind && bytes == o.bytes && category == o.category && label == o.label;
  }
};

std::ostream& operator<<(std::ostream& os, const Request& r) {
  return os << alloc_event_name(r.kind) << " " << r.bytes << " B " << category_name(r.category) << " '" << r.label
            << "'";
}

Tensor host_copy(const Tensor& t) { return t.device() == Device::meta ? t : t.to(Device::cpu).clone(); }

// One run of an op on one device: a row's function builds the inputs through it
// (seeded values, or shapes only on meta), calls the op through call(), which
// records the allocator requests the op makes, and names the outputs.
class OpRun {
 public:
  OpRun(const std::string& op, Device device, DType dtype, const Shape& shape)
      : op(op), device(device), dtype(dtype), shape(shape) {}

  const std::string op;
  const Device device;
  const DType dtype;
  const Shape shape;

  int64_t dim(size_t i) const { return shape.at(i); }
  bool has_values() const { return device != Device::meta; }

  // Inputs, in category input: seeded uniform values in [-scale, scale]...
  Tensor random(const Shape& s, DType d, uint64_t seed, double scale = 1.0) const {
    MemoryScope scope(Category::input);
    if (!has_values()) return Tensor::empty(s, d, device);
    return test::random_tensor(s, d, seed, scale, device);
  }
  // ...a copy of a tensor computed on the cpu...
  Tensor copy_of(const Tensor& cpu_value) const {
    MemoryScope scope(Category::input);
    if (!has_values()) return Tensor::empty(cpu_value.shape(), cpu_value.dtype(), device);
    return cpu_value.to(device).clone();
  }
  Tensor filled(const Shape& s, DType d, double value) const {
    return copy_of(Tensor::from_doubles(std::vector<double>(static_cast<size_t>(shape_numel(s)), value), s, d));
  }
  Tensor indices(const std::vector<int32_t>& values) const {
    const Shape s{static_cast<int64_t>(values.size())};
    return copy_of(values.empty() ? Tensor::empty(s, DType::i32) : Tensor::from_host(values.data(), s, DType::i32));
  }
  // ...and outputs, uninitialised (cudasim fills fresh device memory with NaNs).
  Tensor empty(const Shape& s, DType d) const {
    MemoryScope scope(Category::input);
    return Tensor::empty(s, d, device);
  }
  // The GEMM workspace of an m x n x k product on this device (meta: the target's).
  Tensor workspace(int64_t m, int64_t n, int64_t k) const {
    MemoryScope scope(Category::input);
    const size_t bytes = kernels::gemm_workspace_bytes(device, m, n, k);
    return Tensor::empty({static_cast<int64_t>((bytes + 3) / 4)}, DType::i32, device);
  }

  // The op itself, once: the block allocations and frees it makes are recorded
  // (segment events left out: they depend on what earlier tests left in the cache).
  template <class Op>
  void call(Op&& run_op) {
    CachingAllocator& allocator = allocator_for(device);
    allocator.clear_trace();
    allocator.set_trace(true);
    {
      MemoryScope label(op);
      run_op();
    }
    allocator.set_trace(false);
    const std::vector<std::string> labels = allocator.trace_labels();
    for (const AllocEvent& e : allocator.trace())
      if (e.kind == AllocEventKind::alloc || e.kind == AllocEventKind::free)
        requests.push_back({e.kind, e.bytes, e.category, labels.at(e.label_id)});
    allocator.clear_trace();
    ++calls;
  }

  void output(const std::string& name, const Tensor& value, Match match) {
    outputs.push_back({name, host_copy(value), std::move(match)});
  }
  // A result kept only to be repeated (Match repeats), not compared with the cpu.
  void keep(const std::string& name, const Tensor& value) { kept.push_back({name, host_copy(value), {}}); }
  // A verdict as an output: i32 [1].
  static Tensor flag(bool value) {
    const int32_t v = value ? 1 : 0;
    return Tensor::from_host(&v, {1}, DType::i32);
  }

  std::vector<Output> outputs, kept;
  std::vector<Request> requests;
  int calls = 0;
};

struct OpRow {
  std::string name;
  std::vector<DType> dtypes;
  std::vector<Shape> shapes;  // what the dimensions mean is the row's (its comment says)
  std::function<size_t(const Shape&, DType)> cuda_scratch_bytes;  // per call; empty: none
  std::function<void(OpRun&)> run;
};

struct OpCase {
  const OpRow* row;
  DType dtype;
  Shape shape;
};

void PrintTo(const OpCase& c, std::ostream* os) {
  *os << c.row->name << " " << dtype_name(c.dtype) << " " << shape_string(c.shape);
}

std::string case_name(const ::testing::TestParamInfo<OpCase>& info) {
  std::string name = info.param.row->name + "_" + dtype_name(info.param.dtype) + "_";
  for (size_t i = 0; i < info.param.shape.size(); ++i)
    name += (i ? "x" : "") + std::to_string(info.param.shape[i]);
  return name;
}

OpRun run_case(const OpCase& c, Device device) {
  OpRun run(c.row->name, device, c.dtype, c.shape);
  c.row->run(run);
  return run;
}

// What the cuda path requests in `calls` calls: its scratch, allocated and freed
// in each, in category workspace under the op's label (small pool: the block is
// the rounded request).
std::vector<Request> cuda_requests(const OpCase& c, int calls) {
  const size_t scratch = c.row->cuda_scratch_bytes ? c.row->cuda_scratch_bytes(c.shape, c.dtype) : 0;
  if (scratch == 0) return {};
  const auto bytes = static_cast<int64_t>(round_request_bytes(scratch));
  std::vector<Request> requests;
  for (int i = 0; i < calls; ++i) {
    requests.push_back({AllocEventKind::alloc, bytes, Category::workspace, c.row->name});
    requests.push_back({AllocEventKind::free, bytes, Category::workspace, c.row->name});
  }
  return requests;
}

// Same dtype, shape and bytes (both on the host).
::testing::AssertionResult bitwise_equal(const Tensor& got, const Tensor& ref, const std::string& what) {
  if (got.dtype() != ref.dtype() || got.shape() != ref.shape())
    return ::testing::AssertionFailure() << what << ": " << got.describe() << " vs " << ref.describe();
  const size_t element_bytes = dtype_size(got.dtype());
  const auto* g = static_cast<const unsigned char*>(got.numel() ? got.data() : nullptr);
  const auto* r = static_cast<const unsigned char*>(ref.numel() ? ref.data() : nullptr);
  for (int64_t i = 0; i < got.numel(); ++i)
    if (std::memcmp(g + i * element_bytes, r + i * element_bytes, element_bytes) != 0)
      return ::testing::AssertionFailure() << what << ": first difference at element " << i << ": got " << got.item(i)
                                           << ", expected " << ref.item(i) << " (" << got.describe() << ")";
  return ::testing::AssertionSuccess();
}

const Output* find_output(const OpRun& run, const std::string& name) {
  for (const std::vector<Output>* list : {&run.outputs, &run.kept})
    for (const Output& o : *list)
      if (o.name == name) return &o;
  return nullptr;
}

// The results of one run that must repeat an earlier one do so, bit for bit.
void expect_repeats_hold(const OpRun& run) {
  for (const Output& o : run.outputs) {
    if (o.match.kind != Match::Kind::repeats) continue;
    const Output* first = find_output(run, o.match.first);
    ASSERT_NE(first, nullptr) << o.name << " repeats an unknown result " << o.match.first;
    EXPECT_TRUE(bitwise_equal(o.value, first->value, o.name + " on " + device_name(run.device)));
  }
}

// Every output of `got` matches the cpu's as the row says.
void expect_matches_cpu(const OpRun& got, const OpRun& cpu) {
  ASSERT_EQ(got.outputs.size(), cpu.outputs.size());
  expect_repeats_hold(got);
  for (size_t i = 0; i < cpu.outputs.size(); ++i) {
    const Output &g = got.outputs[i], &ref = cpu.outputs[i];
    ASSERT_EQ(g.name, ref.name);
    const std::string what = ref.name + " on " + device_name(got.device) + " vs cpu";
    switch (ref.match.kind) {
      case Match::Kind::repeats:
        break;
      case Match::Kind::bitwise:
        EXPECT_TRUE(bitwise_equal(g.value, ref.value, what));
        break;
      case Match::Kind::within:
        if (g.value.shape() != ref.value.shape() || g.value.dtype() != ref.value.dtype()) {
          ADD_FAILURE() << what << ": " << g.value.describe() << " vs " << ref.value.describe();
        } else if (ref.match.term_scale.empty()) {
          EXPECT_TRUE(test::all_close(g.value.to_doubles(), ref.value.to_doubles(), ref.match.tol, what));
        } else {
          EXPECT_TRUE(test::all_close_sum(g.value.to_doubles(), ref.value.to_doubles(), ref.match.term_scale,
                                          ref.match.tol, what));
        }
        break;
    }
  }
}

const std::vector<OpRow>& op_table();

std::vector<OpCase> op_cases() {
  std::vector<OpCase> cases;
  for (const OpRow& row : op_table())
    for (DType dtype : row.dtypes)
      for (const Shape& shape : row.shapes) cases.push_back({&row, dtype, shape});
  return cases;
}

// ---- the table ---------------------------------------------------------------------------------

const std::vector<DType> kFloats = {DType::f32, DType::bf16, DType::f16, DType::f64};

size_t whole_sum_scratch(const Shape&, DType) { return cuda::whole_sum_scratch_bytes(); }
size_t index_check_scratch(const Shape&, DType) { return cuda::index_check_scratch_bytes(); }

// Binary element ops: a in the row's dtype, b in f32; the result rounds once in
// the same compute type on both devices.
OpRow binary_row(const std::string& name, void (*op)(Tensor&, const Tensor&, const Tensor&)) {
  return {name, kFloats, {{1}, {33}, {2015}}, nullptr, [op](OpRun& r) {
            const int64_t n = r.dim(0);
            Tensor a = r.random({n}, r.dtype, 1), b = r.random({n}, DType::f32, 2, 3.0);
            Tensor out = r.empty({n}, r.dtype);
            r.call([&] { op(out, a, b); });
            r.output("out", out, bitwise());
            r.call([&] { op(a, a, a); });  // out aliasing both inputs
            r.output("a op a into a", a, bitwise());
          }};
}

// The sums over a whole tensor ([n] -> [1] in f32, f64 for f64), twice.
OpRow whole_sum_row(const std::string& name, void (*op)(Tensor&, const Tensor&), std::vector<Shape> shapes) {
  return {name, kFloats, std::move(shapes), whole_sum_scratch, [op](OpRun& r) {
            const int64_t n = r.dim(0);
            const DType out_dtype = accumulation_dtype(r.dtype);
            Tensor x = r.random({n}, r.dtype, 12);
            Tensor out = r.filled({1}, out_dtype, 5.0), again = r.filled({1}, out_dtype, 5.0);
            r.call([&] { op(out, x); });
            r.call([&] { op(again, x); });
            // Another order of the same sum; no element: exactly 0.
            r.output("out", out, n == 0 ? bitwise() : within(tolerance_for(out_dtype, static_cast<double>(n))));
            r.output("out again", again, repeats("out"));
          }};
}

// The float dtypes of the values of a graph op's nodes and edges: equal, or a
// 16-bit edge tensor with f32 nodes.
std::vector<std::pair<DType, DType>> node_and_edge_dtypes(DType d) {
  if (d == DType::bf16 || d == DType::f16) return {{d, d}, {DType::f32, d}};
  return {{d, d}};
}
std::string dtype_pair_name(std::pair<DType, DType> nodes_edges) {
  return std::string(dtype_name(nodes_edges.first)) + " nodes, " + dtype_name(nodes_edges.second) + " edges";
}

// 37 nodes and `edges` edges (shape {edges, cols} of the graph rows): node 5
// sends every third edge and node 7 receives every third (hubs), the last 3 nodes
// none; receivers sorted (their CSR order is the identity), senders grouped by a
// CSR built on the cpu.
struct Graph {
  int64_t nodes = 37, edges;
  std::vector<int32_t> senders, receivers;
  Tensor sender_order, sender_offsets, receiver_offsets;  // cpu
  explicit Graph(int64_t edge_count) : edges(edge_count) {
    uint64_t state = 12345;
    auto next = [&] {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      return static_cast<int64_t>(state >> 33);
    };
    for (int64_t e = 0; e < edges; ++e) {
      senders.push_back(static_cast<int32_t>(e % 3 == 0 ? 5 : next() % (nodes - 3)));
      receivers.push_back(static_cast<int32_t>(e % 3 == 1 ? 7 : next() % (nodes - 3)));
    }
    std::sort(receivers.begin(), receivers.end());
    auto index = [](const std::vector<int32_t>& v) {
      const Shape s{static_cast<int64_t>(v.size())};
      return v.empty() ? Tensor::empty(s, DType::i32) : Tensor::from_host(v.data(), s, DType::i32);
    };
    sender_order = Tensor::empty({edges}, DType::i32);
    sender_offsets = Tensor::empty({nodes + 1}, DType::i32);
    kernels::build_csr(sender_order, sender_offsets, index(senders), nodes);
    Tensor identity = Tensor::empty({edges}, DType::i32);
    receiver_offsets = Tensor::empty({nodes + 1}, DType::i32);
    kernels::build_csr(identity, receiver_offsets, index(receivers), nodes);
  }
};
const std::vector<Shape> kGraphShapes = {{0, 33}, {4, 3}, {301, 1}, {301, 31}, {301, 65}, {301, 200}};

// The operands of the weighted MSE for pred of the row's shape: target f32 (f64
// for f64), the row and column weights in the accumulation dtype.
struct LossInputs {
  Tensor pred, target, row_weight, col_weight;
  explicit LossInputs(const OpRun& r) {
    const DType w = accumulation_dtype(r.dtype);
    pred = r.random(r.shape, r.dtype, 15);
    target = r.random(r.shape, accumulation_dtype(r.dtype), 16);
    row_weight = r.random({r.dim(0)}, w, 17, 1.0);
    col_weight = r.random({r.dim(1)}, w, 18, 1.0);
  }
};
const std::vector<Shape> kLossShapes = {{1, 1}, {31, 5}, {33, 65}, {2015, 31}, {20011, 83}};

// LayerNorm over the last dimension; no row at all, a single column, rows wider
// than one warp's registers (700 > 512 columns: the separate grad_x kernel), a 3-d
// input, and rows of more 256-row blocks (the parameter gradients' work items)
// than 3 blocks of 8 warps take at once, with a short last block, for rows of one
// chunk and of three.
const std::vector<Shape> kLayerNormShapes = {{1, 1},  {0, 65},    {0, 700}, {33, 65},   {33, 700},
                                             {65, 31}, {3, 5, 33}, {7, 700}, {7001, 64}, {2049, 1100}};
int64_t layernorm_rows(const Shape& s) { return shape_numel(s) / s.back(); }

// LayerNorm's backward from the cpu's statistics on every device, so that only the
// backward differs: the cpu's values (cpu_*) and their copies on the run's device.
struct LayerNormBackwardInputs {
  int64_t cols, rows;
  DType stats;
  Tensor cpu_x, cpu_gamma, cpu_mean, cpu_rstd, cpu_grad_out, init_gamma, init_beta;
  Tensor x, gamma, mean, rstd, grad_out;
  explicit LayerNormBackwardInputs(const OpRun& r)
      : cols(r.shape.back()), rows(layernorm_rows(r.shape)), stats(accumulation_dtype(r.dtype)) {
    cpu_x = test::random_tensor(r.shape, r.dtype, 21, 2.0);
    cpu_gamma = test::random_tensor({cols}, stats, 22);
    const Tensor cpu_beta = test::random_tensor({cols}, stats, 23);
    Tensor cpu_out = Tensor::empty(r.shape, r.dtype);
    cpu_mean = Tensor::empty({rows}, stats);
    cpu_rstd = Tensor::empty({rows}, stats);
    kernels::layernorm_forward(cpu_out, cpu_mean, cpu_rstd, cpu_x, cpu_gamma, cpu_beta, 1e-5);
    cpu_grad_out = test::random_tensor(r.shape, r.dtype, 24);
    init_gamma = test::random_tensor({cols}, stats, 25);  // what grad_gamma and grad_beta accumulate onto
    init_beta = test::random_tensor({cols}, stats, 26);
    x = r.copy_of(cpu_x);
    gamma = r.copy_of(cpu_gamma);
    mean = r.copy_of(cpu_mean);
    rstd = r.copy_of(cpu_rstd);
    grad_out = r.copy_of(cpu_grad_out);
  }
};

// Linear shapes {rows, in, out}; in = 0 is a layer without input features (y = b).
const std::vector<Shape> kLinearShapes = {{1, 1, 1}, {33, 0, 31}, {33, 65, 31}, {65, 31, 33}, {3001, 129, 65}};

const std::vector<OpRow>& op_table() {
  static const std::vector<OpRow> table = {
      // ---- elementwise: shapes {n} (concat/split: {rows}) --------------------------------------
      binary_row("add_forward", kernels::add_forward),
      binary_row("mul_forward", kernels::mul_forward),
      {"scale_forward", kFloats, {{1}, {33}, {2015}}, nullptr,
       [](OpRun& r) {
         Tensor x = r.random({r.dim(0)}, r.dtype, 1), out = r.empty({r.dim(0)}, r.dtype);
         r.call([&] { kernels::scale_forward(out, x, -0.37); });
         r.output("out", out, bitwise());
       }},
      {"scale_inplace", kFloats, {{1}, {33}, {2015}}, nullptr,
       [](OpRun& r) {
         Tensor x = r.random({r.dim(0)}, r.dtype, 1, 2.0);
         r.call([&] { kernels::scale_inplace(x, 0.5); });
         r.output("x", x, bitwise());
       }},
      // acc += x with acc in the row's dtype and x f32, twice (a tensor used twice).
      {"accumulate", kFloats, {{1}, {33}, {2015}}, nullptr,
       [](OpRun& r) {
         Tensor acc = r.random({r.dim(0)}, r.dtype, 3), x = r.random({r.dim(0)}, DType::f32, 2, 3.0);
         for (int i = 0; i < 2; ++i) r.call([&] { kernels::accumulate(acc, x); });
         r.output("acc", acc, bitwise());
       }},
      {"fill", kFloats, {{1}, {65}}, nullptr,
       [](OpRun& r) {
         Tensor x = r.empty({r.dim(0)}, r.dtype);
         r.call([&] { kernels::fill(x, 0.1); });
         r.output("x", x, bitwise());
       }},
      // expf on the gpu differs from the host's by an ulp or two: a few roundings.
      {"silu_forward", kFloats, {{1}, {31}, {4097}}, nullptr,
       [](OpRun& r) {
         Tensor x = r.random({r.dim(0)}, r.dtype, 4, 6.0), out = r.empty({r.dim(0)}, r.dtype);
         r.call([&] { kernels::silu_forward(out, x); });
         r.output("out", out, within(tolerance_for(r.dtype, 4)));
       }},
      {"silu_backward", kFloats, {{1}, {31}, {4097}}, nullptr,
       [](OpRun& r) {
         Tensor x = r.random({r.dim(0)}, r.dtype, 4, 6.0), grad_out = r.random({r.dim(0)}, r.dtype, 5);
         Tensor grad_x = r.empty({r.dim(0)}, r.dtype);
         r.call([&] { kernels::silu_backward(grad_x, grad_out, x); });
         r.output("grad_x", grad_x, within(tolerance_for(r.dtype, 8)));
       }},
      // With the bias gradient (grad_x's rows summed into grad_b): shapes {rows, cols},
      // one pass of the column sums or two (1031 columns), no row. On each device
      // grad_x is silu_backward's and grad_b sum_rows' (accumulated), bit for bit.
      {"silu_backward_bias", kFloats, {{1, 1}, {0, 5}, {31, 33}, {2015, 31}, {37, 1031}, {4097, 16}},
       [](const Shape& s, DType) { return s[0] * s[1] == 0 ? size_t(0) : cuda::sum_rows_scratch_bytes(s[1]); },
       [](OpRun& r) {
         const int64_t rows = r.dim(0), cols = r.dim(1);
         const DType acc = accumulation_dtype(r.dtype);
         const Tensor cpu_x = test::random_tensor({rows, cols}, r.dtype, 4, 6.0);
         const Tensor cpu_grad_out = test::random_tensor({rows, cols}, r.dtype, 5);
         const Tensor cpu_init = test::random_tensor({cols}, acc, 6);
         const Tensor x = r.copy_of(cpu_x), grad_out = r.copy_of(cpu_grad_out);
         Tensor grad_x = r.empty({rows, cols}, r.dtype), grad_b = r.copy_of(cpu_init);
         r.call([&] { kernels::silu_backward_bias(grad_x, grad_b, grad_out, x); });
         // The two ops it stands for, on the same device (not traced: the row's scratch is per call).
         Tensor alone_x = r.empty({rows, cols}, r.dtype), alone_b = r.copy_of(cpu_init);
         kernels::silu_backward(alone_x, grad_out, x);
         if (rows * cols > 0) kernels::sum_rows(alone_b, alone_x, true);
         r.keep("silu_backward's grad_x", alone_x);
         r.keep("sum_rows of it", alone_b);
         // Against the cpu: SiLU's terms are a few roundings apart (expf), the sums relative to their terms.
         Tensor cpu_grad_x = Tensor::empty({rows, cols}, r.dtype);
         if (rows * cols > 0) kernels::silu_backward(cpu_grad_x, cpu_grad_out, cpu_x);
         const std::vector<double> gx = cpu_grad_x.to_doubles(), init = cpu_init.to_doubles();
         std::vector<double> term_scale(static_cast<size_t>(cols));
         for (int64_t c = 0; c < cols; ++c) {
           double scale = std::fabs(init[c]);
           for (int64_t row = 0; row < rows; ++row) scale += std::fabs(gx[row * cols + c]);
           term_scale[c] = scale;
         }
         r.output("grad_x", grad_x, within(tolerance_for(r.dtype, 8)));
         r.output("grad_b", grad_b,
                  within_sums(tolerance_for(r.dtype, static_cast<double>(rows + 8)), std::move(term_scale)));
         r.output("grad_x is silu_backward's", grad_x, repeats("silu_backward's grad_x"));
         r.output("grad_b is sum_rows'", grad_b, repeats("sum_rows of it"));
       }},
      {"sigmoid_forward", kFloats, {{1}, {31}, {4097}}, nullptr,
       [](OpRun& r) {
         Tensor x = r.random({r.dim(0)}, r.dtype, 4, 8.0), out = r.empty({r.dim(0)}, r.dtype);
         r.call([&] { kernels::sigmoid_forward(out, x); });
         r.output("out", out, within(tolerance_for(r.dtype, 4)));
       }},
      // From a stored output y in (0, 1): the same two products on both devices.
      {"sigmoid_backward", kFloats, {{1}, {31}, {4097}}, nullptr,
       [](OpRun& r) {
         Tensor y = r.random({r.dim(0)}, r.dtype, 4, 0.49), grad_out = r.random({r.dim(0)}, r.dtype, 5);
         Tensor grad_x = r.empty({r.dim(0)}, r.dtype);
         r.call([&] { kernels::sigmoid_backward(grad_x, grad_out, y); });
         r.output("grad_x", grad_x, bitwise());
       }},
      // From the row's dtype into every float dtype, on the specials first (signed
      // zeros, f16's limits and subnormals, overflow, infinities, NaN, ties), then
      // values that need rounding: the same bits as the host conversions.
      {"cast", kFloats, {{1}, {31}, {218}}, nullptr,
       [](OpRun& r) {
         const double inf = std::numeric_limits<double>::infinity();
         std::vector<double> values = {0.0,   -0.0, 1.0 / 3.0, 65504.0, 65520.0, 70000.0, 1e-5, 3e-7, 6e-8, 2e-8, 1e-40,
                                       1e300, -1e300, inf, -inf, std::numeric_limits<double>::quiet_NaN(),
                                       1.0 + 1.0 / 512 + 1e-12, 1.0 + 1.0 / 256};
         for (double v : test::random_values(200, 11, 3.0)) values.push_back(v);
         values.resize(static_cast<size_t>(r.dim(0)));
         const Tensor x = r.copy_of(Tensor::from_doubles(values, {r.dim(0)}, r.dtype));
         for (DType to : kFloats) {
           Tensor out = r.empty({r.dim(0)}, to);
           r.call([&] { kernels::cast(out, x); });
           r.output(std::string("to ") + dtype_name(to), out, bitwise());
         }
       }},
      // Parts of 1, 31, 0 and 33 columns.
      {"concat_cols", kFloats, {{1}, {31}, {65}}, nullptr,
       [](OpRun& r) {
         const int64_t rows = r.dim(0);
         std::vector<Tensor> parts;
         uint64_t seed = 6;
         for (int64_t cols : {1, 31, 0, 33}) parts.push_back(r.random({rows, cols}, r.dtype, seed++));
         Tensor whole = r.empty({rows, 65}, r.dtype);
         r.call([&] { kernels::concat_cols(whole, parts); });
         r.output("whole", whole, bitwise());
       }},
      {"split_cols", kFloats, {{1}, {31}, {65}}, nullptr,
       [](OpRun& r) {
         const int64_t rows = r.dim(0);
         const Tensor whole = r.random({rows, 65}, r.dtype, 10);
         std::vector<Tensor> parts;
         for (int64_t cols : {1, 31, 0, 33}) parts.push_back(r.empty({rows, cols}, r.dtype));
         r.call([&] { kernels::split_cols(parts, whole); });
         for (size_t i = 0; i < parts.size(); ++i) r.output("part " + std::to_string(i), parts[i], bitwise());
       }},
      // Finite values, then one infinity, minus infinity or NaN near the end.
      {"all_finite", kFloats, {{0}, {1}, {65}, {4097}},
       [](const Shape& s, DType) { return cuda::all_finite_scratch_bytes(s[0]); },
       [](OpRun& r) {
         const int64_t n = r.dim(0);
         const std::vector<double> values = test::random_values(static_cast<size_t>(n), 10);
         auto verdict = [&](const std::string& name, const std::vector<double>& v, bool expected) {
           const Tensor x = r.copy_of(Tensor::from_doubles(v, {n}, r.dtype));
           bool finite = !expected;
           r.call([&] { finite = kernels::all_finite(x); });
           if (r.has_values()) {
             EXPECT_EQ(finite, expected) << name << " on " << device_name(r.device);
           }
           r.output(name, OpRun::flag(finite), bitwise());
         };
         verdict("finite", values, true);
         if (n == 0) return;
         for (double bad : {std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity(),
                            std::numeric_limits<double>::quiet_NaN()}) {
           std::vector<double> with_bad = values;
           with_bad[static_cast<size_t>(std::min<int64_t>(4000, n - 1))] = bad;
           verdict("with " + std::to_string(bad), with_bad, false);
         }
       }},

      // ---- reductions ---------------------------------------------------------------------------
      whole_sum_row("sum_all", kernels::sum_all, {{0}, {1}, {33}, {65}, {2015}, {3000001}}),
      whole_sum_row("mean_all", kernels::mean_all, {{1}, {33}, {65}, {2015}, {3000001}}),
      whole_sum_row("sum_squares", kernels::sum_squares, {{0}, {1}, {33}, {65}, {2015}, {3000001}}),
      // sum_squares_many of {K, n}: K tensors, tensor k of n + 17 k elements, every
      // third one empty; with a 16-bit dtype every other one is f32 (two dtypes, one
      // launch group each). K beyond one launch's kSumsPerLaunch takes several.
      // Against the cpu as sum_squares is; on every device bit for bit what
      // sum_squares gives each tensor alone (run outside the call: its scratch is
      // sum_squares', not this op's).
      {"sum_squares_many", kFloats,
       {{0, 0}, {1, 0}, {1, 2015}, {4, 0}, {5, 65}, {2 * int64_t(cuda::kSumsPerLaunch) + 1, 33}},
       [](const Shape& s, DType) { return cuda::whole_sums_scratch_bytes(s[0]); },
       [](OpRun& r) {
         const int64_t count = r.dim(0), n = r.dim(1);
         const DType acc = accumulation_dtype(r.dtype);
         std::vector<Tensor> xs;
         int64_t longest = 0;
         for (int64_t k = 0; k < count; ++k) {
           const int64_t numel = k % 3 == 2 ? 0 : n + 17 * k;
           longest = std::max(longest, numel);
           xs.push_back(r.random({numel}, r.dtype != acc && k % 2 == 1 ? acc : r.dtype, 70 + static_cast<uint64_t>(k)));
         }
         Tensor out = r.filled({count}, acc, 5.0), alone = r.filled({count}, acc, 5.0);
         r.call([&] { kernels::sum_squares_many(out, xs); });
         for (int64_t k = 0; k < count; ++k) {
           Tensor slot = alone.slice_rows(k, 1);
           kernels::sum_squares(slot, xs[static_cast<size_t>(k)]);
         }
         r.keep("each alone", alone);
         r.output("out", out, longest == 0 ? bitwise() : within(tolerance_for(acc, static_cast<double>(longest))));
         r.output("out is each alone", out, repeats("each alone"));
       }},
      // Column sums of x [rows, cols], assigned and accumulated, twice each: one pass
      // of kPassColumns columns or several (1000, 1031: the last one short), no row,
      // no column.
      {"sum_rows", kFloats,
       {{1, 1}, {0, 0}, {0, 1}, {0, 5}, {0, 33}, {0, 1000}, {31, 0}, {31, 1}, {31, 33}, {31, 1000}, {33, 65},
        {2015, 31}, {37, 1031}, {100003, 65}},
       [](const Shape& s, DType) { return cuda::sum_rows_scratch_bytes(s[1]); },
       [](OpRun& r) {
         const int64_t rows = r.dim(0), cols = r.dim(1);
         const DType out_dtype = accumulation_dtype(r.dtype);
         const Tensor x = r.random({rows, cols}, r.dtype, 13);
         for (bool accumulate : {false, true}) {
           const Tensor init = test::random_tensor({cols}, out_dtype, 14);
           Tensor out = r.copy_of(init), again = r.copy_of(init);
           r.call([&] { kernels::sum_rows(out, x, accumulate); });
           r.call([&] { kernels::sum_rows(again, x, accumulate); });
           const std::string name = accumulate ? "out += column sums" : "out = column sums";
           r.output(name, out, within(tolerance_for(out_dtype, static_cast<double>(rows + 1))));
           r.output(name + " again", again, repeats(name));
         }
       }},

      // ---- loss: shapes {rows, cols} of pred --------------------------------------------------------
      {"weighted_mse_forward", kFloats, kLossShapes, whole_sum_scratch,
       [](OpRun& r) {
         const LossInputs in(r);
         const DType w = accumulation_dtype(r.dtype);
         Tensor loss = r.empty({1}, w), again = r.empty({1}, w);
         r.call([&] { kernels::weighted_mse_forward(loss, in.pred, in.target, in.row_weight, in.col_weight); });
         r.call([&] { kernels::weighted_mse_forward(again, in.pred, in.target, in.row_weight, in.col_weight); });
         r.output("loss", loss, within(tolerance_for(w, static_cast<double>(shape_numel(r.shape)))));
         r.output("loss again", again, repeats("loss"));
       }},
      // The gradient is the cpu's formula, multiplication for multiplication.
      {"weighted_mse_backward", kFloats, kLossShapes, nullptr,
       [](OpRun& r) {
         const LossInputs in(r);
         Tensor grad = r.empty(r.shape, r.dtype);
         r.call([&] { kernels::weighted_mse_backward(grad, 0.75, in.pred, in.target, in.row_weight, in.col_weight); });
         r.output("grad_pred", grad, bitwise());
       }},

      // ---- optimizer: three steps on [n] -------------------------------------------------------------
      // Fused multiply-adds on the gpu: a few roundings apart per step.
      {"adamw_step", {DType::f32, DType::f64}, {{1}, {33}, {4099}}, nullptr,
       [](OpRun& r) {
         const int64_t n = r.dim(0);
         Tensor param = r.random({n}, r.dtype, 19), m = r.filled({n}, r.dtype, 0.0), v = r.filled({n}, r.dtype, 0.0);
         kernels::AdamWSettings settings;
         settings.lr = 3e-3;
         for (int64_t step = 1; step <= 3; ++step) {
           const Tensor grad = r.random({n}, r.dtype, 20 + static_cast<uint64_t>(step));
           r.call([&] { kernels::adamw_step(param, grad, m, v, settings, step, 0.5); });
         }
         r.output("param", param, within(tolerance_for(r.dtype, 16)));
         r.output("m", m, within(tolerance_for(r.dtype, 16)));
         r.output("v", v, within(tolerance_for(r.dtype, 16)));
       }},

      // ---- layernorm: statistics in f32 (f64 for f64); gamma and beta f32, or bf16 ------------------
      {"layernorm_forward", kFloats, kLayerNormShapes, nullptr,
       [](OpRun& r) {
         const int64_t cols = r.shape.back(), rows = layernorm_rows(r.shape);
         const DType s = accumulation_dtype(r.dtype);
         const Tensor x = r.random(r.shape, r.dtype, 21, 2.0);
         const auto stats_tol = tolerance_for(s, static_cast<double>(cols));
         std::vector<DType> param_dtypes = {s};
         if (r.dtype != DType::f64) param_dtypes.push_back(DType::bf16);  // f64 x pairs with any gamma
         for (DType p : param_dtypes) {
           const Tensor gamma = r.random({cols}, p, 22), beta = r.random({cols}, p, 23);
           Tensor out = r.empty(r.shape, r.dtype), mean = r.empty({rows}, s), rstd = r.empty({rows}, s);
           r.call([&] { kernels::layernorm_forward(out, mean, rstd, x, gamma, beta, 1e-5); });
           const std::string with = std::string(" (") + dtype_name(p) + " gamma and beta)";
           r.output("out" + with, out, within(tolerance_for(r.dtype, static_cast<double>(cols))));
           r.output("mean" + with, mean, within(stats_tol));
           r.output("rstd" + with, rstd, within(stats_tol));
         }
       }},
      // From the cpu's statistics on every device, so that only the backward differs;
      // grad_gamma and grad_beta accumulate, summed in the cpu's order (blocks of 256
      // rows, fused multiply-adds spelled out): bitwise; then twice from zero: the
      // same bits (no atomics).
      {"layernorm_backward", kFloats, kLayerNormShapes,
       [](const Shape& s, DType d) { return cuda::layernorm_backward_scratch_bytes(layernorm_rows(s), s.back(), d); },
       [](OpRun& r) {
         const LayerNormBackwardInputs in(r);
         const int64_t cols = in.cols;
         const DType s = in.stats;
         const Tensor &x = in.x, &gamma = in.gamma, &mean = in.mean, &rstd = in.rstd, &grad_out = in.grad_out;
         Tensor grad_x = r.empty(r.shape, r.dtype), grad_gamma = r.copy_of(in.init_gamma),
                grad_beta = r.copy_of(in.init_beta);
         r.call([&] { kernels::layernorm_backward(grad_x, grad_gamma, grad_beta, grad_out, x, mean, rstd, gamma); });
         r.output("grad_x", grad_x, within(tolerance_for(r.dtype, 4.0 * static_cast<double>(cols))));
         r.output("grad_gamma", grad_gamma, bitwise());
         r.output("grad_beta", grad_beta, bitwise());
         for (const char* pass : {"first", "second"}) {
           Tensor dx = r.empty(r.shape, r.dtype), dgamma = r.filled({cols}, s, 0.0), dbeta = r.filled({cols}, s, 0.0);
           r.call([&] { kernels::layernorm_backward(dx, dgamma, dbeta, grad_out, x, mean, rstd, gamma); });
           if (std::string(pass) == "first") {
             r.keep("grad_gamma from zero", dgamma);
             r.keep("grad_beta from zero", dbeta);
             r.output("grad_x again", dx, repeats("grad_x"));
           } else {
             r.output("grad_gamma from zero again", dgamma, repeats("grad_gamma from zero"));
             r.output("grad_beta from zero again", dbeta, repeats("grad_beta from zero"));
           }
         }
       }},

      // With the bias gradient (grad_x's rows summed into grad_bias): grad_x, grad_gamma
      // and grad_beta are layernorm_backward's on each device, bit for bit; grad_bias is
      // sum_rows' on the cpu and, on cuda, for rows of up to 512 columns, the row blocks'
      // order of grad_gamma (blocks of 256 rows each from 0, folded from 0 in block order,
      // added once), for wider rows sum_rows', bit for bit, and the cpu's within its sums.
      {"layernorm_backward_bias", kFloats, kLayerNormShapes,
       [](const Shape& s, DType d) {
         return cuda::layernorm_backward_scratch_bytes(layernorm_rows(s), s.back(), d, true);
       },
       [](OpRun& r) {
         const LayerNormBackwardInputs in(r);
         const int64_t cols = in.cols, rows = in.rows;
         const DType s = in.stats;
         const Tensor &x = in.x, &gamma = in.gamma, &mean = in.mean, &rstd = in.rstd, &grad_out = in.grad_out;
         const Tensor &init_gamma = in.init_gamma, &init_beta = in.init_beta;
         const Tensor cpu_init_bias = test::random_tensor({cols}, s, 27);
         Tensor grad_x = r.empty(r.shape, r.dtype), grad_gamma = r.copy_of(init_gamma), grad_beta = r.copy_of(init_beta),
                grad_bias = r.copy_of(cpu_init_bias);
         r.call([&] {
           kernels::layernorm_backward_bias(grad_x, grad_gamma, grad_beta, grad_bias, grad_out, x, mean, rstd, gamma);
         });
         // layernorm_backward alone on the same device (not traced: the row's scratch is per call).
         Tensor alone_x = r.empty(r.shape, r.dtype), alone_gamma = r.copy_of(init_gamma),
                alone_beta = r.copy_of(init_beta);
         kernels::layernorm_backward(alone_x, alone_gamma, alone_beta, grad_out, x, mean, rstd, gamma);
         r.keep("layernorm_backward's grad_x", alone_x);
         r.keep("layernorm_backward's grad_gamma", alone_gamma);
         r.keep("layernorm_backward's grad_beta", alone_beta);
         // grad_bias in this device's order, from the grad_x it wrote.
         Tensor in_order = r.copy_of(cpu_init_bias);
         if (r.device != Device::cuda || cols > cuda::kLayerNormFusedColumns) {
           if (rows > 0) kernels::sum_rows(in_order, alone_x.reshape({rows, cols}), true);
         } else if (rows > 0) {
           const std::vector<double> gx = host_copy(alone_x).to_doubles();
           std::vector<double> totals = cpu_init_bias.to_doubles();
           auto fold = [&](auto zero) {
             using Acc = decltype(zero);
             for (int64_t c = 0; c < cols; ++c) {
               Acc total = 0;
               for (int64_t begin = 0; begin < rows; begin += cuda::kLayerNormRowBlock) {
                 Acc partial = 0;
                 for (int64_t row = begin; row < std::min(rows, begin + cuda::kLayerNormRowBlock); ++row)
                   partial += static_cast<Acc>(gx[row * cols + c]);
                 total += partial;
               }
               totals[c] = static_cast<double>(static_cast<Acc>(totals[c]) + total);
             }
           };
           if (s == DType::f64) fold(0.0);
           else fold(0.0f);
           in_order = r.copy_of(Tensor::from_doubles(totals, {cols}, s));
         }
         r.keep("grad_bias in this device's order", in_order);
         std::vector<double> term_scale(static_cast<size_t>(cols));
         {
           Tensor cpu_grad_x = Tensor::empty(r.shape, r.dtype), g = init_gamma.clone(), b = init_beta.clone();
           if (rows > 0)
             kernels::layernorm_backward(cpu_grad_x, g, b, in.cpu_grad_out, in.cpu_x, in.cpu_mean, in.cpu_rstd,
                                         in.cpu_gamma);
           const std::vector<double> gx = cpu_grad_x.to_doubles(), init = cpu_init_bias.to_doubles();
           for (int64_t c = 0; c < cols; ++c) {
             double scale = std::fabs(init[c]);
             for (int64_t row = 0; row < rows; ++row) scale += std::fabs(gx[row * cols + c]);
             term_scale[c] = scale;
           }
         }
         r.output("grad_x", grad_x, within(tolerance_for(r.dtype, 4.0 * static_cast<double>(cols))));
         r.output("grad_gamma", grad_gamma, bitwise());
         r.output("grad_beta", grad_beta, bitwise());
         r.output("grad_bias", grad_bias,
                  within_sums(tolerance_for(r.dtype, 4.0 * static_cast<double>(cols) + static_cast<double>(rows)),
                              std::move(term_scale)));
         r.output("grad_x is layernorm_backward's", grad_x, repeats("layernorm_backward's grad_x"));
         r.output("grad_gamma is layernorm_backward's", grad_gamma, repeats("layernorm_backward's grad_gamma"));
         r.output("grad_beta is layernorm_backward's", grad_beta, repeats("layernorm_backward's grad_beta"));
         r.output("grad_bias in its order", grad_bias, repeats("grad_bias in this device's order"));
       }},

      // ---- graph ops: shapes {edges, cols} of the edge rows (Graph) ---------------------------------
      // Group sums add the same values in the same (CSR) order on every device: bitwise.
      {"gather_rows_forward", kFloats, kGraphShapes, index_check_scratch,
       [](OpRun& r) {
         const Graph g(r.dim(0));
         const int64_t cols = r.dim(1);
         const Tensor senders = r.indices(g.senders);
         for (auto dtypes : node_and_edge_dtypes(r.dtype)) {
           const Tensor x = r.random({g.nodes, cols}, dtypes.first, 30);
           Tensor out = r.empty({g.edges, cols}, dtypes.second);
           r.call([&] { kernels::gather_rows_forward(out, x, senders); });
           r.output("out, " + dtype_pair_name(dtypes), out, bitwise());
         }
       }},
      // Bitwise: the same two roundings on every device.
      {"add_gathered_rows", kFloats, kGraphShapes, index_check_scratch,
       [](OpRun& r) {
         const Graph g(r.dim(0));
         const int64_t cols = r.dim(1);
         const Tensor senders = r.indices(g.senders), receivers = r.indices(g.receivers);
         const Tensor base = r.random({g.edges, cols}, r.dtype, 35);
         const Tensor s = r.random({g.nodes, cols}, r.dtype, 36), rv = r.random({g.nodes, cols}, r.dtype, 37);
         Tensor out = r.empty({g.edges, cols}, r.dtype);
         r.call([&] { kernels::add_gathered_rows(out, base, s, senders, rv, receivers); });
         r.output("out", out, bitwise());
       }},
      // The listed rows (the graph's distinct senders, descending) of a random acc
      // gain x's rows; the others keep their bits.
      {"index_add_rows", kFloats, kGraphShapes, index_check_scratch,
       [](OpRun& r) {
         const Graph g(r.dim(0));
         const int64_t cols = r.dim(1);
         std::vector<int32_t> listed = g.senders;
         std::sort(listed.begin(), listed.end(), std::greater<int32_t>());
         listed.erase(std::unique(listed.begin(), listed.end()), listed.end());
         const Tensor rows = r.indices(listed);
         const Tensor x = r.random({static_cast<int64_t>(listed.size()), cols}, r.dtype, 33);
         Tensor acc = r.random({g.nodes, cols}, r.dtype, 34);
         r.call([&] { kernels::index_add_rows(acc, x, rows); });
         r.output("acc", acc, bitwise());
       }},
      // grad_x is assigned, never accumulated: it starts from random values.
      {"gather_rows_backward", kFloats, kGraphShapes, index_check_scratch,
       [](OpRun& r) {
         const Graph g(r.dim(0));
         const int64_t cols = r.dim(1);
         const Tensor order = r.copy_of(g.sender_order), offsets = r.copy_of(g.sender_offsets);
         for (auto dtypes : node_and_edge_dtypes(r.dtype)) {
           const Tensor grad_out = r.random({g.edges, cols}, dtypes.second, 31);
           Tensor grad_x = r.random({g.nodes, cols}, dtypes.first, 47);
           r.call([&] { kernels::gather_rows_backward(grad_x, grad_out, order, offsets); });
           r.output("grad_x, " + dtype_pair_name(dtypes), grad_x, bitwise());
         }
       }},
      {"segment_sum_forward", kFloats, kGraphShapes, index_check_scratch,
       [](OpRun& r) {
         const Graph g(r.dim(0));
         const int64_t cols = r.dim(1);
         const Tensor offsets = r.copy_of(g.receiver_offsets);
         for (auto dtypes : node_and_edge_dtypes(r.dtype)) {
           const Tensor x = r.random({g.edges, cols}, dtypes.second, 31);
           for (bool accumulate : {false, true}) {
             Tensor out = r.random({g.nodes, cols}, dtypes.first, 32);
             r.call([&] { kernels::segment_sum_forward(out, x, offsets, accumulate); });
             r.output(std::string(accumulate ? "out += sums, " : "out = sums, ") + dtype_pair_name(dtypes), out,
                      bitwise());
           }
         }
       }},
      {"segment_sum_backward", kFloats, kGraphShapes, index_check_scratch,
       [](OpRun& r) {
         const Graph g(r.dim(0));
         const int64_t cols = r.dim(1);
         const Tensor offsets = r.copy_of(g.receiver_offsets);
         for (auto dtypes : node_and_edge_dtypes(r.dtype)) {
           const Tensor grad_out = r.random({g.nodes, cols}, dtypes.first, 30);
           Tensor grad_x = r.empty({g.edges, cols}, dtypes.second);
           r.call([&] { kernels::segment_sum_backward(grad_x, grad_out, offsets); });
           r.output("grad_x, " + dtype_pair_name(dtypes), grad_x, bitwise());
           const Tensor addend = r.random({g.edges, cols}, dtypes.second, 38);
           Tensor summed = r.empty({g.edges, cols}, dtypes.second);
           r.call([&] { kernels::segment_sum_backward(summed, grad_out, offsets, addend); });
           r.output("grad_x with an addend, " + dtype_pair_name(dtypes), summed, bitwise());
         }
       }},

      // The attention processor's softmax over each receiver's edges (Graph's
      // receivers; 4 heads when the columns split, else 1): the same steps in the
      // same order on both devices; exp and log differ by an ulp or two.
      {"segment_softmax_sum_forward", kFloats, kGraphShapes, index_check_scratch,
       [](OpRun& r) {
         const Graph g(r.dim(0));
         const int64_t cols = r.dim(1), heads = cols % 4 == 0 ? 4 : 1;
         const Tensor offsets = r.copy_of(g.receiver_offsets);
         const Tensor scores = r.random({g.edges, heads}, r.dtype, 33, 3.0), values = r.random({g.edges, cols}, r.dtype, 34);
         Tensor out = r.empty({g.nodes, cols}, r.dtype), lse = r.empty({g.nodes, heads}, accumulation_dtype(r.dtype));
         r.call([&] { kernels::segment_softmax_sum_forward(out, lse, scores, values, offsets); });
         r.output("out", out, within(tolerance_for(r.dtype, 64)));
         // A receiver without edges has lse -inf on both devices (as a finite sentinel, for the comparison).
         Tensor lse_finite = lse;
         if (r.has_values()) {
           std::vector<double> v = lse.to(Device::cpu).to_doubles();
           for (double& x : v) x = std::isinf(x) && x < 0 ? -1e30 : x;
           lse_finite = Tensor::from_doubles(v, lse.shape(), lse.dtype());
         }
         r.output("logsumexp", lse_finite, within(tolerance_for(accumulation_dtype(r.dtype), 64)));
       }},
      {"segment_softmax_sum_backward", kFloats, kGraphShapes, index_check_scratch,
       [](OpRun& r) {
         const Graph g(r.dim(0));
         const int64_t cols = r.dim(1), heads = cols % 4 == 0 ? 4 : 1;
         const Tensor offsets = r.copy_of(g.receiver_offsets);
         const Tensor scores = r.random({g.edges, heads}, r.dtype, 33, 3.0), values = r.random({g.edges, cols}, r.dtype, 34);
         Tensor out = r.empty({g.nodes, cols}, r.dtype), lse = r.empty({g.nodes, heads}, accumulation_dtype(r.dtype));
         kernels::segment_softmax_sum_forward(out, lse, scores, values, offsets);
         const Tensor grad_out = r.random({g.nodes, cols}, r.dtype, 35);
         Tensor grad_scores = r.random({g.edges, heads}, r.dtype, 36), grad_values = r.random({g.edges, cols}, r.dtype, 37);
         r.call([&] {
           kernels::segment_softmax_sum_backward(grad_scores, grad_values, grad_out, scores, values, lse, offsets);
         });
         // Score gradients are differences of sums: relative to the sizes summed.
         std::vector<double> scale(static_cast<size_t>(g.edges * heads), std::sqrt(static_cast<double>(cols)));
         r.output("grad_scores", grad_scores, within_sums(tolerance_for(r.dtype, 64), scale));
         r.output("grad_values", grad_values, within(tolerance_for(r.dtype, 16)));
       }},

      // ---- linear (cuBLAS on cuda): shapes {rows, in, out}; the workspace is the caller's ----------
      // W scaled so that x W stays O(1): the bias then adds to values of its own size.
      // in = 0: y = b, our epilogue in the cpu's order: bitwise.
      {"linear_forward", kFloats, kLinearShapes, nullptr,
       [](OpRun& r) {
         const int64_t rows = r.dim(0), in = r.dim(1), out = r.dim(2);
         const Tensor x = r.random({rows, in}, r.dtype, 35), W = r.random({in, out}, r.dtype, 36, 0.25),
                      b = r.random({out}, accumulation_dtype(r.dtype), 37);
         Tensor workspace = r.workspace(rows, out, in);
         const double nan = std::numeric_limits<double>::quiet_NaN();
         Tensor y = r.filled({rows, out}, r.dtype, nan), again = r.filled({rows, out}, r.dtype, nan);
         r.call([&] { kernels::linear_forward(y, x, W, b, workspace); });
         r.call([&] { kernels::linear_forward(again, x, W, b, workspace); });
         r.output("y", y, in == 0 ? bitwise() : within(tolerance_for(r.dtype, static_cast<double>(in + 1))));
         r.output("y again", again, repeats("y"));
       }},
      {"linear_backward_input", kFloats, kLinearShapes, nullptr,
       [](OpRun& r) {
         const int64_t rows = r.dim(0), in = r.dim(1), out = r.dim(2);
         const Tensor grad_y = r.random({rows, out}, r.dtype, 38), W = r.random({in, out}, r.dtype, 36, 0.25);
         Tensor workspace = r.workspace(rows, in, out), grad_x = r.empty({rows, in}, r.dtype);
         r.call([&] { kernels::linear_backward_input(grad_x, grad_y, W, workspace); });
         r.output("grad_x", grad_x, within(tolerance_for(r.dtype, static_cast<double>(out))));
       }},
      // grad_W accumulates (f32, f64 for f64) over the rows, twice (backward called
      // twice). Each element is a sum over the rows whose terms cancel: its rounding
      // error in any order (cuBLAS accumulates along k in each thread) scales with
      // the terms' root-sum-square: sqrt(init^2 + 2 sum_r (x[r,i] grad_y[r,j])^2).
      {"linear_backward_weight", kFloats, kLinearShapes, nullptr,
       [](OpRun& r) {
         const int64_t rows = r.dim(0), in = r.dim(1), out = r.dim(2);
         const DType acc = accumulation_dtype(r.dtype);
         const Tensor cpu_x = test::random_tensor({rows, in}, r.dtype, 35);
         const Tensor cpu_grad_y = test::random_tensor({rows, out}, r.dtype, 38);
         const Tensor cpu_init = test::random_tensor({in, out}, acc, 39);
         const Tensor x = r.copy_of(cpu_x), grad_y = r.copy_of(cpu_grad_y);
         Tensor workspace = r.workspace(in, out, rows), grad_W = r.copy_of(cpu_init);
         for (int i = 0; i < 2; ++i) r.call([&] { kernels::linear_backward_weight(grad_W, x, grad_y, workspace); });
         const std::vector<double> xv = cpu_x.to_doubles(), gyv = cpu_grad_y.to_doubles(),
                                   init = cpu_init.to_doubles();
         std::vector<double> term_scale(init.size());
         for (int64_t i = 0; i < in; ++i)
           for (int64_t j = 0; j < out; ++j) {
             double squares = init[i * out + j] * init[i * out + j];
             for (int64_t row = 0; row < rows; ++row) {
               const double term = xv[row * in + i] * gyv[row * out + j];
               squares += 2.0 * term * term;
             }
             term_scale[i * out + j] = std::sqrt(squares);
           }
         r.output("grad_W", grad_W,
                  within_sums(tolerance_for(acc, 2.0 * static_cast<double>(rows)), std::move(term_scale)));
       }},
      // The weight gradient and the bias gradient (grad_y's rows summed) together:
      // on cuda in f32 one cuBLASLt call sums the rows in the product's pass.
      {"linear_backward_weight_and_bias", kFloats, kLinearShapes, nullptr,
       [](OpRun& r) {
         const int64_t rows = r.dim(0), in = r.dim(1), out = r.dim(2);
         const DType acc = accumulation_dtype(r.dtype);
         const Tensor cpu_x = test::random_tensor({rows, in}, r.dtype, 35);
         const Tensor cpu_grad_y = test::random_tensor({rows, out}, r.dtype, 38);
         const Tensor cpu_init = test::random_tensor({in, out}, acc, 39), cpu_init_b = test::random_tensor({out}, acc, 40);
         const Tensor x = r.copy_of(cpu_x), grad_y = r.copy_of(cpu_grad_y);
         Tensor workspace = r.workspace(in, out, rows), grad_W = r.copy_of(cpu_init), grad_b = r.copy_of(cpu_init_b);
         for (int i = 0; i < 2; ++i)
           r.call([&] { kernels::linear_backward_weight_and_bias(grad_W, grad_b, x, grad_y, workspace); });
         const std::vector<double> xv = cpu_x.to_doubles(), gyv = cpu_grad_y.to_doubles(),
                                   init = cpu_init.to_doubles(), init_b = cpu_init_b.to_doubles();
         std::vector<double> term_scale(init.size()), b_scale(init_b.size());
         for (int64_t j = 0; j < out; ++j) {
           double squares = init_b[j] * init_b[j];
           for (int64_t row = 0; row < rows; ++row) squares += 2.0 * gyv[row * out + j] * gyv[row * out + j];
           b_scale[j] = std::sqrt(squares);
           for (int64_t i = 0; i < in; ++i) {
             double w_squares = init[i * out + j] * init[i * out + j];
             for (int64_t row = 0; row < rows; ++row) {
               const double term = xv[row * in + i] * gyv[row * out + j];
               w_squares += 2.0 * term * term;
             }
             term_scale[i * out + j] = std::sqrt(w_squares);
           }
         }
         const Tolerance tol = tolerance_for(acc, 2.0 * static_cast<double>(rows));
         r.output("grad_W", grad_W, within_sums(tol, std::move(term_scale)));
         r.output("grad_b", grad_b, within_sums(tol, std::move(b_scale)));
       }},
      // C = A B (A, B transposed or not) + beta C, into the accumulation dtype and
      // into the row's, with a -0 in C; beta = 0, and a beta that rounds to 0 in f32,
      // never read C (NaN here). Shapes {m, n, k}; k = 0 is no product (as for an
      // empty edge chunk's weight gradient): our epilogue in the cpu's order, bitwise,
      // the sign of a zero included.
      {"matmul", kFloats, {{1, 1, 1}, {33, 31, 0}, {33, 31, 65}}, nullptr,
       [](OpRun& r) {
         const int64_t m = r.dim(0), n = r.dim(1), k = r.dim(2);
         const DType acc = accumulation_dtype(r.dtype);
         struct Epilogue {
           DType out;
           double beta;
           const char* beta_name;
         };
         std::vector<Epilogue> epilogues;
         std::vector<DType> c_dtypes = {acc};
         if (r.dtype != acc) c_dtypes.push_back(r.dtype);
         for (DType out : c_dtypes) {
           epilogues.push_back({out, 0.5, "0.5"});
           epilogues.push_back({out, -1.25, "-1.25"});
         }
         epilogues.push_back({r.dtype, 0.0, "0"});
         if (r.dtype != DType::f64) epilogues.push_back({r.dtype, 1e-50, "1e-50"});  // 1e-50 is no zero in f64
         for (bool ta : {false, true})
           for (bool tb : {false, true}) {
             const Tensor a = r.random(ta ? Shape{k, m} : Shape{m, k}, r.dtype, 40);
             const Tensor b = r.random(tb ? Shape{n, k} : Shape{k, n}, r.dtype, 41);
             Tensor workspace = r.workspace(m, n, k);
             for (const Epilogue& e : epilogues) {
               const bool reads_c = std::fabs(e.beta) > 1e-40;
               std::vector<double> c_values = test::random_values(static_cast<size_t>(m * n), 42);
               if (c_values.size() > 5) c_values[5] = -0.0;
               if (!reads_c) std::fill(c_values.begin(), c_values.end(), std::numeric_limits<double>::quiet_NaN());
               Tensor c = r.copy_of(Tensor::from_doubles(c_values, {m, n}, e.out));
               r.call([&] { kernels::matmul(c, a, ta, b, tb, e.beta, workspace); });
               const std::string name = std::string(ta ? "aT " : "a ") + (tb ? "bT" : "b") + " into " +
                                        dtype_name(e.out) + ", beta " + e.beta_name;
               r.output(name, c,
                        k == 0 ? bitwise() : within(tolerance_for(e.out, static_cast<double>(k + (reads_c ? 1 : 0)))));
             }
           }
       }},
  };
  return table;
}

// ---- the checks ------------------------------------------------------------------------------

class BackendOps : public ::testing::TestWithParam<OpCase> {};

// The dry run: meta gives the cpu's shapes and dtypes, and requests what the
// device it stands for requests (nothing for the cpu, the scratch for cuda).
TEST_P(BackendOps, MetaStandsForTheCpuAndForCuda) {
  const OpCase& c = GetParam();
  const OpRun cpu = run_case(c, Device::cpu);
  EXPECT_EQ(cpu.requests, std::vector<Request>{}) << "the cpu kernels need no scratch";
  for (Device target : {Device::cpu, Device::cuda}) {
    const MetaTargetGuard guard(target);
    const OpRun meta = run_case(c, Device::meta);
    const std::string standing = std::string("meta standing for ") + device_name(target);
    ASSERT_EQ(meta.outputs.size(), cpu.outputs.size()) << standing;
    for (size_t i = 0; i < cpu.outputs.size(); ++i) {
      const Tensor &got = meta.outputs[i].value, &ref = cpu.outputs[i].value;
      EXPECT_TRUE(got.shape() == ref.shape() && got.dtype() == ref.dtype())
          << standing << ", " << cpu.outputs[i].name << ": " << got.describe() << " vs " << ref.describe();
    }
    EXPECT_EQ(meta.calls, cpu.calls) << standing;
    const std::vector<Request> expected = target == Device::cuda ? cuda_requests(c, meta.calls) : std::vector<Request>{};
    EXPECT_EQ(meta.requests, expected) << standing;
  }
}

// The gpu gives the cpu's results as the row says, and requests what its dry run requests.
TEST_P(BackendOps, CudaGivesTheCpusResults) {
  std::string why;
  if (!cuda_available(&why)) GTEST_SKIP() << "no cuda device: " << why;
  const OpCase& c = GetParam();
  const MetaTargetGuard guard(Device::cuda);
  const OpRun cpu = run_case(c, Device::cpu);
  const OpRun gpu = run_case(c, Device::cuda);
  const OpRun meta = run_case(c, Device::meta);
  EXPECT_EQ(gpu.requests, cuda_requests(c, gpu.calls));
  EXPECT_EQ(gpu.requests, meta.requests);
  expect_repeats_hold(cpu);
  expect_matches_cpu(gpu, cpu);
}

// The cost model (kernels/traffic.h) counts the launches and host synchronizations
// the cuda path makes, the uploads and read-backs of the case included: the
// simulator counts them as the CUDA runtime sees them (tests/cudasim/sim_counters.h).
// Defined in the simulated build only (build-sim), where the counters exist.
#ifdef GC_CUDA_SIM
TEST_P(BackendOps, CudaLaunchesAndSyncsAreTheModels) {
  const OpCase& c = GetParam();
  const MetaTargetGuard guard(Device::cuda);
  profile_reset();
  gcsim::reset_counters();
  run_case(c, Device::cuda);
  const CostTotals model = profile_collect().total_cost();
  const gcsim::Counters sim = gcsim::counters();
  EXPECT_EQ(static_cast<uint64_t>(model.launches), sim.launches())
      << "kernels " << sim.kernels << ", gemms " << sim.gemms << ", copies " << sim.copies << ", memsets " << sim.memsets;
  EXPECT_EQ(static_cast<uint64_t>(model.host_syncs), sim.host_syncs);
}
#endif

INSTANTIATE_TEST_SUITE_P(Table, BackendOps, ::testing::ValuesIn(op_cases()), case_name);

}  // namespace
}  // namespace gc
