// NCCL between GPUs: the device communicator of cuda ranks (one GPU each, its
// local rank's). Runs where the build has NCCL and a CUDA device answers;
// skipped otherwise, saying why (CI has no GPU). tools/gpu_check.sh runs these
// under `mpirun -np 1` (NCCL's single-GPU path) and tools/multi_gpu_check.sh on
// every GPU of a machine. The all-reduce on cuda equals the cpu one (MPI) within
// f32 rounding and gives the same bits on every rank; the model-parallel network
// on cuda equals the one-process network on the cpu within f32 rounding.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "kernels/collectives.h"
#include "model/partition.h"
#include "runtime/communicator.h"
#include "runtime/device.h"
#include "runtime/random.h"
#include "tests/mpi/mpi_util.h"
#include "tests/test_util.h"

namespace gc {
namespace {

using mpi_test::world;

// This rank's NCCL communicator, or null after GTEST_SKIP's reason.
Communicator* nccl(std::string* why) {
  if (!built_with_nccl()) {
    *why = "built without NCCL";
    return nullptr;
  }
  std::string reason;
  if (!cuda_available(&reason)) {
    *why = "no cuda device: " + reason;
    return nullptr;
  }
  static std::unique_ptr<Communicator> comm = make_device_communicator(Device::cuda, world());
  return comm.get();
}

TEST(Nccl, AllReduceOnCudaEqualsTheCpuSumWithTheSameBitsOnEveryRank) {
  std::string why;
  Communicator* comm = nccl(&why);
  if (!comm) GTEST_SKIP() << why;
  EXPECT_STREQ(comm->backend(), "nccl");
  EXPECT_EQ(comm->size(), world().size());
  const int64_t n = 100003;
  const std::vector<double> mine = test::random_values(static_cast<size_t>(n), 2000 + world().rank(), 2.0);
  Tensor on_cpu = Tensor::from_doubles(mine, {n}, DType::f32, Device::cpu);
  kernels::all_reduce_sum(world(), on_cpu);
  Tensor on_gpu = Tensor::from_doubles(mine, {n}, DType::f32, Device::cuda);
  kernels::all_reduce_sum(*comm, on_gpu);
  EXPECT_TRUE(test::all_close(on_gpu.to_doubles(), on_cpu.to_doubles(), test::tolerance_for(DType::f32, world().size()),
                              "all_reduce_sum on cuda"));
  // Every rank holds the same bits: gathered over MPI from the host copies.
  const std::vector<double> got = on_gpu.to_doubles();
  Tensor host = Tensor::from_doubles(got, {1, n}, DType::f64, Device::cpu);
  Tensor all = Tensor::empty({world().size(), n}, DType::f64, Device::cpu);
  world().all_gather(host, all, std::vector<int64_t>(static_cast<size_t>(world().size()), 1));
  for (int r = 1; r < world().size(); ++r)
    EXPECT_EQ(0, std::memcmp(static_cast<const double*>(all.data()) + r * n, all.data(), static_cast<size_t>(n) * 8))
        << "rank " << r;
}

TEST(Nccl, TheModelParallelNetworkOnCudaEqualsOneProcessOnTheCpu) {
  std::string why;
  Communicator* comm = nccl(&why);
  if (!comm) GTEST_SKIP() << why;
  const int Q = world().size();
  const model::GraphCastGeometry geometry = model::build_geometry(model::make_equiangular_grid(10.0), 2);
  model::GraphCastConfig config;
  config.latent = 16;
  config.layers = 2;
  config.mesh_level = 2;
  config.in_channels = 7;
  config.out_channels = 3;
  const model::Partition partition = model::partition_geometry(geometry, Q, config.layers);
  const model::GeometryShard shard = model::shard_geometry(geometry, partition, world().rank());
  const int64_t grid = geometry.num_grid_nodes(), in = config.in_channels - 3;
  std::vector<double> x(static_cast<size_t>(grid * in));
  uint64_t state = 3;
  for (double& v : x) v = next_normal(state);
  // One process on the cpu: every row.
  model::GraphCastNet whole_net(config, Device::cpu, 5);
  model::DeviceGeometry whole_geometry = model::upload_geometry(geometry, config, Device::cpu);
  NoGradGuard no_grad;
  const std::vector<double> whole =
      whole_net.forward(Var(Tensor::from_doubles(x, {grid, in}, DType::f32, Device::cpu)), whole_geometry).value().to_doubles();
  // This rank's rows on its GPU, the halos through NCCL.
  model::GraphCastNet net(config, Device::cuda, 5);
  model::DeviceGeometry g = model::upload_geometry(geometry, config, Device::cuda, &shard, comm);
  const std::vector<double> mine_x(x.begin() + shard.grid_first * in, x.begin() + (shard.grid_first + shard.grid_nodes) * in);
  const std::vector<double> mine =
      net.forward(Var(Tensor::from_doubles(mine_x, {shard.grid_nodes, in}, DType::f32, Device::cuda)), g).value().to_doubles();
  ASSERT_EQ(mine.size(), static_cast<size_t>(shard.grid_nodes * config.out_channels));
  double scale = 0;
  for (double v : whole) scale = std::max(scale, std::fabs(v));
  for (size_t i = 0; i < mine.size(); ++i)
    ASSERT_NEAR(mine[i], whole[static_cast<size_t>(shard.grid_first * config.out_channels) + i], 1e-4 * scale) << "value " << i;
}

}  // namespace
}  // namespace gc
