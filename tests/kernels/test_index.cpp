// test_index.cpp: gather_rows and segment_sum (forward and backward) and build_csr
// against straightforward f64 references defined edge by edge (not through the
// CSR), on graphs with empty nodes, a hub node and no edges at all; backward
// against central finite differences in f64; 16-bit storage against f32; bitwise
// independence of the thread count; meta runs.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "kernels/elementwise.h"
#include "kernels/group_split.h"
#include "kernels/index.h"
#include "tests/test_util.h"

namespace gc {
namespace {

using test::all_close;
using test::random_tensor;
using test::tolerance_for;

Tensor i32_tensor(const std::vector<int32_t>& values, Device device = Device::cpu) {
  return Tensor::from_host(values.data(), {static_cast<int64_t>(values.size())}, DType::i32, device);
}

std::vector<int32_t> i32_values(const Tensor& t) {
  std::vector<int32_t> v(static_cast<size_t>(t.numel()));
  if (!v.empty()) std::memcpy(v.data(), t.data(), v.size() * sizeof(int32_t));
  return v;
}

// A graph of E edges on N nodes: senders in edge order (unsorted), receivers
// sorted ascending (the layout segment_sum expects).
struct Graph {
  int64_t nodes = 0;
  std::vector<int32_t> senders, receivers;
  int64_t edges() const { return static_cast<int64_t>(senders.size()); }
};

enum class GraphKind { Random, Hub, NoEdges, Single, Dense };

const char* graph_name(GraphKind kind) {
  switch (kind) {
    case GraphKind::Random: return "Random";
    case GraphKind::Hub: return "Hub";
    case GraphKind::NoEdges: return "NoEdges";
    case GraphKind::Single: return "Single";
    case GraphKind::Dense: return "Dense";
  }
  return "?";
}

// Random endpoints where about a third of the edges touch node 5 and the last
// three nodes touch none.
std::vector<int32_t> skewed_endpoints(int64_t edges, int64_t nodes, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int32_t> any(0, static_cast<int32_t>(nodes - 4));
  std::vector<int32_t> v(static_cast<size_t>(edges));
  for (auto& n : v) n = (rng() % 3 == 0) ? 5 : any(rng);
  return v;
}

Graph make_graph(GraphKind kind) {
  Graph g;
  switch (kind) {
    case GraphKind::Random:
      g.nodes = 33;
      g.senders = skewed_endpoints(65, 33, 1);
      g.receivers = skewed_endpoints(65, 33, 2);
      break;
    case GraphKind::Hub:  // node 2 receives and sends every edge
      g.nodes = 5;
      g.senders.assign(65, 2);
      g.receivers.assign(65, 2);
      break;
    case GraphKind::NoEdges:
      g.nodes = 4;
      break;
    case GraphKind::Single:
      g.nodes = 1;
      g.senders = {0};
      g.receivers = {0};
      break;
    case GraphKind::Dense:  // ~30 edges per node
      g.nodes = 31;
      g.senders = skewed_endpoints(1001, 31, 3);
      g.receivers = skewed_endpoints(1001, 31, 4);
      break;
  }
  std::sort(g.receivers.begin(), g.receivers.end());
  return g;
}

int64_t max_degree(const std::vector<int32_t>& endpoints, int64_t nodes) {
  std::vector<int64_t> degree(static_cast<size_t>(nodes), 0);
  for (int32_t n : endpoints) ++degree[static_cast<size_t>(n)];
  return degree.empty() ? 0 : *std::max_element(degree.begin(), degree.end());
}

struct Csr {
  Tensor order, offsets;
};

Csr csr_of(const std::vector<int32_t>& endpoints, int64_t nodes) {
  Csr csr{Tensor::empty({static_cast<int64_t>(endpoints.size())}, DType::i32),
          Tensor::empty({nodes + 1}, DType::i32)};
  kernels::build_csr(csr.order, csr.offsets, i32_tensor(endpoints), nodes);
  return csr;
}

// --- f64 references, edge by edge ---------------------------------------------

std::vector<double> reference_gather(const std::vector<double>& x, const std::vector<int32_t>& index, int64_t cols) {
  std::vector<double> out;
  for (int32_t n : index)
    for (int64_t c = 0; c < cols; ++c) out.push_back(x[static_cast<size_t>(n * cols + c)]);
  return out;
}

// out[n] = sum of rows[e] over the edges e with endpoints[e] == n.
std::vector<double> reference_scatter_sum(const std::vector<double>& rows, const std::vector<int32_t>& endpoints,
                                          int64_t nodes, int64_t cols) {
  std::vector<double> out(static_cast<size_t>(nodes * cols), 0.0);
  for (size_t e = 0; e < endpoints.size(); ++e)
    for (int64_t c = 0; c < cols; ++c)
      out[static_cast<size_t>(endpoints[e] * cols + c)] += rows[static_cast<size_t>(static_cast<int64_t>(e) * cols + c)];
  return out;
}

Tensor as_dtype(const Tensor& t, DType dtype) { return Tensor::from_doubles(t.to_doubles(), t.shape(), dtype); }

bool bitwise_equal(const Tensor& a, const Tensor& b) {
  return a.nbytes() == b.nbytes() && (a.nbytes() == 0 || std::memcmp(a.data(), b.data(), a.nbytes()) == 0);
}

// --- the ops with freshly allocated outputs --------------------------------------

Tensor gather(const Tensor& x, const std::vector<int32_t>& index, DType out_dtype) {
  Tensor out = Tensor::empty({static_cast<int64_t>(index.size()), x.size(1)}, out_dtype);
  kernels::gather_rows_forward(out, x, i32_tensor(index));
  return out;
}
Tensor gather_backward(const Tensor& grad_out, const Csr& csr, int64_t nodes, DType grad_x_dtype) {
  Tensor grad_x = random_tensor({nodes, grad_out.size(1)}, grad_x_dtype, 999);  // must be overwritten
  kernels::gather_rows_backward(grad_x, grad_out, csr.order, csr.offsets);
  return grad_x;
}
Tensor segment_sum(const Tensor& x, const Csr& csr, int64_t nodes, DType out_dtype) {
  Tensor out = random_tensor({nodes, x.size(1)}, out_dtype, 998);  // must be overwritten
  kernels::segment_sum_forward(out, x, csr.offsets, false);
  return out;
}
Tensor segment_sum_backward(const Tensor& grad_out, const Csr& csr, int64_t edges, DType grad_x_dtype) {
  Tensor grad_x = Tensor::empty({edges, grad_out.size(1)}, grad_x_dtype);
  kernels::segment_sum_backward(grad_x, grad_out, csr.offsets);
  return grad_x;
}

struct Case {
  GraphKind graph;
  DType dtype;
  int64_t cols;
};

std::string case_name(const testing::TestParamInfo<Case>& info) {
  return std::string(graph_name(info.param.graph)) + "_" + dtype_name(info.param.dtype) + "_" +
         std::to_string(info.param.cols);
}

std::vector<Case> all_cases() {
  std::vector<Case> cases;
  for (GraphKind g : {GraphKind::Random, GraphKind::Hub, GraphKind::NoEdges, GraphKind::Single, GraphKind::Dense})
    for (DType d : {DType::f32, DType::f64, DType::bf16, DType::f16})
      for (int64_t cols : {1, 31, 65, 130}) cases.push_back({g, d, cols});
  return cases;
}

class IndexOps : public testing::TestWithParam<Case> {};

TEST_P(IndexOps, BuildCsrGroupsStably) {
  const Graph g = make_graph(GetParam().graph);
  for (const auto* endpoints : {&g.senders, &g.receivers}) {
    Csr csr = csr_of(*endpoints, g.nodes);
    std::vector<int32_t> want_order, want_offsets{0};
    for (int32_t n = 0; n < g.nodes; ++n) {
      for (size_t e = 0; e < endpoints->size(); ++e)
        if ((*endpoints)[e] == n) want_order.push_back(static_cast<int32_t>(e));
      want_offsets.push_back(static_cast<int32_t>(want_order.size()));
    }
    EXPECT_EQ(i32_values(csr.order), want_order);
    EXPECT_EQ(i32_values(csr.offsets), want_offsets);
  }
}

TEST_P(IndexOps, GatherForwardMatchesReference) {
  const Case p = GetParam();
  const Graph g = make_graph(p.graph);
  Tensor x = random_tensor({g.nodes, p.cols}, p.dtype, 11);
  Tensor out = gather(x, g.senders, p.dtype);
  EXPECT_TRUE(all_close(out.to_doubles(), reference_gather(x.to_doubles(), g.senders, p.cols),
                        tolerance_for(p.dtype), "out"));
  if (p.dtype == DType::bf16 || p.dtype == DType::f16) {  // f32 node features gathered into 16-bit edges
    Tensor x32 = random_tensor({g.nodes, p.cols}, DType::f32, 12);
    Tensor narrowed = gather(x32, g.senders, p.dtype);
    EXPECT_TRUE(all_close(narrowed.to_doubles(), reference_gather(x32.to_doubles(), g.senders, p.cols),
                          tolerance_for(p.dtype), "f32 -> 16-bit out"));
  }
}

// Sums over groups: f32/f64 against the f64 reference, 16-bit storage against the
// f32 kernel on the same stored values, and 16-bit inputs into an f32 result.
void check_group_sum(const Case& p, const std::function<Tensor(const Tensor&, DType)>& op,
                     const std::vector<int32_t>& endpoints, int64_t nodes, int64_t edges, const char* what) {
  Tensor rows = random_tensor({edges, p.cols}, p.dtype, 21);
  const double ops = static_cast<double>(std::max<int64_t>(1, max_degree(endpoints, nodes)));
  Tensor got = op(rows, p.dtype);
  if (p.dtype == DType::f32 || p.dtype == DType::f64) {
    EXPECT_TRUE(all_close(got.to_doubles(), reference_scatter_sum(rows.to_doubles(), endpoints, nodes, p.cols),
                          tolerance_for(p.dtype, ops), what));
    return;
  }
  Tensor ref = op(as_dtype(rows, DType::f32), DType::f32);
  EXPECT_TRUE(all_close(got.to_doubles(), ref.to_doubles(), tolerance_for(p.dtype, ops), what));
  Tensor wide = op(rows, DType::f32);
  EXPECT_TRUE(all_close(wide.to_doubles(), ref.to_doubles(), tolerance_for(DType::f32, ops), what));
}

TEST_P(IndexOps, GatherBackwardMatchesReference) {
  const Case p = GetParam();
  const Graph g = make_graph(p.graph);
  const Csr csr = csr_of(g.senders, g.nodes);
  check_group_sum(
      p, [&](const Tensor& grad_out, DType dtype) { return gather_backward(grad_out, csr, g.nodes, dtype); },
      g.senders, g.nodes, g.edges(), "gather_rows_backward");
}

// add_gathered_rows: f32/f64 against the f64 sum base + x[sender] + x'[receiver];
// every dtype bitwise equal to the separate gathers and adds it replaces.
TEST_P(IndexOps, AddGatheredRowsMatchesReferenceAndTheSeparateOps) {
  const Case p = GetParam();
  const Graph g = make_graph(p.graph);
  const int64_t edges = g.edges();
  const Tensor base = random_tensor({edges, p.cols}, p.dtype, 61);
  const Tensor s = random_tensor({g.nodes, p.cols}, p.dtype, 62), r = random_tensor({g.nodes + 2, p.cols}, p.dtype, 63);
  Tensor out = Tensor::empty({edges, p.cols}, p.dtype);
  kernels::add_gathered_rows(out, base, s, i32_tensor(g.senders), r, i32_tensor(g.receivers));
  const std::vector<double> gs = reference_gather(s.to_doubles(), g.senders, p.cols);
  const std::vector<double> gr = reference_gather(r.to_doubles(), g.receivers, p.cols);
  std::vector<double> want = base.to_doubles();
  for (size_t i = 0; i < want.size(); ++i) want[i] += gs[i] + gr[i];
  EXPECT_TRUE(all_close(out.to_doubles(), want, tolerance_for(p.dtype, 2.0), "add_gathered_rows"));
  Tensor first = Tensor::empty({edges, p.cols}, p.dtype), separate = Tensor::empty({edges, p.cols}, p.dtype);
  kernels::add_forward(first, base, gather(s, g.senders, p.dtype));
  kernels::add_forward(separate, first, gather(r, g.receivers, p.dtype));
  EXPECT_TRUE(bitwise_equal(out, separate)) << "gather, add, gather, add";
}

// index_add_rows adds x's rows into the listed rows of acc (the graph's distinct
// senders, in descending order, so the listing order matters): f32/f64 against the
// f64 sum, 16-bit against the f32 sum of the same stored values rounded once; the
// rows not listed keep their bits.
TEST_P(IndexOps, IndexAddRowsMatchesReference) {
  const Case p = GetParam();
  const Graph g = make_graph(p.graph);
  std::vector<int32_t> rows = g.senders;
  std::sort(rows.begin(), rows.end());
  rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
  std::reverse(rows.begin(), rows.end());
  const int64_t count = static_cast<int64_t>(rows.size());
  const Tensor before = random_tensor({g.nodes, p.cols}, p.dtype, 51);
  const Tensor x = random_tensor({count, p.cols}, p.dtype, 52);
  Tensor acc = before.clone();
  kernels::index_add_rows(acc, x, i32_tensor(rows));
  std::vector<double> want = before.to_doubles();
  const std::vector<double> xs = x.to_doubles();
  std::vector<bool> listed(static_cast<size_t>(g.nodes), false);
  for (int64_t u = 0; u < count; ++u) {
    listed[static_cast<size_t>(rows[static_cast<size_t>(u)])] = true;
    for (int64_t c = 0; c < p.cols; ++c)
      want[static_cast<size_t>(rows[static_cast<size_t>(u)] * p.cols + c)] += xs[static_cast<size_t>(u * p.cols + c)];
  }
  if (p.dtype == DType::f32 || p.dtype == DType::f64) {
    EXPECT_TRUE(all_close(acc.to_doubles(), want, tolerance_for(p.dtype), "index_add_rows"));
  } else {
    Tensor acc32 = as_dtype(before, DType::f32);
    kernels::index_add_rows(acc32, as_dtype(x, DType::f32), i32_tensor(rows));
    EXPECT_TRUE(all_close(acc.to_doubles(), acc32.to_doubles(), tolerance_for(p.dtype), "index_add_rows vs f32"));
    EXPECT_TRUE(bitwise_equal(acc, as_dtype(acc32, p.dtype))) << "one rounding of the f32 sum";
  }
  const std::vector<double> got = acc.to_doubles(), old = before.to_doubles();
  for (int64_t n = 0; n < g.nodes; ++n)
    if (!listed[static_cast<size_t>(n)]) {
      for (int64_t c = 0; c < p.cols; ++c)
        EXPECT_EQ(got[static_cast<size_t>(n * p.cols + c)], old[static_cast<size_t>(n * p.cols + c)]) << "row " << n;
    }
}

TEST_P(IndexOps, SegmentSumForwardMatchesReference) {
  const Case p = GetParam();
  const Graph g = make_graph(p.graph);
  const Csr csr = csr_of(g.receivers, g.nodes);
  check_group_sum(
      p, [&](const Tensor& x, DType dtype) { return segment_sum(x, csr, g.nodes, dtype); }, g.receivers, g.nodes,
      g.edges(), "segment_sum_forward");
}

TEST_P(IndexOps, SegmentSumBackwardMatchesReference) {
  const Case p = GetParam();
  const Graph g = make_graph(p.graph);
  const Csr csr = csr_of(g.receivers, g.nodes);
  Tensor grad_out = random_tensor({g.nodes, p.cols}, p.dtype, 31);
  Tensor grad_x = segment_sum_backward(grad_out, csr, g.edges(), p.dtype);
  EXPECT_TRUE(all_close(grad_x.to_doubles(), reference_gather(grad_out.to_doubles(), g.receivers, p.cols),
                        tolerance_for(p.dtype), "grad_x"));
  if (p.dtype == DType::bf16 || p.dtype == DType::f16) {  // f32 node gradient into 16-bit edge gradients
    Tensor grad_out32 = random_tensor({g.nodes, p.cols}, DType::f32, 32);
    Tensor narrowed = segment_sum_backward(grad_out32, csr, g.edges(), p.dtype);
    EXPECT_TRUE(all_close(narrowed.to_doubles(), reference_gather(grad_out32.to_doubles(), g.receivers, p.cols),
                          tolerance_for(p.dtype), "f32 -> 16-bit grad_x"));
  }
}

// With an addend: the f64 sum addend + receiver row (f32/f64), and bitwise the
// assigned broadcast followed by an accumulate, for every dtype pair; in place too.
TEST_P(IndexOps, SegmentSumBackwardWithAnAddendIsBroadcastThenAccumulate) {
  const Case p = GetParam();
  const Graph g = make_graph(p.graph);
  const Csr csr = csr_of(g.receivers, g.nodes);
  std::vector<DType> node_dtypes = {p.dtype};
  if (p.dtype == DType::bf16 || p.dtype == DType::f16) node_dtypes.push_back(DType::f32);  // f32 node gradient
  for (DType node_dtype : node_dtypes) {
    const Tensor grad_out = random_tensor({g.nodes, p.cols}, node_dtype, 33);
    const Tensor addend = random_tensor({g.edges(), p.cols}, p.dtype, 34);
    Tensor fused = Tensor::empty({g.edges(), p.cols}, p.dtype);
    kernels::segment_sum_backward(fused, grad_out, csr.offsets, addend);
    Tensor separate = segment_sum_backward(grad_out, csr, g.edges(), p.dtype);
    kernels::accumulate(separate, addend.clone());
    Tensor twice = addend.clone();
    kernels::accumulate(twice, segment_sum_backward(grad_out, csr, g.edges(), p.dtype));
    EXPECT_TRUE(bitwise_equal(fused, separate)) << dtype_name(node_dtype);
    EXPECT_TRUE(bitwise_equal(fused, twice)) << dtype_name(node_dtype);
    Tensor in_place = addend.clone();
    kernels::segment_sum_backward(in_place, grad_out, csr.offsets, in_place);
    EXPECT_TRUE(bitwise_equal(in_place, fused)) << "addend is grad_x";
    if (p.dtype == DType::f32 || p.dtype == DType::f64) {
      std::vector<double> want = reference_gather(grad_out.to_doubles(), g.receivers, p.cols);
      const std::vector<double> base = addend.to_doubles();
      for (size_t i = 0; i < want.size(); ++i) want[i] += base[i];
      EXPECT_TRUE(all_close(fused.to_doubles(), want, tolerance_for(p.dtype), "addend + receiver row"));
    }
  }
}

// f64 only: d/dx of sum(op(x) * w) by central differences against the backward op.
class IndexGradients : public testing::TestWithParam<Case> {};

TEST_P(IndexGradients, BackwardMatchesFiniteDifferences) {
  const Case p = GetParam();
  const Graph g = make_graph(p.graph);
  auto weighted_sum = [](const Tensor& t, const std::vector<double>& w) {
    const std::vector<double> v = t.to_doubles();
    double sum = 0;
    for (size_t i = 0; i < v.size(); ++i) sum += v[i] * w[i];
    return sum;
  };
  {
    Tensor x = random_tensor({g.nodes, p.cols}, DType::f64, 41);
    Tensor w = random_tensor({g.edges(), p.cols}, DType::f64, 42);
    const std::vector<double> weights = w.to_doubles();
    Tensor grad_x = gather_backward(w, csr_of(g.senders, g.nodes), g.nodes, DType::f64);
    EXPECT_TRUE(test::gradient_matches(
        grad_x, x, [&] { return weighted_sum(gather(x, g.senders, DType::f64), weights); }, "gather grad_x"));
  }
  if (g.edges() > 0) {
    const Csr csr = csr_of(g.receivers, g.nodes);
    Tensor x = random_tensor({g.edges(), p.cols}, DType::f64, 43);
    Tensor w = random_tensor({g.nodes, p.cols}, DType::f64, 44);
    const std::vector<double> weights = w.to_doubles();
    Tensor grad_x = segment_sum_backward(w, csr, g.edges(), DType::f64);
    EXPECT_TRUE(test::gradient_matches(
        grad_x, x, [&] { return weighted_sum(segment_sum(x, csr, g.nodes, DType::f64), weights); },
        "segment_sum grad_x"));
  }
}

std::vector<Case> f64_cases() {
  std::vector<Case> cases;
  for (const Case& c : all_cases())
    if (c.dtype == DType::f64) cases.push_back(c);
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Graphs, IndexOps, testing::ValuesIn(all_cases()), case_name);
INSTANTIATE_TEST_SUITE_P(Graphs, IndexGradients, testing::ValuesIn(f64_cases()), case_name);

TEST(SegmentSum, AccumulateAddsAndEdgeBlocksMatchBitwise) {
  const Graph g = make_graph(GraphKind::Dense);
  const int64_t cols = 65, edges = g.edges();
  const Csr csr = csr_of(g.receivers, g.nodes);
  Tensor x = random_tensor({edges, cols}, DType::bf16, 51);

  // accumulate=true adds onto what out holds.
  Tensor initial = random_tensor({g.nodes, cols}, DType::f32, 52);
  Tensor out = initial.clone();
  kernels::segment_sum_forward(out, x, csr.offsets, true);
  std::vector<double> want = reference_scatter_sum(x.to_doubles(), g.receivers, g.nodes, cols);
  const std::vector<double> start = initial.to_doubles();
  for (size_t i = 0; i < want.size(); ++i) want[i] += start[i];
  EXPECT_TRUE(all_close(out.to_doubles(), want, tolerance_for(DType::f32, max_degree(g.receivers, g.nodes)), "+="));

  // Two edge chunks split inside a group, with chunk-local offsets, give the
  // unchunked f32 sums bitwise.
  Tensor whole = segment_sum(x, csr, g.nodes, DType::f32);
  const std::vector<int32_t> offsets = i32_values(csr.offsets);
  const int32_t split = offsets[5] + 3;  // node 5, the busiest, spans both chunks
  ASSERT_LT(split, offsets[6]);
  std::vector<int32_t> first_offsets, second_offsets;
  for (int32_t o : offsets) {
    first_offsets.push_back(std::min(o, split));
    second_offsets.push_back(std::max(o - split, 0));
  }
  Tensor chunked = Tensor::empty({g.nodes, cols}, DType::f32);
  kernels::segment_sum_forward(chunked, x.slice_rows(0, split), i32_tensor(first_offsets), false);
  kernels::segment_sum_forward(chunked, x.slice_rows(split, edges - split), i32_tensor(second_offsets), true);
  EXPECT_TRUE(bitwise_equal(chunked, whole));
}

TEST(IndexDeterminism, BitwiseAcrossThreadCounts) {
  const int saved_threads = omp_get_max_threads();
  const int64_t nodes = 3001, edges = 20011, cols = 130;
  Graph g;
  g.nodes = nodes;
  g.senders = skewed_endpoints(edges, nodes, 61);  // node 5 is a hub of ~6700 edges
  g.receivers = skewed_endpoints(edges, nodes, 62);
  std::sort(g.receivers.begin(), g.receivers.end());
  const Csr by_sender = csr_of(g.senders, nodes), by_receiver = csr_of(g.receivers, nodes);
  for (DType dtype : {DType::f32, DType::bf16}) {
    Tensor node_rows = random_tensor({nodes, cols}, dtype, 63), edge_rows = random_tensor({edges, cols}, dtype, 64);
    std::vector<std::vector<Tensor>> runs;
    for (int threads : {1, 2, 3}) {
      omp_set_num_threads(threads);
      runs.push_back({gather(node_rows, g.senders, dtype), gather_backward(edge_rows, by_sender, nodes, DType::f32),
                      segment_sum(edge_rows, by_receiver, nodes, dtype),
                      segment_sum_backward(node_rows, by_receiver, edges, dtype)});
    }
    omp_set_num_threads(saved_threads);
    for (size_t run = 1; run < runs.size(); ++run)
      for (size_t op = 0; op < runs[run].size(); ++op)
        EXPECT_TRUE(bitwise_equal(runs[run][op], runs[0][op]))
            << dtype_name(dtype) << " op " << op << " differs between 1 and " << run + 1 << " threads";
  }
}

TEST(IndexMeta, RunsWithoutDataAndAllocatesNothing) {
  const Device meta = Device::meta;
  const int64_t nodes = 40962, edges = 245760, cols = 512;
  Tensor x = Tensor::empty({nodes, cols}, DType::bf16, meta), edge_rows = Tensor::empty({edges, cols}, DType::bf16, meta);
  Tensor index = Tensor::empty({edges}, DType::i32, meta), order = Tensor::empty({edges}, DType::i32, meta);
  Tensor offsets = Tensor::empty({nodes + 1}, DType::i32, meta);
  Tensor node_sum = Tensor::empty({nodes, cols}, DType::f32, meta);
  Tensor bf16_nodes = Tensor::empty({nodes, cols}, DType::bf16, meta);
  Tensor part = Tensor::empty({nodes / 2, cols}, DType::bf16, meta), rows = Tensor::empty({nodes / 2}, DType::i32, meta);
  const int64_t allocs_before = allocator_for(meta).stats().num_allocs;
  EXPECT_NO_THROW(kernels::gather_rows_forward(edge_rows, x, index));
  EXPECT_NO_THROW(kernels::gather_rows_backward(node_sum, edge_rows, order, offsets));
  EXPECT_NO_THROW(kernels::segment_sum_forward(node_sum, edge_rows, offsets, true));
  EXPECT_NO_THROW(kernels::segment_sum_backward(edge_rows, node_sum, offsets));
  EXPECT_NO_THROW(kernels::build_csr(order, offsets, index, nodes));
  EXPECT_NO_THROW(kernels::index_add_rows(bf16_nodes, part, rows));
  EXPECT_EQ(allocator_for(meta).stats().num_allocs, allocs_before);
  EXPECT_THROW(kernels::index_add_rows(node_sum, part, rows), std::invalid_argument);  // f32 acc, bf16 rows
  EXPECT_NO_THROW(kernels::add_gathered_rows(edge_rows, edge_rows, x, index, bf16_nodes, index));
  EXPECT_EQ(allocator_for(meta).stats().num_allocs, allocs_before);
  Tensor short_offsets = Tensor::empty({nodes}, DType::i32, meta);  // shape checks still apply
  EXPECT_THROW(kernels::segment_sum_forward(node_sum, edge_rows, short_offsets, false), std::invalid_argument);
}

void expect_invalid(const std::function<void()>& call, const std::string& must_mention) {
  try {
    call();
    ADD_FAILURE() << "accepted; expected an error mentioning " << must_mention;
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find(must_mention), std::string::npos) << e.what();
  }
}

TEST(IndexValidation, RejectsBadIndicesAndShapesWithTheOpName) {
  Tensor x = random_tensor({4, 3}, DType::f32, 71);
  Tensor out = Tensor::empty({3, 3}, DType::f32);
  expect_invalid([&] { kernels::gather_rows_forward(out, x, i32_tensor({0, 4, 1})); }, "gather_rows_forward");
  expect_invalid([&] { kernels::gather_rows_forward(out, x, i32_tensor({0, -1, 1})); }, "outside [0, 4)");
  Tensor index64 = Tensor::from_doubles({0, 1, 2}, {3}, DType::i64);
  expect_invalid([&] { kernels::gather_rows_forward(out, x, index64); }, "i64[3]");
  Tensor out64 = Tensor::empty({3, 3}, DType::f64);
  expect_invalid([&] { kernels::gather_rows_forward(out64, x, i32_tensor({0, 1, 2})); }, "f64[3, 3]");
  Tensor out_wide = Tensor::empty({3, 4}, DType::f32);
  expect_invalid([&] { kernels::gather_rows_forward(out_wide, x, i32_tensor({0, 1, 2})); }, "[3, 3]");

  Tensor edge_rows = random_tensor({3, 3}, DType::f32, 72), node_rows = Tensor::empty({4, 3}, DType::f32);
  expect_invalid([&] { kernels::segment_sum_forward(node_rows, edge_rows, i32_tensor({0, 1, 2, 3, 2}), false); },
                 "decrease");
  expect_invalid([&] { kernels::segment_sum_forward(node_rows, edge_rows, i32_tensor({0, 1, 1, 1, 2}), false); },
                 "end at the edge count 3");
  expect_invalid([&] { kernels::segment_sum_backward(edge_rows, node_rows, i32_tensor({1, 1, 2, 3, 3})); },
                 "start at 0");
  expect_invalid(
      [&] { kernels::gather_rows_backward(node_rows, edge_rows, i32_tensor({0, 3, 1}), i32_tensor({0, 1, 2, 3, 3})); },
      "order value 3");

  Tensor acc = random_tensor({4, 3}, DType::f32, 73);
  expect_invalid([&] { kernels::index_add_rows(acc, edge_rows, i32_tensor({0, 4, 1})); }, "index_add_rows: rows value 4");
  expect_invalid([&] { kernels::index_add_rows(acc, edge_rows, i32_tensor({0, 1})); }, "[2, 3]");
  Tensor edge_rows64 = random_tensor({3, 3}, DType::f64, 74);
  expect_invalid([&] { kernels::index_add_rows(acc, edge_rows64, i32_tensor({0, 1, 2})); }, "one dtype");
  Tensor sum = Tensor::empty({3, 3}, DType::f32);
  expect_invalid([&] { kernels::add_gathered_rows(sum, edge_rows, x, i32_tensor({0, 1, 2}), x, i32_tensor({0, 4, 2})); },
                 "add_gathered_rows: r_index value 4");
  expect_invalid([&] { kernels::add_gathered_rows(sum, edge_rows, x, i32_tensor({0, 1}), x, i32_tensor({0, 1, 2})); },
                 "s_index must be i32[3]");
  Tensor wrong_addend = random_tensor({3, 3}, DType::f64, 77);
  expect_invalid([&] { kernels::segment_sum_backward(edge_rows, node_rows, i32_tensor({0, 1, 2, 3, 3}), wrong_addend); },
                 "addend must have");
  Tensor short_base = random_tensor({2, 3}, DType::f32, 76);
  expect_invalid([&] { kernels::add_gathered_rows(sum, short_base, x, i32_tensor({0, 1, 2}), x, i32_tensor({0, 1, 2})); },
                 "base must have");
  Tensor x64 = random_tensor({4, 3}, DType::f64, 75);
  expect_invalid([&] { kernels::add_gathered_rows(sum, edge_rows, x64, i32_tensor({0, 1, 2}), x, i32_tensor({0, 1, 2})); },
                 "one float dtype");

  Tensor order = Tensor::empty({3}, DType::i32), offsets = Tensor::empty({4}, DType::i32);
  expect_invalid([&] { kernels::build_csr(order, offsets, i32_tensor({0, 3, 1}), 3); }, "build_csr");
  expect_invalid([&] { kernels::build_csr(order, offsets, i32_tensor({0, 2, 1}), 4); }, "i32[5]");
}

// Graph tensors checked once when uploaded: a bad value is refused there, naming
// what was uploaded, and leaves no mark; a good one is marked and the ops on it
// give the same results as with their own checks.
TEST(IndexValidation, GraphTensorsAreCheckedOnceAtUpload) {
  expect_invalid([&] { kernels::check_graph_index(i32_tensor({0, 4, 1}), 4, "graph upload: senders"); },
                 "graph upload: senders");
  Tensor bad = i32_tensor({0, -1, 1});
  expect_invalid([&] { kernels::check_graph_index(bad, 4, "graph upload: senders"); }, "outside [0, 4)");
  EXPECT_FALSE(kernels::index_checked(bad, 4));
  Tensor bad_offsets = i32_tensor({0, 2, 1, 3});
  expect_invalid([&] { kernels::check_graph_offsets(bad_offsets, 3, "graph upload: offsets"); }, "decrease");
  EXPECT_FALSE(kernels::offsets_checked(bad_offsets, 3));
  expect_invalid([&] { kernels::check_graph_index(i32_tensor({0, 1, 2, 3}).slice_rows(1, 2), 4, "view"); },
                 "checked whole");

  Tensor x = random_tensor({4, 3}, DType::f32, 73);
  Tensor index = i32_tensor({3, 0, 0, 2, 1});
  Tensor plain_out = Tensor::empty({5, 3}, DType::f32), checked_out = Tensor::empty({5, 3}, DType::f32);
  kernels::gather_rows_forward(plain_out, x, index);
  kernels::check_graph_index(index, 4, "graph upload: senders");
  EXPECT_TRUE(kernels::index_checked(index, 4));
  kernels::gather_rows_forward(checked_out, x, index);
  EXPECT_EQ(checked_out.to_doubles(), plain_out.to_doubles());
  // Checked for 4 rows, used with 3: checked again, and refused.
  Tensor three = random_tensor({3, 3}, DType::f32, 74);
  expect_invalid([&] { kernels::gather_rows_forward(plain_out, three, index); }, "outside [0, 3)");
}

// The cuda backend is checked against the cpu op by op in test_backend_ops.cpp; here, the dispatch.
TEST(IndexCuda, GathersLikeTheCpuAndRangeChecksOnTheDevice) {
  std::string why;
  if (!cuda_available(&why)) GTEST_SKIP() << "no cuda device: " << why;
  Tensor x = random_tensor({4, 3}, DType::f32, 81);
  Tensor out = Tensor::empty({2, 3}, DType::f32), gpu_out = Tensor::empty({2, 3}, DType::f32, Device::cuda);
  kernels::gather_rows_forward(out, x, i32_tensor({0, 3}));
  kernels::gather_rows_forward(gpu_out, x.to(Device::cuda), i32_tensor({0, 3}, Device::cuda));
  EXPECT_EQ(gpu_out.to_doubles(), out.to_doubles());
  EXPECT_THROW(kernels::gather_rows_forward(gpu_out, x.to(Device::cuda), i32_tensor({0, 4}, Device::cuda)),
               std::invalid_argument);
}

// Groups longer than kGroupSplit rows are summed in fixed sub-ranges combined in
// order (kernels/group_split.h). The expected sums are written out here in that
// order (f32 accumulation of bf16 rows), so the test fails if the kernel sums a
// long group straight through (the rows are sized so that the orders differ) or
// splits elsewhere; they also stay within f32 rounding of the f64 sums.
struct LongGroups {
  int64_t nodes = 0, edges = 0;
  std::vector<int32_t> offsets, receivers, senders;
};

LongGroups long_groups() {
  // Sizes around the split, several sub-ranges, more sub-ranges than a block has
  // warps, empty groups; enough groups for several blocks of a capped grid.
  const std::vector<int64_t> sizes = {0, 1, 511, 512, 513, 1200, 3, 4700, 0, 1024, 1025, 7, 1, 0, 40, 2100, 2, 9,
                                      512, 600, 4, 5, 6, 3000, 8, 2, 1, 700};
  LongGroups g;
  g.nodes = static_cast<int64_t>(sizes.size());
  g.offsets.push_back(0);
  for (int64_t n = 0; n < g.nodes; ++n) {
    for (int64_t i = 0; i < sizes[static_cast<size_t>(n)]; ++i) g.receivers.push_back(static_cast<int32_t>(n));
    g.offsets.push_back(static_cast<int32_t>(g.receivers.size()));
  }
  g.edges = static_cast<int64_t>(g.receivers.size());
  std::mt19937 rng(71);
  g.senders = g.receivers;  // the same groups in a shuffled edge order: the gather backward's CSR
  std::shuffle(g.senders.begin(), g.senders.end(), rng);
  return g;
}

// The split order, in f32, of rows taken through `order` (null: identity), starting from `start`.
std::vector<float> split_order_sums(const std::vector<double>& rows, const int32_t* order,
                                    const std::vector<int32_t>& offsets, int64_t cols, const std::vector<double>* start) {
  const int64_t nodes = static_cast<int64_t>(offsets.size()) - 1;
  std::vector<float> out(static_cast<size_t>(nodes * cols));
  for (int64_t n = 0; n < nodes; ++n)
    for (int64_t c = 0; c < cols; ++c) {
      const size_t at = static_cast<size_t>(n * cols + c);
      float total = start ? static_cast<float>((*start)[at]) : 0.0f;
      for (int64_t first = offsets[n]; first < offsets[n + 1]; first += kernels::kGroupSplit) {
        float part = first == offsets[n] ? total : 0.0f;
        for (int64_t i = first; i < std::min<int64_t>(offsets[n + 1], first + kernels::kGroupSplit); ++i)
          part += static_cast<float>(rows[static_cast<size_t>((order ? order[i] : i) * cols + c)]);
        total = first == offsets[n] ? part : total + part;
      }
      out[at] = total;
    }
  return out;
}

TEST(SegmentSum, LongGroupsAreSummedInFixedSubRangesInOrder) {
  const LongGroups g = long_groups();
  const int64_t cols = 70;
  // Values of mixed magnitude, so that the order of the f32 additions shows.
  std::vector<double> values(static_cast<size_t>(g.edges * cols));
  std::mt19937 rng(72);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  for (size_t i = 0; i < values.size(); ++i) values[i] = u(rng) * (i % 5 == 0 ? 300.0 : 1.0);
  const Tensor x = Tensor::from_doubles(values, {g.edges, cols}, DType::bf16);
  const std::vector<double> rows = x.to_doubles();
  const Tensor offsets = i32_tensor(g.offsets);

  Tensor out = Tensor::empty({g.nodes, cols}, DType::f32);
  kernels::segment_sum_forward(out, x, offsets, false);
  const std::vector<float> want = split_order_sums(rows, nullptr, g.offsets, cols, nullptr);
  const std::vector<double> got = out.to_doubles();
  int64_t differs_from_straight = 0;
  const std::vector<double> f64 = reference_scatter_sum(rows, g.receivers, g.nodes, cols);
  for (int64_t n = 0; n < g.nodes; ++n)
    for (int64_t c = 0; c < cols; ++c) {
      const size_t at = static_cast<size_t>(n * cols + c);
      ASSERT_EQ(static_cast<float>(got[at]), want[at]) << "group " << n << ", column " << c;
      float straight = 0.0f;
      for (int32_t i = g.offsets[static_cast<size_t>(n)]; i < g.offsets[static_cast<size_t>(n) + 1]; ++i)
        straight += static_cast<float>(rows[static_cast<size_t>(i * cols + c)]);
      differs_from_straight += straight != want[at];
    }
  EXPECT_GT(differs_from_straight, 0) << "no sum where the split order matters: the test could not fail";
  EXPECT_TRUE(all_close(got, f64, tolerance_for(DType::f32, 4700), "against f64"));

  // Accumulating: the first sub-range starts from out's value.
  const Tensor initial = random_tensor({g.nodes, cols}, DType::f32, 73);
  Tensor acc = initial.clone();
  kernels::segment_sum_forward(acc, x, offsets, true);
  const std::vector<double> start = initial.to_doubles();
  const std::vector<float> want_acc = split_order_sums(rows, nullptr, g.offsets, cols, &start);
  const std::vector<double> got_acc = acc.to_doubles();
  for (size_t i = 0; i < want_acc.size(); ++i) ASSERT_EQ(static_cast<float>(got_acc[i]), want_acc[i]) << i;

  // The gather's backward sums each sender's edges through the CSR order alike.
  const Csr by_sender = csr_of(g.senders, g.nodes);
  const Tensor grad_x = gather_backward(x, by_sender, g.nodes, DType::f32);
  const std::vector<int32_t> order = i32_values(by_sender.order);
  const std::vector<float> want_grad = split_order_sums(rows, order.data(), i32_values(by_sender.offsets), cols, nullptr);
  const std::vector<double> got_grad = grad_x.to_doubles();
  for (size_t i = 0; i < want_grad.size(); ++i) ASSERT_EQ(static_cast<float>(got_grad[i]), want_grad[i]) << i;
}

TEST(IndexCuda, LongGroupsSumBitwiseLikeTheCpu) {
  std::string why;
  if (!cuda_available(&why)) GTEST_SKIP() << "no cuda device: " << why;
  const LongGroups g = long_groups();
  const Csr by_sender = csr_of(g.senders, g.nodes);
  const Tensor offsets = i32_tensor(g.offsets), gpu_offsets = offsets.to(Device::cuda);
  for (DType dtype : {DType::bf16, DType::f32, DType::f64}) {
    for (int64_t cols : {int64_t(3), int64_t(130)}) {  // under one pass of columns, and over one
      const std::string what = std::string(dtype_name(dtype)) + ", " + std::to_string(cols) + " columns";
      const DType sum_dtype = dtype == DType::f64 ? DType::f64 : DType::f32;
      const Tensor x = random_tensor({g.edges, cols}, dtype, 74), initial = random_tensor({g.nodes, cols}, sum_dtype, 75);
      for (bool accumulate : {false, true}) {
        Tensor out = initial.clone(), gpu_out = initial.to(Device::cuda);
        kernels::segment_sum_forward(out, x, offsets, accumulate);
        kernels::segment_sum_forward(gpu_out, x.to(Device::cuda), gpu_offsets, accumulate);
        EXPECT_TRUE(bitwise_equal(gpu_out.to(Device::cpu), out)) << what << (accumulate ? ", accumulating" : "");
      }
      Tensor grad = Tensor::empty({g.nodes, cols}, sum_dtype), gpu_grad = Tensor::empty({g.nodes, cols}, sum_dtype, Device::cuda);
      kernels::gather_rows_backward(grad, x, by_sender.order, by_sender.offsets);
      kernels::gather_rows_backward(gpu_grad, x.to(Device::cuda), by_sender.order.to(Device::cuda),
                                    by_sender.offsets.to(Device::cuda));
      EXPECT_TRUE(bitwise_equal(gpu_grad.to(Device::cpu), grad)) << what << ", gather backward";
    }
  }
}

}  // namespace
}  // namespace gc
