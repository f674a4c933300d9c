// mpi_util.h: what the multi-process tests share: the world, a tiny demo run's
// options, this rank's real trainer among all ranks, and this rank's dry run.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "runtime/communicator.h"
#include "tests/test_util.h"
#include "tools/train/trainer.h"

namespace gc::mpi_test {

inline Communicator& world() { return world_communicator(); }

// A tiny demo run (latent 8, 2 layers, a few steps, 4 trajectories of 8 frames):
// every rank its own data cache `cache`_rank<r> (no two processes write one file).
inline TrainOptions tiny_run(int mesh, int steps, const std::string& cache, const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"--mesh", std::to_string(mesh), "--latent", "8", "--layers", "2", "--steps",
                                   std::to_string(steps), "--quiet", "--no-eval", "--data-trajectories", "4",
                                   "--data-frames", "8", "--data-cache",
                                   test::scratch_folder(cache + "_rank" + std::to_string(world().rank()))};
  args.insert(args.end(), extra.begin(), extra.end());
  TrainOptions o;
  std::string help;
  EXPECT_TRUE(parse_train_options(args, &o, &help));
  return o;
}

// The run of this rank among all of world()'s.
inline std::unique_ptr<Trainer> rank_trainer(TrainOptions o) {
  o.ranks = world().size();
  o.rank = world().rank();
  RunSetup setup = prepare_run(o);
  setup.comm = &world();
  return std::make_unique<Trainer>(std::move(setup));
}

// This rank's dry run, as `gc_train --device meta --meta-target cpu --ranks P`
// makes it; `meta` keeps the dry run's communicator alive.
inline std::unique_ptr<Trainer> dry_rank_trainer(TrainOptions o, std::unique_ptr<Communicator>& meta) {
  o.device = Device::meta;
  o.meta_target = Device::cpu;
  o.ranks = world().size();
  o.rank = world().rank();
  meta = make_meta_communicator(o.rank, o.ranks);
  RunSetup setup = prepare_run(o);
  setup.comm = meta.get();
  return std::make_unique<Trainer>(std::move(setup));
}

}  // namespace gc::mpi_test
