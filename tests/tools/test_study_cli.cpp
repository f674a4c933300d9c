// test_study_cli.cpp: ./gc_study scaling and ./gc_study cards as a user meets
// them: bad flags exit 2 with a message naming the flag, before any work; a
// small study prints its table, writes JSON and PNGs, and its figures equal
// gc_train --device meta's report for the same flags. Runs the built program
// from the repository root (where ./gc_tests runs); small grids only.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "tests/test_util.h"
#include "tools/io/json.h"

namespace {

using gc::json::Value;

struct Result {
  int exit_code = -1;
  std::string out, err;
};

class GcStudyCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access("./gc_study", X_OK) != 0 || access("./gc_train", X_OK) != 0)
      GTEST_SKIP() << "./gc_study and ./gc_train are not built in the current directory (make gc_study gc_train)";
    dir_ = gc::test::scratch_folder(::testing::UnitTest::GetInstance()->current_test_info()->name());
  }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  Result run(const std::string& program, const std::string& args) {
    const std::string command =
        "exec " + program + " " + args + " >" + path("out.txt") + " 2>" + path("err.txt");
    const int status = std::system(command.c_str());
    Result r;
    if (status != -1 && WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
    r.out = gc::test::read_file(path("out.txt"));
    r.err = gc::test::read_file(path("err.txt"));
    return r;
  }
  std::string dir_;
};

const std::string kTiny = "--preset graphcast-small --grid 30 --mesh 1";

TEST_F(GcStudyCli, BadFlagsExitTwoNamingTheFlag) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"scaling --latents 0", "--latents"},
      {"scaling --latents 32,,64", "--latents"},
      {"scaling --layers 4,4", "given twice"},
      {"scaling --layers x", "--layers"},
      {"scaling --card V100", "unknown card"},
      {"scaling --budget lots", "--budget"},
      {"scaling --budget 0", "--budget"},
      {"scaling --card H100-80GB --budget 24GB", "give one"},
      {"scaling --train-steps 0", "--train-steps"},
      {"scaling --json /nonexistent/folder/s.json", "--json"},
      {"scaling --png-prefix /nonexistent/folder/s", "--png-prefix"},
      {"scaling --preset nope --no-train", "unknown preset"},
      {"scaling --grid 7 --no-train", "--grid"},
      {"scaling --latents", "needs a value"},
      {"scaling --frobnicate", "unknown flag"},
      {"cards --presets nope", "unknown preset"},
      {"cards --cards V100", "unknown card"},
      {"cards --card-bytes 1GB", "margin"},
      {"cards --batch 0", "--batch"},
      {"cards --json /nonexistent/folder/c.json", "--json"},
      {"cards --frobnicate", "unknown flag"},
      {"no-such-study", "unknown command"},
      {"shards --shards 0", "--shards"},
      {"shards --grid 10 --mesh 2 --shards 20", "19 latitude rows"},
      {"shards --grid 7", "--grid"},
      {"shards --mesh 9", "--mesh"},
      {"shards --frobnicate", "unknown flag"},
  };
  for (const auto& [args, message] : cases) {
    const Result r = run("./gc_study", args);
    EXPECT_EQ(r.exit_code, 2) << "gc_study " << args << "\nstderr: " << r.err;
    EXPECT_NE(r.err.find(message), std::string::npos) << "gc_study " << args << "\nstderr: " << r.err;
    EXPECT_EQ(r.err.find("terminate"), std::string::npos) << r.err;
  }
  for (const char* help : {"--help", "scaling --help", "cards --help", "shards --help"}) {
    const Result r = run("./gc_study", help);
    EXPECT_EQ(r.exit_code, 0) << help;
    EXPECT_NE(r.out.find("usage"), std::string::npos) << r.out;
  }
}

// gc_study shards: every node and edge in exactly one shard, and the halos the
// table prints are the JSON's.
TEST_F(GcStudyCli, ShardsCutEveryNodeAndEdgeOnce) {
  const Result r = run("./gc_study", "shards --grid 10 --mesh 2 --shards 1,3 --layers 2 --json " + path("s.json"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("684 nodes"), std::string::npos) << r.out;  // 19 x 36
  const Value s = Value::parse(gc::test::read_file(path("s.json")));
  const std::vector<Value>& partitions = s.at("partitions").as_array();
  ASSERT_EQ(partitions.size(), 2u);
  int64_t one_g2m = 0, one_mesh = 0, one_m2g = 0;
  for (const Value& p : partitions) {
    const std::vector<Value>& ranks = p.at("ranks").as_array();
    ASSERT_EQ(static_cast<int64_t>(ranks.size()), p.at("shards").as_int());
    int64_t grid = 0, mesh = 0, g2m = 0, mesh_edges = 0, m2g = 0, halo = 0;
    for (const Value& rank : ranks) {
      grid += rank.at("grid_nodes").as_int();
      mesh += rank.at("mesh_nodes").as_int();
      g2m += rank.at("g2m_edges").as_int();
      mesh_edges += rank.at("mesh_edges").as_int();
      m2g += rank.at("m2g_edges").as_int();
      halo += rank.at("g2m_halo").as_int() + rank.at("mesh_halo").as_int() + rank.at("m2g_halo").as_int();
    }
    EXPECT_EQ(grid, 684);
    EXPECT_EQ(mesh, 162);
    if (p.at("shards").as_int() == 1) {
      one_g2m = g2m;
      one_mesh = mesh_edges;
      one_m2g = m2g;
      EXPECT_EQ(halo, 0);
    } else {
      EXPECT_EQ(g2m, one_g2m);
      EXPECT_EQ(mesh_edges, one_mesh);
      EXPECT_EQ(m2g, one_m2g);
      EXPECT_GT(halo, 0);
    }
  }
}

TEST_F(GcStudyCli, ScalingEqualsGcTrainDryRuns) {
  const Result r = run("./gc_study", "scaling " + kTiny + " --latents 16,24 --layers 1,3 --budget 40MB --no-train --json " +
                                         path("s.json") + " --png-prefix " + path("s"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("latent layers"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("[4/4]"), std::string::npos) << "progress on stderr: " << r.err;
  EXPECT_TRUE(gc::test::has_png_signature(path("s_memory.png")));
  EXPECT_TRUE(gc::test::has_png_signature(path("s_cost.png")));
  const Value study = Value::parse(gc::test::read_file(path("s.json")));
  const auto& cells = study.at("cells").as_array();
  ASSERT_EQ(cells.size(), 4u);
  const Value& cell = cells[3];  // latent 24, 3 layers
  EXPECT_EQ(cell.at("latent").as_int(), 24);
  EXPECT_EQ(cell.at("layers").as_int(), 3);
  EXPECT_EQ(cell.at("parameters").as_int(), cell.at("parameters_formula").as_int());
  for (const char* precision : {"fp32", "bf16"}) {
    for (const char* remat : {"none", "all"}) {
      const Result t = run("./gc_train", kTiny + " --latent 24 --layers 3 --device meta --quiet --precision " + precision +
                                             " --remat " + remat + " --report " + path("r.json"));
      ASSERT_EQ(t.exit_code, 0) << t.err;
      const Value report = Value::parse(gc::test::read_file(path("r.json")));
      EXPECT_EQ(report.at("params").at("total").as_int(), cell.at("parameters").as_int());
      const Value& m = cell.at("memory").at(precision).at(remat);
      EXPECT_EQ(m.at("peak_reserved").as_int(), report.at("memory").at("peak_reserved").as_int()) << precision << remat;
      EXPECT_EQ(m.at("peak_allocated").as_int(), report.at("memory").at("peak_allocated").as_int()) << precision << remat;
      EXPECT_EQ(m.at("fits").as_bool(), m.at("peak_reserved").as_int() <= 40000000);
    }
  }
}

TEST_F(GcStudyCli, CardsWritesTableJsonAndPicture) {
  const Result r = run("./gc_study", "cards --presets graphcast-small --grid 30 --mesh 1 --cards RTX4090 --card-bytes 2.2GB "
                                     "--max-latent 1024 --max-layers 32 --json " + path("c.json") + " --png " + path("c.png"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("CUDA context margin of 2000000000 B"), std::string::npos) << r.out;
  EXPECT_TRUE(gc::test::has_png_signature(path("c.png")));
  const Value study = Value::parse(gc::test::read_file(path("c.json")));
  const auto& cards = study.at("presets").as_array().at(0).at("cards").as_array();
  ASSERT_EQ(cards.size(), 2u);
  EXPECT_EQ(cards[0].at("card").as_string(), "RTX4090");
  EXPECT_TRUE(cards[0].at("plan").at("fits").as_bool());
  EXPECT_EQ(cards[0].at("plan").at("precision").as_string(), "fp32");  // 512 x 16 on 84 grid nodes fits any card
  EXPECT_EQ(cards[0].at("largest").at("latent_at_preset_layers").as_int(), 1024);
  EXPECT_TRUE(cards[0].at("largest").at("latent_capped").as_bool());
  EXPECT_EQ(cards[1].at("budget_bytes").as_int(), 200000000);
  for (const Value& c : cards) {
    if (c.at("plan").at("fits").as_bool()) {
      EXPECT_LE(c.at("plan").at("peak_reserved").as_int(), c.at("budget_bytes").as_int());
    }
  }
}

}  // namespace
