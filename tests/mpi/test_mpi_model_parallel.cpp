// Graph-sharded model parallel across real ranks (mpirun -np 2 and -np 4): the
// sharded network's output rows and its parameter gradients (summed over the
// ranks) equal the one-process network's, in f64 to 1e-12 and in f32 to its
// rounding; training with --model-parallel Q follows the one-process loss
// curve; data and model parallel combine; and every rank's peaks equal its dry
// run (`--ranks P --model-parallel Q` on meta) to the byte.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "kernels/collectives.h"
#include "model/partition.h"
#include "runtime/allocator.h"
#include "runtime/communicator.h"
#include "runtime/random.h"
#include "tests/mpi/mpi_util.h"
#include "tests/test_util.h"
#include "tools/train/trainer.h"

namespace gc {
namespace {

using mpi_test::rank_trainer;
using mpi_test::world;

std::vector<double> normals(int64_t n, uint64_t seed) {
  std::vector<double> v(static_cast<size_t>(n));
  uint64_t state = seed;
  for (double& x : v) x = next_normal(state);
  return v;
}

struct Result {
  std::vector<double> output;                  // [rows, out]
  std::vector<std::vector<double>> gradients;  // per parameter
};

// loss = sum(output * weights) for the rows [first, first + rows) of each sample.
Result run_network(const model::GraphCastConfig& config, const model::GraphCastGeometry& geometry,
                   const model::GeometryShard* shard, int64_t first, int64_t rows,
                   const std::vector<model::StagePlan>& plan) {
  model::GraphCastNet net(config, Device::cpu, 5);
  model::DeviceGeometry g = model::upload_geometry(geometry, config, Device::cpu, shard, shard ? &world() : nullptr);
  const int64_t grid = geometry.num_grid_nodes(), in = config.in_channels - 3, out = config.out_channels;
  const std::vector<double> x_all = normals(config.batch * grid * in, 11), w_all = normals(config.batch * grid * out, 12);
  std::vector<double> x, w;
  for (int b = 0; b < config.batch; ++b) {
    x.insert(x.end(), x_all.begin() + (b * grid + first) * in, x_all.begin() + (b * grid + first + rows) * in);
    w.insert(w.end(), w_all.begin() + (b * grid + first) * out, w_all.begin() + (b * grid + first + rows) * out);
  }
  Var input(Tensor::from_doubles(x, {config.batch * rows, in}, config.compute_dtype, Device::cpu));
  Var y = net.forward(input, g, plan);
  Var weights(Tensor::from_doubles(w, {config.batch * rows, out}, y.dtype(), Device::cpu));
  backward(sum_all(mul(y, weights)));
  Result r;
  r.output = y.value().to_doubles();
  for (const Var& p : net.parameters()) {
    if (!p.grad().defined()) {
      r.gradients.emplace_back();
      continue;
    }
    Tensor grad = p.grad().clone();
    if (shard) kernels::all_reduce_sum(world(), grad);
    r.gradients.push_back(grad.to_doubles());
  }
  return r;
}

class MpiModelParallel : public ::testing::TestWithParam<DType> {};

TEST_P(MpiModelParallel, OutputAndGradientsEqualOneProcess) {
  const DType dtype = GetParam();
  const int Q = world().size();
  const model::Grid grid = model::make_equiangular_grid(10.0);  // 19 x 36
  const model::GraphCastGeometry geometry = model::build_geometry(grid, 2);
  model::GraphCastConfig config;
  config.latent = 8;
  config.layers = 2;
  config.mesh_level = 2;
  config.in_channels = 7;
  config.out_channels = 3;
  config.compute_dtype = dtype;
  config.batch = 2;
  const model::Partition partition = model::partition_geometry(geometry, Q, 2);
  const model::GeometryShard shard = model::shard_geometry(geometry, partition, world().rank());
  EXPECT_GT(shard.mesh.halo(), 0);
  EXPECT_GT(shard.m2g.halo(), 0);
  // Plain, and every processor step checkpointed (its halo exchanged again in backward).
  for (const auto& plan : {model::plan_none(config.layers), model::plan_every(config.layers, 1)}) {
  SCOPED_TRACE(plan.size() == 1 ? "no remat" : "remat every:1");
  const Result whole = run_network(config, geometry, nullptr, 0, geometry.num_grid_nodes(), plan);
  const Result mine = run_network(config, geometry, &shard, shard.grid_first, shard.grid_nodes, plan);
  // f64: the same sums in other groupings; f32: its rounding through 4 interaction steps.
  const double tol = dtype == DType::f64 ? 1e-12 : 2e-5;
  const int64_t grid_nodes = geometry.num_grid_nodes(), out = config.out_channels;
  ASSERT_EQ(mine.output.size(), static_cast<size_t>(config.batch * shard.grid_nodes * out));
  double scale = 0;
  for (double v : whole.output) scale = std::max(scale, std::fabs(v));
  for (int b = 0; b < config.batch; ++b)
    for (int64_t i = 0; i < shard.grid_nodes * out; ++i)
      ASSERT_NEAR(mine.output[static_cast<size_t>(b * shard.grid_nodes * out + i)],
                  whole.output[static_cast<size_t>((b * grid_nodes + shard.grid_first) * out + i)], tol * scale)
          << "sample " << b << " value " << i;
  ASSERT_EQ(mine.gradients.size(), whole.gradients.size());
  for (size_t p = 0; p < whole.gradients.size(); ++p) {
    ASSERT_EQ(mine.gradients[p].size(), whole.gradients[p].size()) << "parameter " << p;
    double g_scale = 1e-30;
    for (double v : whole.gradients[p]) g_scale = std::max(g_scale, std::fabs(v));
    for (size_t i = 0; i < whole.gradients[p].size(); ++i)
      ASSERT_NEAR(mine.gradients[p][i], whole.gradients[p][i], tol * g_scale) << "parameter " << p << " element " << i;
  }
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, MpiModelParallel, ::testing::Values(DType::f64, DType::f32),
                         [](const ::testing::TestParamInfo<DType>& info) { return std::string(dtype_name(info.param)); });

TEST(MpiModelParallelPartition, EachRanksHaloIsWhatItsOwnersSend) {
  const int Q = world().size();
  const model::GraphCastGeometry geometry = model::build_geometry(model::make_equiangular_grid(10.0), 2);
  const model::Partition partition = model::partition_geometry(geometry, Q, 2);
  // Every rank computes every shard: what q sends r is what r receives from q.
  std::vector<model::GeometryShard> shards;
  for (int r = 0; r < Q; ++r) shards.push_back(model::shard_geometry(geometry, partition, r));
  int64_t grid = 0, mesh = 0, g2m = 0, mesh_edges = 0, m2g = 0;
  for (int r = 0; r < Q; ++r) {
    const model::GeometryShard& s = shards[static_cast<size_t>(r)];
    grid += s.grid_nodes;
    mesh += static_cast<int64_t>(s.mesh_nodes.size());
    g2m += s.g2m.graph.num_edges();
    mesh_edges += s.mesh.graph.num_edges();
    m2g += s.m2g.graph.num_edges();
    for (int q = 0; q < Q; ++q) {
      const model::GeometryShard& o = shards[static_cast<size_t>(q)];
      EXPECT_EQ(o.g2m.send_to[static_cast<size_t>(r)], s.g2m.halo_from[static_cast<size_t>(q)]);
      EXPECT_EQ(o.mesh.send_to[static_cast<size_t>(r)], s.mesh.halo_from[static_cast<size_t>(q)]);
      EXPECT_EQ(o.m2g.send_to[static_cast<size_t>(r)], s.m2g.halo_from[static_cast<size_t>(q)]);
    }
    EXPECT_TRUE(s.g2m.halo_from[static_cast<size_t>(r)].empty());
  }
  EXPECT_EQ(grid, geometry.num_grid_nodes());
  EXPECT_EQ(mesh, geometry.num_mesh_nodes());
  EXPECT_EQ(g2m, geometry.g2m.num_edges());
  EXPECT_EQ(mesh_edges, geometry.mesh.num_edges());
  EXPECT_EQ(m2g, geometry.m2g.num_edges());
}

// A tiny demo run of 3 steps on mesh 2 (every band of 4 ranks holds mesh vertices).
TrainOptions tiny(const std::vector<std::string>& extra) { return mpi_test::tiny_run(2, 3, "mpi_mp_data_cache", extra); }

// Q = every rank (one replica), and at -np 4 also 2 replicas of 2 shards.
std::vector<int> shard_counts() {
  std::vector<int> q = {world().size()};
  if (world().size() == 4) q.push_back(2);
  return q;
}

TEST(MpiModelParallelTraining, LossCurveEqualsOneProcess) {
  for (int Q : shard_counts()) {
    for (const char* rollout : {"1", "2"}) {
      SCOPED_TRACE("--model-parallel " + std::to_string(Q) + " --rollout " + rollout);
      const int replicas = world().size() / Q;
      const std::vector<std::string> flags = {"--batch", std::to_string(replicas + 1), "--rollout", rollout};
      Trainer one(prepare_run(tiny(flags)));
      one.train();
      std::vector<std::string> sharded = flags;
      sharded.insert(sharded.end(), {"--model-parallel", std::to_string(Q)});
      std::unique_ptr<Trainer> ranks = rank_trainer(tiny(sharded));
      ranks->train();
      ASSERT_EQ(ranks->history().size(), one.history().size());
      // f32 rounding of sums grouped by rank; measured: 1e-7.
      for (size_t s = 0; s < one.history().size(); ++s) {
        EXPECT_NEAR(ranks->history()[s].loss, one.history()[s].loss, 1e-6 * std::fabs(one.history()[s].loss))
            << "step " << s + 1;
        EXPECT_NEAR(ranks->history()[s].grad_norm, one.history()[s].grad_norm, 1e-5 * one.history()[s].grad_norm)
            << "step " << s + 1;
      }
      ASSERT_EQ(ranks->memory().ranks.size(), static_cast<size_t>(world().size()));
      for (const RankSummary& r : ranks->memory().ranks) {
        EXPECT_EQ(r.shard, r.rank % Q);
        EXPECT_GT(r.bytes_sent, 0);
      }
    }
  }
}

TEST(MpiModelParallelMemory, EveryRanksPeaksEqualItsDryRunToTheByte) {
  for (int Q : shard_counts()) {
    for (const char* remat : {"none", "all"}) {
      SCOPED_TRACE("--model-parallel " + std::to_string(Q) + " --remat " + remat);
      const std::vector<std::string> flags = {"--batch", std::to_string(world().size() / Q), "--model-parallel",
                                              std::to_string(Q), "--remat", remat};
      allocator_for(Device::cpu).empty_cache();
      allocator_for(Device::meta).empty_cache();
      std::unique_ptr<Trainer> real = rank_trainer(tiny(flags));
      real->train();
      const AllocatorStats real_stats = real->memory().stats;
      real.reset();
      allocator_for(Device::cpu).empty_cache();
      allocator_for(Device::meta).empty_cache();
      std::unique_ptr<Communicator> meta;
      std::unique_ptr<Trainer> dry = mpi_test::dry_rank_trainer(tiny(flags), meta);
      dry->train();
      EXPECT_EQ(dry->memory().stats.peak_allocated, real_stats.peak_allocated);
      EXPECT_EQ(dry->memory().stats.peak_reserved, real_stats.peak_reserved);
      EXPECT_EQ(dry->memory().stats.at_peak, real_stats.at_peak);
      EXPECT_GT(real_stats.category_peak[static_cast<size_t>(Category::communication)], 0);
    }
  }
}

// --remat auto under data x model parallel with uneven shares of --batch: every
// rank must run the same plan (the halo exchanges are collectives of all ranks),
// the one for the first replica's tightest shard; the run completes, every rank
// fits the budget, and each rank's peaks equal its dry run.
TEST(MpiModelParallelMemory, RematAutoPlansOnePlanForEveryRank) {
  const int Q = 2;
  const int replicas = world().size() / Q;
  const std::vector<std::string> base = {"--batch", std::to_string(replicas + 1), "--model-parallel", std::to_string(Q)};
  auto peak_of = [&](const char* remat) {  // this rank's dry-run peak reserved under a fixed plan
    std::vector<std::string> flags = base;
    flags.insert(flags.end(), {"--remat", remat});
    std::unique_ptr<Communicator> meta;
    std::unique_ptr<Trainer> dry = mpi_test::dry_rank_trainer(tiny(flags), meta);
    dry->train();
    return dry->memory().stats.peak_reserved;
  };
  // Rank 0 (the first replica's first shard) decides the budget: between its two fixed plans.
  // (The gathered tensors are freed before the real run: its peaks are compared to the byte.)
  int64_t budget = 0;
  {
    Tensor budgets = Tensor::from_doubles({static_cast<double>(peak_of("none") + peak_of("all")) / 2}, {1, 1}, DType::f64);
    Tensor all = Tensor::empty({world().size(), 1}, DType::f64);
    world().all_gather(budgets, all, std::vector<int64_t>(static_cast<size_t>(world().size()), 1));
    budget = static_cast<int64_t>(all.to_doubles()[0]);
  }
  std::vector<std::string> flags = base;
  flags.insert(flags.end(), {"--remat", "auto", "--mem-budget", std::to_string(budget) + "B"});
  allocator_for(Device::cpu).empty_cache();
  allocator_for(Device::meta).empty_cache();
  std::unique_ptr<Trainer> real = rank_trainer(tiny(flags));
  real->train();
  const AllocatorStats real_stats = real->memory().stats;
  EXPECT_LE(real_stats.peak_reserved, budget);
  // The plan is the same on every rank: its stages and chunking, gathered.
  const std::string plan = real->plan().description + " / " + std::to_string(real->plan().edge_chunks);
  real.reset();
  std::vector<double> mine(256, 0.0);
  for (size_t i = 0; i < plan.size() && i < mine.size(); ++i) mine[i] = static_cast<unsigned char>(plan[i]);
  Tensor t = Tensor::from_doubles(mine, {1, 256}, DType::f64);
  Tensor plans = Tensor::empty({world().size(), 256}, DType::f64);
  world().all_gather(t, plans, std::vector<int64_t>(static_cast<size_t>(world().size()), 1));
  const std::vector<double> every = plans.to_doubles();
  for (int r = 1; r < world().size(); ++r)
    EXPECT_TRUE(std::equal(every.begin(), every.begin() + 256, every.begin() + r * 256)) << "rank " << r << "'s plan";
  allocator_for(Device::cpu).empty_cache();
  allocator_for(Device::meta).empty_cache();
  std::unique_ptr<Communicator> meta;
  std::unique_ptr<Trainer> dry = mpi_test::dry_rank_trainer(tiny(flags), meta);
  dry->train();
  EXPECT_EQ(dry->memory().stats.peak_allocated, real_stats.peak_allocated);
  EXPECT_EQ(dry->memory().stats.peak_reserved, real_stats.peak_reserved);
}

}  // namespace
}  // namespace gc
