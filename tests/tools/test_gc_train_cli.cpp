// test_gc_train_cli.cpp: ./gc_train as a user meets it. Each test runs the built
// program from the repository root (where ./gc_tests runs) on a tiny
// configuration, with stdout, stderr and the exit status captured, and checks
// what DESIGN.md promises: usage errors exit 2 naming the flag, the --report
// keys, meta dry runs equal the cpu run to the byte, an out-of-memory run exits
// 3 with its explanation, traces, checkpoints and --resume, damaged checkpoints
// (flipped bits, a FIFO, edited metadata, an odd `latest`) exiting 1.
//
// Every test writes only under its own mkdtemp folder in /tmp, removed at the
// end, so the tests can run concurrently with anything else on the machine.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "runtime/allocator.h"
#include "runtime/device.h"
#include "tools/io/json.h"
#include "tools/io/safetensors.h"

using gc::json::Value;

namespace {

const char* const kProgram = "./gc_train";
// The random-input preset shrunk to 84 grid nodes and 42 mesh nodes: a run takes well under a second.
const std::string kTiny = "--preset graphcast-small --grid 30 --mesh 1 --latent 8 --layers 1 --no-eval --quiet";

struct RunResult {
  int exit_code = -1;  // -1 when the program was killed by a signal
  int signal = 0;
  std::string out, err;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

bool exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

class GcTrainCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access(kProgram, X_OK) != 0)
      GTEST_SKIP() << kProgram << " is not built in the current directory (build it with `make gc_train`; "
                   << "`make test` does, and runs the tests from the repository root)";
    char pattern[] = "/tmp/gc_train_cli.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr) << "mkdtemp failed";
    dir_ = pattern;
  }
  void TearDown() override {
    if (dir_.empty()) return;
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  std::string path(const std::string& name) const { return dir_ + "/" + name; }

  // Runs ./gc_train with `args` (shell words; the paths used here have no spaces).
  RunResult run(const std::string& args) {
    const std::string out_path = path("stdout.txt"), err_path = path("stderr.txt");
    // exec: the shell becomes the program, so a signal that kills it is seen as one
    // and an exit status above 128 (130: interrupted) is the program's own.
    const std::string command = "exec " + std::string(kProgram) + " " + args + " >" + out_path + " 2>" + err_path;
    return finish(std::system(command.c_str()), out_path, err_path);
  }

  // Runs ./gc_train and sends it SIGINT (or `signal`) after `seconds`.
  RunResult run_interrupted(const std::string& args, double seconds, const char* signal = "INT") {
    const std::string out_path = path("stdout.txt"), err_path = path("stderr.txt");
    const std::string command = "exec timeout --foreground --preserve-status -s " + std::string(signal) + " " +
                                std::to_string(seconds) + " " + kProgram + " " + args + " >" + out_path + " 2>" +
                                err_path;
    return finish(std::system(command.c_str()), out_path, err_path);
  }

  RunResult finish(int status, const std::string& out_path, const std::string& err_path) {
    RunResult r;
    if (status != -1 && WIFEXITED(status)) {
      r.exit_code = WEXITSTATUS(status);
    } else if (status != -1 && WIFSIGNALED(status)) {
      r.signal = WTERMSIG(status);
    }
    r.out = read_file(out_path);
    r.err = read_file(err_path);
    return r;
  }

  Value run_report(const std::string& args, const std::string& report_name) {
    const RunResult r = run(args + " --report " + path(report_name));
    EXPECT_EQ(r.exit_code, 0) << "gc_train " << args << "\nstderr:\n" << r.err;
    return Value::parse(read_file(path(report_name)));
  }

  // The demo preset on a 4-trajectory, 8-frame data set cached in this test's folder.
  std::string demo(const std::string& extra) const {
    return "--mesh 1 --latent 8 --layers 1 --steps 3 --data-trajectories 4 --data-frames 8 --quiet --data-cache " +
           path("cache") + " " + extra;
  }

  std::string dir_;
};

// metrics.jsonl record of a 1-based step (null when absent).
Value metrics_record(const std::string& metrics_text, int64_t step) {
  for (const std::string& line : lines_of(metrics_text)) {
    const Value record = Value::parse(line);
    if (record.at("step").as_int() == step) return record;
  }
  return Value();
}

void expect_integer_bytes(const Value& v, const std::string& what) {
  ASSERT_TRUE(v.is_int()) << what << " is not an integer: " << v.dump();
  EXPECT_GE(v.as_int(), 0) << what;
}

const char* const kCategories[] = {"parameter", "gradient", "optimizer_state", "input",
                                   "activation", "temporary", "workspace"};

TEST_F(GcTrainCli, HelpListsEveryFlagOfTheDesignTable) {
  for (const char* asked : {"--help", "-h"}) {
    SCOPED_TRACE(asked);
    const RunResult r = run(asked);
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_EQ(r.err, "");
    for (const char* flag : {"--preset", "--grid", "--mesh", "--latent", "--layers", "--in-channels", "--out-channels",
                             "--steps", "--batch", "--lr", "--rollout", "--seed", "--precision", "--remat",
                             "--mem-budget", "--mem-limit", "--edge-chunks", "--device", "--out", "--trace",
                             "--trace-png", "--report", "--resume"}) {
      // Followed by a space: "--trace" must not be found only inside "--trace-png".
      EXPECT_NE(r.out.find(std::string("  ") + flag + " "), std::string::npos) << flag << " missing from --help";
    }
  }
}

TEST_F(GcTrainCli, BadFlagsAndValuesExit2NamingTheFlag) {
  struct Case {
    std::string args, named;
  };
  const std::vector<Case> cases = {
      {"--bogus", "--bogus"},
      {"--steps abc", "--steps"},
      {"--steps=abc", "--steps"},
      {"--steps", "--steps"},  // no value
      {"--precision fp8", "--precision"},
      {"--remat auto", "--mem-budget"},
      {"--remat every:0", "--remat"},
      {"--device tpu", "--device"},
      {"--meta-target tpu", "--meta-target"},
      {"--grid 0.7", "--grid"},
      {"--mem-limit lots", "--mem-limit"},
      {"--mem-budget 12XB --remat auto", "--mem-budget"},
      {"--edge-chunks 0", "--edge-chunks"},
      {"--mesh 8", "--mesh"},
      {"--lr nan", "--lr"},
      {"--rollout 2", "--rollout"},  // random inputs cannot be fed back
      {"--preset nope", "preset"},
      {"--ranks 2", "--ranks"},                              // a dry run's flag
      {"--ranks 3 --batch 2 --device meta", "--batch"},      // a rank without a sample
      {"--bucket-mb 0", "--bucket-mb"},
      {"--model-parallel 0", "--model-parallel"},
      {"--model-parallel 2", "mpirun -np 2"},                           // a real run needs the ranks
      {"--model-parallel 2 --ranks 3 --device meta", "--model-parallel"},  // 3 ranks are no replicas of 2
      {"--model-parallel 8 --device meta", "7 latitude rows"},          // more shards than rows
  };
  for (const Case& c : cases) {
    SCOPED_TRACE("gc_train ... " + c.args);
    const RunResult r = run(kTiny + " --steps 1 --out " + path("out") + " " + c.args);
    EXPECT_EQ(r.signal, 0);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_EQ(r.err.rfind("gc_train: ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find(c.named), std::string::npos) << "the message does not name " << c.named << ": " << r.err;
    EXPECT_EQ(lines_of(r.err).size(), 1u) << r.err;
    EXPECT_EQ(r.out, "");
    EXPECT_FALSE(exists(path("out"))) << "a usage error must not start the run";
  }
}

// --device meta --ranks P: every data-parallel rank's dry run in one process;
// the uneven shares of --batch 3 over 2 ranks give rank 0 the larger peak, and
// rank 0's dry run equals the one-process dry run of its share.
TEST_F(GcTrainCli, RanksDryRunPredictsEveryRank) {
  const Value report = run_report(kTiny + " --steps 2 --device meta --ranks 2 --batch 3", "ranks.json");
  const std::vector<Value>& ranks = report.at("memory").at("ranks").as_array();
  ASSERT_EQ(ranks.size(), 2u);
  EXPECT_EQ(ranks[0].at("batch").as_int(), 2);
  EXPECT_EQ(ranks[1].at("batch").as_int(), 1);
  EXPECT_GT(ranks[0].at("peak_allocated").as_int(), ranks[1].at("peak_allocated").as_int());
  EXPECT_GT(ranks[1].at("bytes_sent").as_int(), 0);
  EXPECT_EQ(report.at("config").at("batch").as_int(), 3);
  EXPECT_EQ(report.at("config").at("ranks").as_int(), 2);
  const Value alone = run_report(kTiny + " --steps 2 --device meta --batch 2", "alone.json");
  // The share alone has no gradient buckets: rank 0's peak is the same or more.
  EXPECT_GE(ranks[0].at("peak_allocated").as_int(), alone.at("memory").at("peak_allocated").as_int());
}

// --device meta --model-parallel Q: every shard's dry run; the shards split the
// one-process step's activations, so each peaks below it, and each reports its
// replica and shard.
TEST_F(GcTrainCli, ModelParallelDryRunPredictsEveryShard) {
  const Value report = run_report(kTiny + " --steps 2 --device meta --model-parallel 2 --ranks 4 --batch 2", "mp.json");
  const std::vector<Value>& ranks = report.at("memory").at("ranks").as_array();
  ASSERT_EQ(ranks.size(), 4u);
  for (int r = 0; r < 4; ++r) {
    EXPECT_EQ(ranks[static_cast<size_t>(r)].at("replica").as_int(), r / 2);
    EXPECT_EQ(ranks[static_cast<size_t>(r)].at("shard").as_int(), r % 2);
    EXPECT_EQ(ranks[static_cast<size_t>(r)].at("batch").as_int(), 1);
    EXPECT_GT(ranks[static_cast<size_t>(r)].at("bytes_sent").as_int(), 0);
  }
  EXPECT_EQ(report.at("config").at("model_parallel").as_int(), 2);
  EXPECT_EQ(report.at("config").at("ranks").as_int(), 4);
  const Value alone = run_report(kTiny + " --steps 2 --device meta --batch 1", "alone.json");
  for (const Value& r : ranks)
    EXPECT_LT(r.at("peak_allocated").as_int(), alone.at("memory").at("peak_allocated").as_int());
}

TEST_F(GcTrainCli, IntegerFlagsBeyondIntRangeAreUsageErrors) {
  for (const std::string& args : {std::string("--steps 4294967299"), std::string("--mesh 4294967297 --steps 1")}) {
    SCOPED_TRACE(args);
    const RunResult r = run(kTiny + " --out " + path("out") + " " + args);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find(args.substr(0, args.find(' '))), std::string::npos) << r.err;
  }
}

TEST_F(GcTrainCli, ReportHasTheContractKeysWithIntegerBytes) {
  const int steps = 3;
  const int mesh_level = 1;
  const double grid_deg = 30;
  const RunResult plain = run(kTiny + " --steps 3 --out " + path("out") + " --report " + path("report.json"));
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_EQ(plain.err.find("step 1/"), std::string::npos) << "--quiet prints no progress line";
  const Value report = Value::parse(read_file(path("report.json")));

  const Value& config = report.at("config");
  EXPECT_EQ(config.at("preset").as_string(), "graphcast-small");
  EXPECT_EQ(config.at("steps").as_int(), steps);
  EXPECT_EQ(config.at("latent").as_int(), 8);
  EXPECT_EQ(config.at("mesh_level").as_int(), mesh_level);

  // Counts that follow from the grid and mesh definitions: an equiangular grid with both
  // poles, an icosahedron refined R times (10 * 4^R + 2 nodes), the multi-mesh holding the
  // directed edges of every level (2 * 30 * 4^r at level r).
  const Value& graph = report.at("graph");
  for (const char* key : {"grid_nodes", "mesh_nodes", "mesh_edges", "g2m_edges", "m2g_edges"}) {
    ASSERT_TRUE(graph.at(key).is_int()) << key;
    EXPECT_GT(graph.at(key).as_int(), 0) << key;
  }
  const int64_t lat = static_cast<int64_t>(std::lround(180 / grid_deg)) + 1;
  const int64_t lon = static_cast<int64_t>(std::lround(360 / grid_deg));
  EXPECT_EQ(graph.at("grid_nodes").as_int(), lat * lon);
  EXPECT_EQ(graph.at("mesh_nodes").as_int(), 10 * (int64_t(1) << (2 * mesh_level)) + 2);
  int64_t mesh_edges = 0;
  for (int r = 0; r <= mesh_level; ++r) mesh_edges += 2 * 30 * (int64_t(1) << (2 * r));
  EXPECT_EQ(graph.at("mesh_edges").as_int(), mesh_edges);
  // Every grid node receives from the mesh.
  EXPECT_GE(graph.at("m2g_edges").as_int(), graph.at("grid_nodes").as_int());

  const Value& params = report.at("params");
  EXPECT_EQ(params.at("total").as_int(),
            params.at("encoder").as_int() + params.at("processor").as_int() + params.at("decoder").as_int());
  EXPECT_GT(params.at("processor").as_int(), 0);

  const Value& memory = report.at("memory");
  EXPECT_EQ(memory.at("device").as_string(), "cpu");
  expect_integer_bytes(memory.at("peak_allocated"), "peak_allocated");
  expect_integer_bytes(memory.at("peak_reserved"), "peak_reserved");
  EXPECT_LE(memory.at("peak_allocated").as_int(), memory.at("peak_reserved").as_int());
  int64_t at_peak_sum = 0;
  for (const char* category : kCategories) {
    expect_integer_bytes(memory.at("at_peak").at(category), std::string("at_peak.") + category);
    at_peak_sum += memory.at("at_peak").at(category).as_int();
  }
  // The categories split the peak exactly: every byte has one category.
  EXPECT_EQ(at_peak_sum, memory.at("peak_allocated").as_int());
  EXPECT_GT(memory.at("at_peak").at("parameter").as_int(), 0);
  EXPECT_GT(memory.at("at_peak").at("activation").as_int(), 0);
  ASSERT_TRUE(memory.at("peak_label").is_string());
  EXPECT_NE(memory.at("peak_label").as_string(), "");
  EXPECT_TRUE(memory.at("plan").is_object());

  const Value& timing = report.at("timing");
  EXPECT_EQ(timing.at("steps").as_int(), steps);
  EXPECT_GT(timing.at("step_ms_median").as_double(), 0.0);
  const Value& train = report.at("train");
  EXPECT_TRUE(std::isfinite(train.at("loss_first").as_double()));
  EXPECT_TRUE(std::isfinite(train.at("loss_last").as_double()));
  EXPECT_EQ(report.find("eval"), nullptr) << "--no-eval writes no evaluation";
}

TEST_F(GcTrainCli, DemoReportHasTheEvaluation) {
  const RunResult r = run(demo("--out " + path("out") + " --report " + path("report.json")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("evaluation on"), std::string::npos) << "the evaluation table goes to stdout:\n" << r.out;
  const Value report = Value::parse(read_file(path("report.json")));
  EXPECT_EQ(report.at("config").at("preset").as_string(), "demo");
  const Value& eval = report.at("eval");
  const std::vector<Value>& leads = eval.at("lead_hours").as_array();
  ASSERT_GE(leads.size(), 1u);
  for (size_t k = 0; k < leads.size(); ++k) {
    ASSERT_TRUE(leads[k].is_int());
    EXPECT_EQ(leads[k].as_int(), 6 * static_cast<int64_t>(k + 1)) << "6-hourly leads";
  }
  // [variable][lead] each
  auto expect_matrix = [&](const Value& m, const std::string& what, double lo, double hi) {
    ASSERT_TRUE(m.is_array()) << what;
    ASSERT_GE(m.size(), 1u) << what;
    for (const Value& row : m.as_array()) {
      ASSERT_EQ(row.size(), leads.size()) << what;
      for (const Value& v : row.as_array()) {
        ASSERT_TRUE(v.is_number()) << what << ": " << v.dump();
        EXPECT_TRUE(v.as_double() >= lo && v.as_double() <= hi) << what << " = " << v.as_double();
      }
    }
  };
  for (const char* baseline : {"model", "persistence", "climatology"})
    expect_matrix(eval.at("rmse").at(baseline), std::string("rmse.") + baseline, 1e-12, 1e12);
  expect_matrix(eval.at("acc").at("model"), "acc.model", -1.0, 1.0);
  EXPECT_EQ(eval.at("rmse").at("model").size(), eval.at("acc").at("model").size());
}

// ---- meta dry runs equal the cpu run --------------------------------------------------

struct MetaCase {
  const char* name;
  const char* options;
  bool demo_data;
};

class GcTrainCliMeta : public GcTrainCli, public ::testing::WithParamInterface<MetaCase> {};

TEST_P(GcTrainCliMeta, PeaksEqualTheCpuRunToTheByte) {
  const MetaCase& c = GetParam();
  const std::string base = c.demo_data ? demo(std::string("--no-eval ") + c.options)
                                       : kTiny + " --steps 3 " + c.options;
  const Value cpu = run_report(base + " --out " + path("cpu"), "cpu.json");
  const Value meta = run_report(base + " --device meta --meta-target cpu --out " + path("meta"), "meta.json");
  EXPECT_FALSE(exists(path("meta"))) << "a dry run writes no checkpoint folder";
  const Value& cm = cpu.at("memory");
  const Value& mm = meta.at("memory");
  EXPECT_EQ(cm.at("device").as_string(), "cpu");
  EXPECT_EQ(mm.at("device").as_string(), "meta");
  for (const char* key : {"peak_allocated", "peak_reserved"}) {
    expect_integer_bytes(mm.at(key), key);
    EXPECT_EQ(mm.at(key).as_int(), cm.at(key).as_int()) << key;
  }
  for (const char* category : kCategories)
    EXPECT_EQ(mm.at("at_peak").at(category).as_int(), cm.at("at_peak").at(category).as_int()) << category;
  EXPECT_EQ(mm.at("peak_label").as_string(), cm.at("peak_label").as_string());
}

INSTANTIATE_TEST_SUITE_P(GcTrainCli, GcTrainCliMeta,
                         ::testing::Values(MetaCase{"fp32", "", false},
                                           MetaCase{"bf16_remat_all", "--precision bf16 --remat all", false},
                                           MetaCase{"chunks2_every1", "--edge-chunks 2 --remat every:1", false},
                                           MetaCase{"demo_rollout2", "", true},
                                           MetaCase{"gated_fp32", "--processor gated", false},
                                           MetaCase{"gated_bf16_remat_all", "--processor gated --precision bf16 --remat all", false},
                                           MetaCase{"attention_bf16", "--processor attention --precision bf16", false},
                                           MetaCase{"attention_chunks2_every1", "--processor attention --edge-chunks 2 --remat every:1", false}),
                         [](const ::testing::TestParamInfo<MetaCase>& info) { return std::string(info.param.name); });

// ---- out of memory --------------------------------------------------------------------

// A configuration that needs several allocator segments, so that a limit can fall inside the step.
const std::string kSegments =
    "--preset graphcast-small --grid 10 --mesh 2 --latent 16 --layers 1 --steps 3 --no-eval --quiet";

int64_t smallest_limit_in(const std::string& message) {
  const std::string key = "smallest --mem-limit";
  const size_t line_start = message.find(key);
  if (line_start == std::string::npos) return -1;
  const size_t line_end = message.find('\n', line_start);
  const std::string line = message.substr(line_start, line_end - line_start);
  const size_t open = line.rfind('(');
  if (open == std::string::npos || line.size() < 3 || line.compare(line.size() - 3, 3, " B)") != 0) return -1;
  return std::stoll(line.substr(open + 1));
}

TEST_F(GcTrainCli, MemLimitTooSmallExits3WithTheExplanation) {
  const Value dry = run_report(kSegments + " --device meta --meta-target cpu", "dry.json");
  const int64_t peak_reserved = dry.at("memory").at("peak_reserved").as_int();
  const int64_t peak_allocated = dry.at("memory").at("peak_allocated").as_int();
  const int64_t mib = int64_t(1) << 20;
  // Half the peak: past the parameters and the batch, inside the forward pass.
  const int64_t limit = std::max(mib, peak_reserved / 2 / mib * mib);
  ASSERT_LT(limit, peak_allocated);

  const RunResult r = run(kSegments + " --mem-limit " + std::to_string(limit) + " --out " + path("out"));
  ASSERT_EQ(r.signal, 0) << r.err;
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("out of memory on cpu"), std::string::npos) << r.err;
  const size_t allocating = r.err.find("while allocating ");
  ASSERT_NE(allocating, std::string::npos) << r.err;
  const size_t label_open = r.err.find(" for '", allocating);
  ASSERT_NE(label_open, std::string::npos) << r.err;
  EXPECT_NE(r.err[label_open + 6], '\'') << "the label of what was being allocated is empty: " << r.err;
  EXPECT_NE(r.err.find("limit " + gc::format_bytes(limit)), std::string::npos) << r.err;

  const size_t live = r.err.find("live bytes by category:");
  ASSERT_NE(live, std::string::npos) << r.err;
  int live_categories = 0;
  for (const std::string& line : lines_of(r.err.substr(live))) {
    for (const char* category : kCategories)
      if (line.rfind(std::string("    ") + category + " ", 0) == 0) ++live_categories;
  }
  EXPECT_GE(live_categories, 2) << "parameters and inputs at least are live in the step: " << r.err;
  EXPECT_NE(r.err.find("    parameter "), std::string::npos) << r.err;

  const int64_t smallest = smallest_limit_in(r.err);
  ASSERT_GT(smallest, 0) << "no smallest passing limit in: " << r.err;
  EXPECT_GE(smallest, peak_allocated);
  EXPECT_LE(smallest, peak_reserved);
  EXPECT_FALSE(exists(path("out") + "/latest")) << "an out-of-memory run writes no checkpoint";
  EXPECT_FALSE(exists(path("out") + "/checkpoint-3"));

  // The limit it names does pass.
  const RunResult passing = run(kSegments + " --mem-limit " + std::to_string(smallest) + " --out " + path("out2"));
  EXPECT_EQ(passing.exit_code, 0) << passing.err;
}

TEST_F(GcTrainCli, MemLimitJustBelowTheSmallestExits3) {
  const RunResult first = run(kSegments + " --mem-limit 1MiB --out " + path("out"));
  const int64_t smallest = smallest_limit_in(first.err);
  ASSERT_GT(smallest, int64_t(1) << 20) << first.err;
  const RunResult r = run(kSegments + " --mem-limit " + std::to_string(smallest - (int64_t(1) << 20)) + " --out " +
                          path("out"));
  EXPECT_EQ(r.signal, 0);
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_EQ(smallest_limit_in(r.err), smallest) << r.err;
}

// A dry run that runs out of memory names a limit that is exact for the dry run
// itself: the failed run's own bytes are gone before the search for it starts.
TEST_F(GcTrainCli, MemLimitOnMetaNamesTheSmallestDryRunLimitExactly) {
  const std::string dry = kSegments + " --device meta --meta-target cpu";
  const RunResult first = run(dry + " --mem-limit 1MiB");
  EXPECT_EQ(first.exit_code, 3) << first.err;
  const int64_t smallest = smallest_limit_in(first.err);
  ASSERT_GT(smallest, int64_t(1) << 20) << first.err;
  EXPECT_EQ(run(dry + " --mem-limit " + std::to_string(smallest)).exit_code, 0);
  // Just below it the run fails late, holding most of its bytes; the limit named is the same.
  const RunResult below = run(dry + " --mem-limit " + std::to_string(smallest - (int64_t(1) << 20)));
  EXPECT_EQ(below.exit_code, 3) << below.err;
  EXPECT_EQ(smallest_limit_in(below.err), smallest) << below.err;
}

// ---- trace, outputs, checkpoints ---------------------------------------------------------

TEST_F(GcTrainCli, TraceIsChromeJsonAndTracePngIsAPng) {
  const RunResult r = run(kTiny + " --steps 2 --out " + path("out") + " --trace " + path("trace.json") +
                          " --trace-png " + path("timeline.png"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Value trace = Value::parse(read_file(path("trace.json")));
  const std::vector<Value>& events = trace.at("traceEvents").as_array();
  ASSERT_FALSE(events.empty());
  bool slices = false, counters = false;
  for (const Value& e : events) {
    slices = slices || e.at("ph").as_string() == "X";
    counters = counters || e.at("ph").as_string() == "C";
  }
  EXPECT_TRUE(slices) << "no X slices";
  EXPECT_TRUE(counters) << "no C counters";
  const std::string png_signature("\x89PNG\r\n\x1a\n", 8);
  EXPECT_EQ(read_file(path("timeline.png")).substr(0, 8), png_signature);

  const RunResult png_only = run(kTiny + " --steps 1 --out " + path("out2") + " --trace-png " + path("only.png"));
  ASSERT_EQ(png_only.exit_code, 0) << png_only.err;
  EXPECT_EQ(read_file(path("only.png")).substr(0, 8), png_signature);
}

TEST_F(GcTrainCli, OutHoldsMetricsLatestAndTheCheckpoint) {
  const RunResult r = run(kTiny + " --steps 3 --out " + path("out"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<std::string> lines = lines_of(read_file(path("out/metrics.jsonl")));
  ASSERT_EQ(lines.size(), 3u) << "one line per step";
  for (size_t i = 0; i < lines.size(); ++i) {
    const Value record = Value::parse(lines[i]);
    ASSERT_TRUE(record.is_object());
    EXPECT_EQ(record.at("step").as_int(), static_cast<int64_t>(i + 1));
    EXPECT_TRUE(std::isfinite(record.at("loss").as_double()));
    EXPECT_TRUE(std::isfinite(record.at("grad_norm").as_double()));
  }
  std::string latest = read_file(path("out/latest"));
  while (!latest.empty() && latest.back() == '\n') latest.pop_back();
  EXPECT_EQ(latest, "checkpoint-3");
  for (const char* file : {"weights.safetensors", "train_state.safetensors"}) {
    const gc::SafetensorsFile loaded = gc::load_safetensors(path("out/checkpoint-3/") + file);
    EXPECT_FALSE(loaded.tensors.empty()) << file;
  }
}

TEST_F(GcTrainCli, ResumeContinuesBitForBit) {
  // A warm-up longer than the run makes the learning rate of step s (s + 1) / warmup * lr
  // whatever --steps is, so a 2-step run resumed to 4 steps follows the 4-step run exactly.
  const std::string base = kTiny + " --warmup 10";
  ASSERT_EQ(run(base + " --steps 4 --out " + path("straight")).exit_code, 0);
  ASSERT_EQ(run(base + " --steps 2 --out " + path("split")).exit_code, 0);
  const RunResult resumed = run(base + " --steps 4 --out " + path("split") + " --resume " + path("split"));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;

  const std::string straight_metrics = read_file(path("straight/metrics.jsonl"));
  const std::string split_metrics = read_file(path("split/metrics.jsonl"));
  for (int64_t step : {3, 4}) {
    const Value a = metrics_record(straight_metrics, step), b = metrics_record(split_metrics, step);
    ASSERT_FALSE(b.is_null()) << "step " << step << " missing after --resume:\n" << split_metrics;
    EXPECT_EQ(a.at("loss").as_double(), b.at("loss").as_double()) << "step " << step;
    EXPECT_EQ(a.at("lr").as_double(), b.at("lr").as_double()) << "step " << step;
    EXPECT_EQ(a.at("grad_norm").as_double(), b.at("grad_norm").as_double()) << "step " << step;
  }
  for (const char* file : {"weights.safetensors", "train_state.safetensors"}) {
    const std::string a = read_file(path("straight/checkpoint-4/") + file);
    ASSERT_FALSE(a.empty()) << file;
    EXPECT_TRUE(a == read_file(path("split/checkpoint-4/") + file)) << file << " differs from the uninterrupted run";
  }
}

TEST_F(GcTrainCli, ResumeOfACompletedRunWithMoreSteps) {
  ASSERT_EQ(run(kTiny + " --steps 2 --out " + path("first")).exit_code, 0);
  // Both the output folder (through `latest`) and a checkpoint folder are accepted.
  for (const std::string& from : {path("first"), path("first/checkpoint-2")}) {
    SCOPED_TRACE(from);
    std::error_code ignored;
    std::filesystem::remove_all(path("more"), ignored);
    const RunResult r = run(kTiny + " --steps 4 --out " + path("more") + " --resume " + from);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    // The whole history, once: the resumed run's records of steps 1-2 as they were, then its own.
    const std::string metrics = read_file(path("more/metrics.jsonl"));
    const std::vector<std::string> first_lines = lines_of(read_file(path("first/metrics.jsonl")));
    const std::vector<std::string> lines = lines_of(metrics);
    ASSERT_EQ(lines.size(), 4u) << metrics;
    EXPECT_EQ(lines[0], first_lines.at(0));
    EXPECT_EQ(lines[1], first_lines.at(1));
    for (int64_t step = 1; step <= 4; ++step) EXPECT_EQ(Value::parse(lines[static_cast<size_t>(step - 1)]).at("step").as_int(), step);
    for (int64_t step : {3, 4}) {
      const Value record = metrics_record(metrics, step);
      ASSERT_FALSE(record.is_null()) << "step " << step << ":\n" << metrics;
      EXPECT_TRUE(std::isfinite(record.at("loss").as_double()));
    }
    EXPECT_TRUE(exists(path("more/checkpoint-4/weights.safetensors")));
    // The learning-rate schedule now spans 4 steps, not the checkpoint's 2: said, even with --quiet.
    EXPECT_NE(r.err.find("scheduled as --steps 2"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("this run is --steps 4"), std::string::npos) << r.err;
  }
  const RunResult same = run(kTiny + " --steps 2 --out " + path("first") + " --resume " + path("first/checkpoint-2"));
  EXPECT_EQ(same.err.find("scheduled as"), std::string::npos) << "no note when the schedule is the same: " << same.err;
  const RunResult nothing_left = run(kTiny + " --steps 2 --out " + path("again") + " --resume " + path("first"));
  EXPECT_EQ(nothing_left.exit_code, 1) << nothing_left.err;
  EXPECT_NE(nothing_left.err.find("--resume"), std::string::npos) << nothing_left.err;
}

TEST_F(GcTrainCli, ResumeRefusesAnotherConfigurationOrAMissingFolder) {
  ASSERT_EQ(run(kTiny + " --steps 2 --out " + path("first")).exit_code, 0);
  const RunResult wider = run(kTiny + " --steps 4 --latent 16 --out " + path("wider") + " --resume " + path("first"));
  EXPECT_EQ(wider.signal, 0);
  EXPECT_EQ(wider.exit_code, 1) << wider.err;
  EXPECT_NE(wider.err.find("latent=8"), std::string::npos) << wider.err;
  EXPECT_NE(wider.err.find("latent=16"), std::string::npos) << wider.err;
  EXPECT_FALSE(exists(path("wider")));

  const RunResult missing = run(kTiny + " --steps 4 --out " + path("m") + " --resume " + path("no-such-folder"));
  EXPECT_EQ(missing.signal, 0);
  EXPECT_EQ(missing.exit_code, 1) << missing.err;
  EXPECT_NE(missing.err.find(path("no-such-folder")), std::string::npos) << missing.err;
}

TEST_F(GcTrainCli, CorruptedCheckpointExits1NamingTheFile) {
  ASSERT_EQ(run(kTiny + " --steps 2 --out " + path("good")).exit_code, 0);
  struct Cut {
    std::string file;
    double fraction;  // of the file's size kept
  };
  const std::vector<Cut> cuts = {{"weights.safetensors", 0.0},     {"weights.safetensors", 0.0005},
                                 {"weights.safetensors", 0.01},    {"weights.safetensors", 0.5},
                                 {"weights.safetensors", 0.9999},  {"train_state.safetensors", 0.5}};
  for (const Cut& cut : cuts) {
    SCOPED_TRACE(cut.file + " cut to " + std::to_string(cut.fraction));
    std::error_code ignored;
    std::filesystem::remove_all(path("bad"), ignored);
    std::filesystem::copy(path("good"), path("bad"), std::filesystem::copy_options::recursive);
    const std::string damaged = path("bad/checkpoint-2/") + cut.file;
    const auto size = std::filesystem::file_size(damaged);
    std::filesystem::resize_file(damaged, static_cast<uintmax_t>(static_cast<double>(size) * cut.fraction));
    const RunResult r = run(kTiny + " --steps 4 --out " + path("resumed") + " --resume " + path("bad"));
    EXPECT_EQ(r.signal, 0) << r.err;
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_NE(r.err.find(damaged), std::string::npos) << "the message does not name the file: " << r.err;
    EXPECT_FALSE(exists(path("resumed")));
  }
}

// Damaged checkpoints that resume runs meet: each exits 1 with a message that
// names the file (and the tensor or key), never a crash or a hang.
class GcTrainCliResume : public GcTrainCli {
 protected:
  // Like run(), under `timeout`: a resume that blocks is killed (signal 9)
  // instead of hanging the tests.
  RunResult run_within(int seconds, const std::string& args) {
    const std::string command = "timeout -s KILL " + std::to_string(seconds) + " " + kProgram + " " + args + " >" +
                                path("stdout.txt") + " 2>" + path("stderr.txt");
    const int status = std::system(command.c_str());
    RunResult r;
    if (status != -1 && WIFEXITED(status)) {
      r.exit_code = WEXITSTATUS(status);
      if (r.exit_code > 128) {  // timeout exits 128 + 9 when it had to kill the program
        r.signal = r.exit_code - 128;
        r.exit_code = -1;
      }
    }
    r.out = read_file(path("stdout.txt"));
    r.err = read_file(path("stderr.txt"));
    return r;
  }

  // A 2-step run's output folder copied to `name`, for damaging.
  std::string checkpoint_copy(const std::string& name) {
    if (!exists(path("good"))) {
      EXPECT_EQ(run(kTiny + " --steps 2 --out " + path("good")).exit_code, 0);
    }
    std::error_code ignored;
    std::filesystem::remove_all(path(name), ignored);
    std::filesystem::copy(path("good"), path(name), std::filesystem::copy_options::recursive);
    return path(name);
  }

  // gc_train --resume `from` exits 1, writes no output folder, and says `phrase`.
  void expect_refused(const std::string& from, const std::string& phrase) {
    std::error_code ignored;
    std::filesystem::remove_all(path("resumed"), ignored);
    const RunResult r = run_within(60, kTiny + " --steps 4 --out " + path("resumed") + " --resume " + from);
    EXPECT_EQ(r.signal, 0) << r.err;
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_NE(r.err.find(phrase), std::string::npos) << "expected \"" << phrase << "\" in: " << r.err;
    EXPECT_FALSE(exists(path("resumed")));
  }
};

TEST_F(GcTrainCliResume, FlippedDataBitNamesTheFileAndTheTensor) {
  const std::string out = checkpoint_copy("flipped");
  const std::string weights = out + "/checkpoint-2/weights.safetensors";
  std::string bytes = read_file(weights);
  bytes[bytes.size() - 3] ^= 0x10;  // in the data of the last tensor
  std::ofstream(weights, std::ios::binary | std::ios::trunc) << bytes;
  const std::string last = gc::load_safetensors(path("good/checkpoint-2/weights.safetensors")).tensors.back().first;
  expect_refused(out, weights + ": checksum mismatch in tensor '" + last + "'");
}

TEST_F(GcTrainCliResume, FifoInPlaceOfTheWeightsIsRefusedAtOnce) {
  const std::string out = checkpoint_copy("fifo");
  const std::string weights = out + "/checkpoint-2/weights.safetensors";
  std::filesystem::remove(weights);
  ASSERT_EQ(mkfifo(weights.c_str(), 0600), 0);
  expect_refused(out, weights + ": not a regular file but a FIFO");
  // A directory in its place too.
  std::filesystem::remove(weights);
  std::filesystem::create_directory(weights);
  expect_refused(out, weights + ": not a regular file but a directory");
}

TEST_F(GcTrainCliResume, EditedTrainStateNamesTheFileKeyAndValue) {
  const std::string out = checkpoint_copy("edited");
  const std::string state_path = out + "/checkpoint-2/train_state.safetensors";
  gc::SafetensorsFile state = gc::load_safetensors(state_path);
  for (auto& [key, value] : state.metadata)
    if (key == "step") value = "1:0";
  gc::save_safetensors(state_path, state.tensors, state.metadata);
  expect_refused(out, state_path + ": metadata 'step' is \"1:0\", expected an integer from 0 to 2147483647");
}

TEST_F(GcTrainCliResume, LatestWithCrLfOrBlanksIsTrimmed) {
  for (const std::string latest : {"checkpoint-2\r\n", "checkpoint-2   \n", " checkpoint-2\t", "checkpoint-2"}) {
    SCOPED_TRACE(gc::json::Value(latest).dump());
    const std::string out = checkpoint_copy("trimmed");
    std::ofstream(out + "/latest", std::ios::binary | std::ios::trunc) << latest;
    std::error_code ignored;
    std::filesystem::remove_all(path("resumed"), ignored);
    const RunResult r = run_within(120, kTiny + " --steps 3 --out " + path("resumed") + " --resume " + out);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(exists(path("resumed/checkpoint-3/weights.safetensors")));
  }
}

TEST_F(GcTrainCliResume, LatestNamingAMissingCheckpointSaysSo) {
  const std::string out = checkpoint_copy("missing");
  std::ofstream(out + "/latest", std::ios::binary | std::ios::trunc) << "checkpoint-7\n";
  expect_refused(out, "--resume: " + out + "/latest names checkpoint-7, which is missing");
  std::ofstream(out + "/latest", std::ios::binary | std::ios::trunc) << "checkpoint-2/weights.safetensors\n";
  expect_refused(out, out + "/latest names checkpoint-2/weights.safetensors, which is not a directory");
  std::filesystem::remove(out + "/latest");
  ASSERT_EQ(mkfifo((out + "/latest").c_str(), 0600), 0);
  expect_refused(out, out + "/latest is not a regular file");
}

}  // namespace

TEST_F(GcTrainCli, EveryByteIsBackAtExit) {
  // A normal run, a dry run and an out-of-memory exit all return every block.
  for (const std::string& args : {kTiny + " --steps 2 --out " + path("a"), kTiny + " --steps 2 --device meta",
                                  kTiny + " --steps 2 --mem-limit 1MiB --out " + path("b")}) {
    SCOPED_TRACE(args);
    const RunResult r = run(args);
    EXPECT_EQ(r.signal, 0);
    EXPECT_EQ(r.err.find("still allocated"), std::string::npos) << r.err;
  }
}

// ---- nothing lost: bad outputs, other runs' folders, interrupts, divergence ------------------

TEST_F(GcTrainCli, OutputsAreCheckedBeforeAnyWork) {
  write_text(path("a-file"), "x");
  struct Case {
    std::string flags, says;
  };
  const std::vector<Case> cases = {
      {"--out " + path("a-file"), "is a file"},
      {"--out " + path("a-file/sub"), "is a file"},
      {"--trace " + path("a-file/t.json"), "--trace"},
      {"--trace-png " + path("a-file/t.png"), "--trace-png"},
      {"--report " + path("a-file/r.json"), "--report"},
      {"--report " + dir_, "is a folder"},
      {"--trace /proc/no/such/t.json", "--trace"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.flags);
    const RunResult r = run(kTiny + " --steps 50 --out " + path("out") + " " + c.flags);
    EXPECT_EQ(r.signal, 0) << r.err;
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("step 1/"), std::string::npos) << "it trained first: " << r.err;
    EXPECT_EQ(r.err.find(".tmp."), std::string::npos) << "the message names a temporary file: " << r.err;
  }
  // Out of memory with a trace that cannot be written: the explanation, exit 3, no abort.
  const RunResult oom = run(kTiny + " --steps 2 --mem-limit 1MiB --trace " + path("trace-dir/t.json") + " --out " +
                            path("oom"));
  EXPECT_EQ(oom.signal, 0) << oom.err;
  EXPECT_EQ(oom.exit_code, 3) << oom.err;
}

TEST_F(GcTrainCli, AnotherRunsFolderIsNeverTouched) {
  ASSERT_EQ(run(kTiny + " --steps 2 --out " + path("a")).exit_code, 0);
  ASSERT_EQ(run(kTiny + " --steps 2 --seed 5 --out " + path("b")).exit_code, 0);
  const std::string a_metrics = read_file(path("a/metrics.jsonl"));
  const std::string b_metrics = read_file(path("b/metrics.jsonl"));
  // A new run into a's folder.
  const RunResult again = run(kTiny + " --steps 2 --out " + path("a"));
  EXPECT_EQ(again.exit_code, 2) << again.err;
  EXPECT_NE(again.err.find("--resume"), std::string::npos) << again.err;
  EXPECT_NE(again.err.find("--overwrite"), std::string::npos) << again.err;
  // Continuing a into b's folder.
  const RunResult into_b = run(kTiny + " --steps 4 --resume " + path("a") + " --out " + path("b"));
  EXPECT_EQ(into_b.exit_code, 2) << into_b.err;
  EXPECT_EQ(read_file(path("a/metrics.jsonl")), a_metrics);
  EXPECT_EQ(read_file(path("b/metrics.jsonl")), b_metrics);
  EXPECT_TRUE(exists(path("a/checkpoint-2/weights.safetensors")));
  EXPECT_TRUE(exists(path("b/checkpoint-2/weights.safetensors")));
  // Said on purpose: replaced.
  EXPECT_EQ(run(kTiny + " --steps 3 --out " + path("a") + " --overwrite").exit_code, 0);
  EXPECT_EQ(lines_of(read_file(path("a/metrics.jsonl"))).size(), 3u);
  // Continuing a run in its own folder is what --resume is for.
  EXPECT_EQ(run(kTiny + " --steps 5 --out " + path("a") + " --resume " + path("a")).exit_code, 0);
  EXPECT_EQ(lines_of(read_file(path("a/metrics.jsonl"))).size(), 5u);
}

TEST_F(GcTrainCli, InterruptSavesACheckpointAndTheRunResumesBitForBit) {
  const std::string flags = kTiny + " --steps 100000 --lr 1e-4 --checkpoint-every-minutes 0 --out " + path("i");
  const RunResult r = run_interrupted(flags, 2.0);
  ASSERT_EQ(r.signal, 0) << r.err;
  ASSERT_EQ(r.exit_code, 130) << r.err;
  const std::string latest = read_file(path("i/latest"));
  ASSERT_EQ(latest.rfind("checkpoint-", 0), 0u) << r.err;
  const int64_t saved = std::stoll(latest.substr(11));
  EXPECT_NE(r.err.find("interrupted after step " + std::to_string(saved)), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--resume " + path("i")), std::string::npos) << r.err;
  // Every step up to the checkpoint is in metrics.jsonl, flushed as it ran.
  const std::vector<std::string> lines = lines_of(read_file(path("i/metrics.jsonl")));
  ASSERT_EQ(static_cast<int64_t>(lines.size()), saved);
  // SIGTERM too; then the resumed run's history holds every step once.
  const RunResult t = run_interrupted(kTiny + " --steps 100000 --lr 1e-4 --checkpoint-every-minutes 0 --out " +
                                          path("i") + " --resume " + path("i"),
                                      2.0, "TERM");
  ASSERT_EQ(t.exit_code, 130) << t.err;
  const std::vector<std::string> all = lines_of(read_file(path("i/metrics.jsonl")));
  ASSERT_GT(all.size(), lines.size());
  for (size_t i = 0; i < all.size(); ++i) EXPECT_EQ(Value::parse(all[i]).at("step").as_int(), static_cast<int64_t>(i + 1));
  for (size_t i = 0; i < lines.size(); ++i) EXPECT_EQ(all[i], lines[i]);
}

TEST_F(GcTrainCli, CheckpointEveryNSteps) {
  const RunResult r = run(kTiny + " --steps 7 --checkpoint-every 3 --out " + path("c"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_file(path("c/latest")), "checkpoint-7\n");
  EXPECT_FALSE(exists(path("c/checkpoint-6"))) << "older checkpoints go once the newer one is complete";
  EXPECT_EQ(run(kTiny + " --checkpoint-every 0 --out " + path("d")).exit_code, 2);
}

TEST_F(GcTrainCli, DivergenceStopsKeepingTheLastGoodCheckpoint) {
  // Step 1 is fine and saved; its update makes step 2's loss non-finite.
  const RunResult r = run(kTiny + " --steps 5 --warmup 0 --lr 1e30 --checkpoint-every 1 --out " + path("n"));
  EXPECT_EQ(r.signal, 0) << r.err;
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("step 2 diverged"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("first non-finite gradient"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(path("n/checkpoint-1")), std::string::npos) << r.err;
  EXPECT_EQ(read_file(path("n/latest")), "checkpoint-1\n");
  EXPECT_FALSE(exists(path("n/checkpoint-2")));
}

TEST_F(GcTrainCli, SmallFaultsAreUsageErrors) {
  for (const std::string& flags : {std::string("--quiet=maybe"), std::string("--no-eval=2"),
                                   std::string("--device meta --resume ") + dir_,
                                   std::string("--mem-limit 1e10TB"), std::string("--mem-budget 9223372036854775808"),
                                   std::string("--edge-chunks 32"),
                                   std::string("--device meta --remat auto --mem-budget 48MiB --edge-chunks 5")}) {
    SCOPED_TRACE(flags);
    const RunResult r = run(kTiny + " --steps 1 --out " + path("s") + " " + flags);
    EXPECT_EQ(r.signal, 0) << r.err;
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_EQ(r.err.find("9223372036854775807 B"), std::string::npos) << r.err;
  }
  // --quiet=false is not quiet.
  const RunResult loud = run("--preset graphcast-small --grid 30 --mesh 1 --latent 8 --layers 1 --no-eval --steps 1 "
                             "--quiet=false --out " + path("loud"));
  EXPECT_EQ(loud.exit_code, 0) << loud.err;
  EXPECT_NE(loud.err.find("step 1/1"), std::string::npos) << loud.err;
}

TEST_F(GcTrainCli, CudaWithoutAGpuIsAnErrorNotACrash) {
  std::string why;
  if (gc::cuda_available(&why)) GTEST_SKIP() << "a GPU is present";
  const RunResult r = run(kTiny + " --steps 1 --device cuda --out " + path("g"));
  EXPECT_EQ(r.signal, 0) << r.err;
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("--device cuda"), std::string::npos) << r.err;
}

TEST_F(GcTrainCli, ResumeRefusesAnotherPrecisionSeedDataOrBatchUnlessMeant) {
  ASSERT_EQ(run(kTiny + " --steps 2 --out " + path("r")).exit_code, 0);
  for (const std::string& change : {std::string("--precision bf16"), std::string("--seed 9"),
                                    std::string("--batch 2"), std::string("--accum 2")}) {
    SCOPED_TRACE(change);
    const RunResult r = run(kTiny + " --steps 4 --out " + path("r") + " --resume " + path("r") + " " + change);
    EXPECT_EQ(r.signal, 0) << r.err;
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("--resume-with-changes"), std::string::npos) << r.err;
  }
  EXPECT_EQ(read_file(path("r/latest")), "checkpoint-2\n") << "a refused resume saves nothing";
  // Meant: fp16 then starts its own loss scaling at 2^16, not the fp32 run's 1.
  const RunResult meant = run(kTiny + " --steps 3 --out " + path("r") + " --resume " + path("r") +
                              " --precision fp16 --resume-with-changes --report " + path("r.json"));
  ASSERT_EQ(meant.exit_code, 0) << meant.err;
  EXPECT_GE(Value::parse(read_file(path("r.json"))).at("train").at("loss_scale").as_double(), 32768.0);
}

TEST_F(GcTrainCli, LeftoversOfAKilledRunAreTidied) {
  ASSERT_EQ(run(kTiny + " --steps 2 --out " + path("k")).exit_code, 0);
  // A process that no longer exists, as a writer killed before its rename.
  ASSERT_EQ(std::system(("sh -c 'echo $$' > " + path("dead.pid")).c_str()), 0);
  const std::string dead = lines_of(read_file(path("dead.pid"))).at(0);
  write_text(path("k/metrics.jsonl.tmp." + dead + ".0"), "half");
  write_text(path("k/checkpoint-2/weights.safetensors.tmp." + dead + ".3"), "half");
  ASSERT_EQ(mkdir(path("k/checkpoint-3").c_str(), 0755), 0);  // a save cut short
  write_text(path("k/checkpoint-3/weights.safetensors.tmp." + dead + ".4"), "half");
  const std::string live = path("k/report.json.tmp." + std::to_string(getpid()) + ".0");  // a live writer's
  write_text(live, "in progress");
  const RunResult r = run(kTiny + " --steps 4 --out " + path("k") + " --resume " + path("k"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(exists(path("k/metrics.jsonl.tmp." + dead + ".0")));
  EXPECT_FALSE(exists(path("k/checkpoint-3")));
  EXPECT_TRUE(exists(live));
  EXPECT_TRUE(exists(path("k/checkpoint-4/weights.safetensors")));
}

TEST_F(GcTrainCli, HostStructuresThatCannotFitAreRefusedBeforeAllocating) {
  // Layers past 1024 are a usage error on every device (meta too: each layer's
  // modules are host objects).
  for (const char* device : {"cpu", "meta"}) {
    const RunResult r = run(kTiny + " --layers 2147483647 --steps 1 --device " + std::string(device) + " --out " + path("l"));
    EXPECT_EQ(r.exit_code, 2) << r.err;
  }
  for (const std::string& flags :
       {kTiny + " --latent 100000", std::string("--mesh 1 --latent 8 --layers 1 --data-trajectories 100000 "
                                                "--data-frames 1000 --quiet --data-cache ") + path("cache")}) {
    SCOPED_TRACE(flags);
    const RunResult r = run(flags + " --steps 1 --out " + path("h"));
    EXPECT_EQ(r.signal, 0) << r.err;
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("of host memory"), std::string::npos) << r.err;
  }
}

TEST_F(GcTrainCli, Fp16ThatKeepsOverflowingStops) {
  const RunResult r = run(kTiny + " --precision fp16 --lr 1e30 --warmup 0 --steps 60 --out " + path("f"));
  EXPECT_EQ(r.signal, 0) << r.err;
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("24 fp16 steps in a row overflowed"), std::string::npos) << r.err;
}

// The batch's graphs are indexed in 32 bits: a batch past that is refused before
// anything is built (it used to overflow the indices, or grow the host for 40 s).
TEST_F(GcTrainCli, ABatchBeyondThirtyTwoBitIndicesIsAUsageError) {
  const RunResult r = run(kTiny + " --batch 2147483647 --steps 1 --out " + path("b"));
  EXPECT_EQ(r.signal, 0) << r.err;
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("32 bits"), std::string::npos) << r.err;
}

TEST_F(GcTrainCli, ASecondInterruptExitsAtOnce) {
  // Steps of about a second and the second signal 10 ms after the first, so that it comes
  // while the step of the first runs (only a step ending within those 10 ms would let the
  // run save and exit first; with 50 ms and half-second steps that happened about once in
  // ten runs on a busy machine).
  const std::string command = "exec sh -c '" + std::string(kProgram) +
                              " --preset graphcast-small --grid 1 --mesh 2 --latent 64 --layers 4 --no-eval --quiet"
                              " --steps 1000000 --checkpoint-every-minutes 0 --out " + path("twice") +
                              " 2>" + path("err.txt") + " & pid=$!; sleep 4; kill -INT $pid; sleep 0.01; kill -INT $pid; " +
                              "wait $pid; echo $? >" + path("status.txt") + "'";
  ASSERT_EQ(std::system(command.c_str()), 0);
  EXPECT_EQ(read_file(path("status.txt")), "130\n");
  EXPECT_NE(read_file(path("err.txt")).find("exiting now"), std::string::npos) << read_file(path("err.txt"));
}
