// test_time_cli.cpp: time as a user meets it: gc_train --profile prints the time
// table and writes the report's "time" section; a dry run with --card writes
// "traffic" with its roofline, and --tf32 lowers only the roofline of f32 GEMMs;
// ./gc_bench step prints both tables (--json one object) and refuses bad flags
// with exit 2; the report keys of DESIGN.md stay. Runs the built programs from the
// repository root on tiny configurations, each test in its own mkdtemp folder.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "tools/io/json.h"

using gc::json::Value;

namespace {

const std::string kTiny = "--preset graphcast-small --grid 30 --mesh 1 --latent 8 --layers 1 --no-eval --quiet";

struct RunResult {
  int exit_code = -1;
  std::string out, err;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

class TimeCli : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* program : {"./gc_train", "./gc_bench"})
      if (access(program, X_OK) != 0) GTEST_SKIP() << program << " is not built in the current directory";
    char pattern[] = "/tmp/gc_time_cli.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    std::error_code ignored;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ignored);
  }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }

  RunResult run(const std::string& program, const std::string& args) {
    const std::string out = path("stdout.txt"), err = path("stderr.txt");
    const int status = std::system(("exec " + program + " " + args + " >" + out + " 2>" + err).c_str());
    RunResult r;
    if (status != -1 && WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
    r.out = read_file(out);
    r.err = read_file(err);
    return r;
  }

  Value report(const std::string& args) {
    const RunResult r = run("./gc_train", args + " --overwrite --out " + path("run") + " --report " + path("r.json"));
    EXPECT_EQ(r.exit_code, 0) << args << "\n" << r.err;
    return Value::parse(read_file(path("r.json")));
  }

  std::string dir_;
};

TEST_F(TimeCli, ProfilePrintsTheTimeTableAndWritesTheTimeSection) {
  const RunResult r = run("./gc_train", kTiny + " --steps 2 --profile --overwrite --out " + path("run") + " --report " +
                                            path("r.json"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("time on cpu: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("op family"), std::string::npos);
  EXPECT_NE(r.err.find("outside ops"), std::string::npos);
  const Value rep = Value::parse(read_file(path("r.json")));
  const Value& time = rep.at("time");
  EXPECT_EQ(time.at("device").as_string(), "cpu");
  EXPECT_EQ(time.at("steps").as_int(), 2);
  EXPECT_GT(time.at("step_ms").as_double(), 0.0);
  EXPECT_GT(time.at("by_family").at("gemm").at("calls").as_double(), 0.0);
  EXPECT_GT(time.at("by_family").at("gather").at("ms").as_double(), 0.0);
  EXPECT_GT(time.at("by_module").at("backward").at("calls").as_double(), 0.0);
  EXPECT_LE(time.at("ops_ms").as_double(), time.at("step_ms").as_double());
  EXPECT_TRUE(rep.at("config").at("profile").as_bool());
  // The contract's keys are still there; without --profile there is no time section.
  EXPECT_TRUE(rep.at("timing").find("step_ms_median"));
  EXPECT_FALSE(report(kTiny + " --steps 1").find("time"));
}

TEST_F(TimeCli, DryRunModelsTheStepWithARooflineForTheCard) {
  const Value rep = report(kTiny + " --steps 1 --device meta --card H100-80GB");
  const Value& traffic = rep.at("traffic");
  EXPECT_GT(traffic.at("flops").as_double(), 0.0);
  EXPECT_GT(traffic.at("bytes").as_double(), 0.0);
  EXPECT_GT(traffic.at("launches").as_int(), 100);
  // The loss read and one read of every gradient's squared norm, a few in all: the graph
  // indices were checked when the graphs were uploaded, not in the step.
  EXPECT_GE(traffic.at("host_syncs").as_int(), 2);
  EXPECT_LE(traffic.at("host_syncs").as_int(), 4);
  EXPECT_EQ(traffic.at("by_family").at("index-check").at("host_syncs").as_int(), 0);
  EXPECT_GT(traffic.at("roofline_ms").as_double(), 0.0);
  EXPECT_EQ(traffic.at("card").as_string(), "H100-80GB");
  EXPECT_EQ(traffic.at("by_family").at("gemm").at("host_syncs").as_int(), 0);
  EXPECT_FALSE(rep.find("time"));
  // TF32 raises the f32 GEMMs' peak: the same bytes and launches, a lower roofline
  // (at a width where the f32 GEMMs are bound by compute, not by memory).
  const std::string wide = kTiny + " --latent 256 --steps 1 --device meta --card H100-80GB";
  const Value f32 = report(wide);
  const Value tf32 = report(wide + " --tf32");
  EXPECT_EQ(tf32.at("traffic").at("launches").as_int(), f32.at("traffic").at("launches").as_int());
  EXPECT_EQ(tf32.at("traffic").at("bytes").as_double(), f32.at("traffic").at("bytes").as_double());
  EXPECT_LT(tf32.at("traffic").at("by_family").at("gemm").at("roofline_ms").as_double(),
            f32.at("traffic").at("by_family").at("gemm").at("roofline_ms").as_double());
  EXPECT_EQ(tf32.at("memory").at("peak_reserved").as_int(), f32.at("memory").at("peak_reserved").as_int());
  // Without a card: the counts, no roofline. Memory is the same with or without any of it.
  const Value plain = report(kTiny + " --steps 1 --device meta");
  EXPECT_FALSE(plain.at("traffic").find("roofline_ms"));
  EXPECT_EQ(plain.at("memory").at("peak_allocated").as_int(), rep.at("memory").at("peak_allocated").as_int());
}

TEST_F(TimeCli, BadCardsAndFlagsAreUsageErrors) {
  RunResult r = run("./gc_train", kTiny + " --card B200");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--card"), std::string::npos);
  EXPECT_NE(r.err.find("H200-141GB"), std::string::npos) << "the message lists the known cards";
  r = run("./gc_bench", "step --repeat x");
  EXPECT_EQ(r.exit_code, 2);
  r = run("./gc_bench", "step --no-such-flag");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--no-such-flag"), std::string::npos);
  r = run("./gc_bench", "step --report " + path("r.json"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--json"), std::string::npos) << r.err;
  r = run("./gc_bench", "large --elements 1");
  EXPECT_EQ(r.exit_code, 2);
  for (const char* linear : {"64,7", "64,7,0", "64,7,5,1", "a,b,c"}) {
    r = run("./gc_bench", std::string("gemm --linear ") + linear);
    EXPECT_EQ(r.exit_code, 2) << linear;
    EXPECT_NE(r.err.find("--linear needs M,K,N"), std::string::npos) << r.err;
  }
  r = run("./gc_bench", "gemm --device meta");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("cpu or cuda"), std::string::npos) << r.err;
  for (const char* sub : {"gemm", "step", "device", "large"}) {
    r = run("./gc_bench", std::string(sub) + " --help");
    EXPECT_EQ(r.exit_code, 0) << sub;
    EXPECT_NE(r.out.find("usage: gc_bench"), std::string::npos) << sub;
  }
}

TEST_F(TimeCli, BenchStepPrintsBothTablesOrOneJsonObject) {
  RunResult r = run("./gc_bench", "step " + kTiny + " --warmup 1 --repeat 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("time on cpu: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("(mean of 2 steps)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("module"), std::string::npos);
  r = run("./gc_bench", "step " + kTiny + " --device meta --card L40S --warmup 0 --repeat 1 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Value v = Value::parse(r.out);
  EXPECT_FALSE(v.find("time"));  // a dry run takes no time worth measuring
  EXPECT_GT(v.at("traffic").at("roofline_ms").as_double(), 0.0);
  EXPECT_GT(v.at("memory").at("peak_allocated").as_int(), 0);
  // Op by op: the JSON's ops hold each op's modelled cost, and their GB add up to the step's.
  double ops_gb = 0;
  bool linear_forward = false;
  for (const Value& op : v.at("ops").as_array()) {
    ops_gb += op.at("gb").as_double();
    linear_forward = linear_forward || op.at("op").as_string() == "linear_forward";
  }
  EXPECT_TRUE(linear_forward);
  EXPECT_NEAR(ops_gb, v.at("traffic").at("bytes").as_double() * 1e-9, 1e-6 * ops_gb);
  r = run("./gc_bench", "step " + kTiny + " --warmup 0 --repeat 1 --ops");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("by op (per step; time measured on cpu)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("linear_backward_weight"), std::string::npos) << r.out;
  // A linear layer's three products, f32 and bf16, one JSON line each (the GPU check runs
  // GraphCast's widths, 477 against 480 inputs, on cuda).
  r = run("./gc_bench", "gemm --linear 96,7,5 --repeats 1 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> products;
  for (size_t begin = 0, end; begin < r.out.size(); begin = end + 1) {
    end = r.out.find('\n', begin);
    if (end == std::string::npos) end = r.out.size();
    if (end == begin) continue;
    const Value line = Value::parse(r.out.substr(begin, end - begin));
    products.push_back(line.at("op").as_string() + " " + line.at("dtype").as_string() + " " +
                       std::to_string(line.at("m").as_int()) + "x" + std::to_string(line.at("k").as_int()) + "x" +
                       std::to_string(line.at("n").as_int()) + " " + line.at("device").as_string());
    EXPECT_GT(line.at("gflops").as_double(), 0.0);
  }
  EXPECT_EQ(products, (std::vector<std::string>{"forward f32 96x7x5 cpu", "grad_x f32 96x5x7 cpu", "grad_W f32 7x96x5 cpu",
                                                "forward bf16 96x7x5 cpu", "grad_x bf16 96x5x7 cpu",
                                                "grad_W bf16 7x96x5 cpu"}));
  // The cpu's large-tensor check on a small count (the GPU check runs 2^31 + 1 on cuda).
  r = run("./gc_bench", "large --device cpu --elements 70001");
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("all equal"), std::string::npos) << r.out;
}

}  // namespace
