// test_init_from.cpp: gc_train --init-from (DeepMind's checkpoint starts a run:
// the configuration from the file, every weight from it) and --graphs (the run's
// graphs are the file's), on tests/data/deepmind; refusals name the problem.
#include <gtest/gtest.h>

#include <set>
#include <stdexcept>

#include "tests/test_util.h"
#include "tools/train/trainer.h"

namespace gc {
namespace {

const std::string kDir = "tests/data/deepmind/";

TrainOptions options_of(const std::vector<std::string>& args) {
  TrainOptions o;
  std::string help;
  EXPECT_TRUE(parse_train_options(args, &o, &help));
  return o;
}

TEST(InitFrom, ConfigurationAndWeightsComeFromTheCheckpoint) {
  // The flags' model (mesh 5, latent 512, 1 deg) is replaced by the file's.
  const TrainOptions o = options_of({"--preset", "graphcast-small", "--init-from", kDir + "checkpoint.npz", "--graphs",
                                     kDir + "graphs.npz", "--steps", "1", "--no-eval", "--quiet"});
  Trainer trainer(prepare_run(o));
  EXPECT_EQ(trainer.options().mesh_level, 2);
  EXPECT_EQ(trainer.options().latent, 32);
  EXPECT_EQ(trainer.options().layers, 2);
  EXPECT_EQ(trainer.options().grid_deg, 10.0);
  EXPECT_EQ(trainer.options().in_channels, 36);
  EXPECT_EQ(trainer.options().out_channels, 8);
  const DeepMindCheckpoint checkpoint = load_deepmind_checkpoint(kDir + "checkpoint.npz");
  const auto table = deepmind_parameter_table(2);
  const std::vector<Var> params = trainer.net().parameters();
  ASSERT_EQ(params.size(), table.size());
  for (size_t i = 0; i < params.size(); ++i) {
    const std::vector<double> expected = checkpoint.file.at(table[i].second).to_doubles();
    ASSERT_EQ(params[i].value().to_doubles(), expected) << table[i].first;
  }
  // --graphs: DeepMind's edges (gc's own mesh2grid differs at 43 tie nodes).
  EXPECT_EQ(trainer.geometry().m2g.num_edges(), 2052);
  EXPECT_EQ(trainer.geometry().g2m.num_edges(), 1236);
}

TEST(InitFrom, RefusalsNameTheProblem) {
  auto error = [](const std::vector<std::string>& args) {
    try {
      prepare_run(options_of(args));
    } catch (const UsageError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(error({"--preset", "graphcast-small", "--init-from", "tests/data/deepmind_like/tiny_compressed.npz"})
                .find("np.savez_compressed"),
            std::string::npos);
  EXPECT_NE(error({"--init-from", kDir + "checkpoint.npz", "--data-trajectories", "4", "--data-frames", "8",
                   "--data-cache", test::scratch_folder("init_from_cache")})
                .find("--init-from's checkpoint) cannot change that"),
            std::string::npos);
  EXPECT_NE(error({"--preset", "graphcast-small", "--grid", "30", "--mesh", "2", "--graphs", kDir + "graphs.npz"})
                .find("its grid is 19 x 36, the data's 7 x 12"),
            std::string::npos);
  TrainOptions o;
  std::string help;
  EXPECT_THROW(parse_train_options({"--init-from", "a.npz", "--resume", "b"}, &o, &help), UsageError);
}

}  // namespace
}  // namespace gc
