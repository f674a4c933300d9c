// test_gc_forecast_cli.cpp: ./gc_forecast as a user meets it, on DeepMind's
// fixture (tests/data/deepmind): its forecast file equals DeepMind's 3-step
// forecast, with the forcings given or computed by gc; the meta dry run (standing
// for the cpu) reports the cpu run's peaks to the byte; a converted checkpoint
// gives the bit-identical forecast; usage errors exit 2 naming the problem.
// Every test writes only under its own mkdtemp folder.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "tests/test_util.h"
#include "tools/io/json.h"
#include "tools/io/npz.h"
#include "tools/io/safetensors.h"

namespace gc {
namespace {

const char* const kProgram = "./gc_forecast";
const std::string kDir = "tests/data/deepmind/";
const std::string kBase = "--checkpoint " + kDir + "checkpoint.npz --stats " + kDir + "stats.npz --inputs " + kDir +
                          "inputs.npz --graphs " + kDir + "graphs.npz --quiet";

class GcForecastCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access(kProgram, X_OK) != 0) GTEST_SKIP() << kProgram << " is not built here (make gc_forecast)";
    char pattern[] = "/tmp/gc_forecast_cli.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    std::error_code ignored;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ignored);
  }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }

  int run(const std::string& args, std::string* err = nullptr) {
    const std::string command = "exec " + std::string(kProgram) + " " + args + " >" + path("out.txt") + " 2>" + path("err.txt");
    const int status = std::system(command.c_str());
    if (err) *err = test::read_file(path("err.txt"));
    return status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  std::string dir_;
};

// Largest |got - ref| over a field, relative to the field's largest |ref|.
double worst_against_deepmind(const std::string& forecast_path) {
  const SafetensorsFile forecast = load_safetensors(forecast_path);
  const NpzFile reference = load_npz(kDir + "outputs_3step.npz");
  EXPECT_EQ(forecast.tensors.size(), 4u);
  double worst = 0;
  for (const auto& [name, tensor] : forecast.tensors) {
    const std::vector<double> got = tensor.to_doubles(), ref = reference.at(name).to_doubles();
    EXPECT_EQ(tensor.shape(), Shape(reference.at(name).shape.begin(), reference.at(name).shape.end())) << name;
    if (got.size() != ref.size()) return 1e300;
    const size_t field = 19 * 36;
    for (size_t k = 0; k < ref.size() / field; ++k) {
      double scale = 0, difference = 0;
      for (size_t i = k * field; i < (k + 1) * field; ++i) {
        scale = std::max(scale, std::fabs(ref[i]));
        difference = std::max(difference, std::fabs(got[i] - ref[i]));
      }
      worst = std::max(worst, difference / scale);
    }
  }
  return worst;
}

TEST_F(GcForecastCli, ForecastEqualsDeepMindAndDryRunEqualsTheRun) {
  std::string err;
  ASSERT_EQ(run(kBase + " --forcings " + kDir + "forcings.npz --steps 3 --out " + path("f.safetensors") +
                " --report " + path("cpu.json") + " --plot temperature@850,2m_temperature --plot-dir " + path("maps"),
                &err),
            0)
      << err;
  EXPECT_LE(worst_against_deepmind(path("f.safetensors")), 1e-5);
  EXPECT_TRUE(test::has_png_signature(path("maps/forecast_temperature_850hPa.png")));
  EXPECT_TRUE(test::has_png_signature(path("maps/forecast_2m_temperature.png")));
  ASSERT_EQ(run(kBase + " --forcings " + kDir + "forcings.npz --steps 3 --device meta --meta-target cpu --report " +
                path("meta.json") + " --trace " + path("trace.json") + " --trace-png " + path("trace.png"), &err),
            0)
      << err;
  json::Value cpu = json::Value::parse(test::read_file(path("cpu.json")));
  json::Value meta = json::Value::parse(test::read_file(path("meta.json")));
  EXPECT_GT(cpu["memory"]["peak_allocated"].as_int(), 0);
  EXPECT_FALSE(json::Value::parse(test::read_file(path("trace.json")))["traceEvents"].as_array().empty());
  EXPECT_TRUE(test::has_png_signature(path("trace.png")));
  for (const char* key : {"peak_allocated", "peak_reserved", "at_peak", "peak_label"})
    EXPECT_EQ(cpu["memory"][key].dump(), meta["memory"][key].dump()) << key;  // JSON text in a failure
  EXPECT_EQ(cpu["params"]["total"].as_int(), 43816);
  EXPECT_EQ(cpu["graph"]["g2m_edges"].as_int(), 1236);
  EXPECT_EQ(cpu["graph"]["m2g_edges"].as_int(), 2052);
}

// gc_forecast gives cores back to a busy machine (tools/train/cpu_share.h); its
// memory figures must not follow. The dry run starts on a quiet machine, the cpu
// run beside as many spinning threads as there are cores (so it takes one thread):
// their peaks are equal (the cpu GEMM's workspace is sized for the team a process
// starts with). With OMP_NUM_THREADS set neither would look at the load, so it is
// unset for both.
TEST_F(GcForecastCli, PeaksDoNotDependOnTheMachinesLoad) {
  const char* user_threads = std::getenv("OMP_NUM_THREADS");
  const std::string saved = user_threads ? user_threads : "";
  unsetenv("OMP_NUM_THREADS");
  const std::string base = kBase + " --forcings " + kDir + "forcings.npz --steps 1";
  std::string err;
  const int dry = run(base + " --device meta --meta-target cpu --report " + path("meta.json"), &err);
  std::atomic<bool> stop{false};
  std::vector<std::thread> spinners;
  for (unsigned i = 0; i < std::max(1u, std::thread::hardware_concurrency()); ++i)
    spinners.emplace_back([&stop] {
      while (!stop.load(std::memory_order_relaxed)) {
      }
    });
  const int real = run(base + " --out " + path("f.safetensors") + " --report " + path("cpu.json"), &err);
  stop = true;
  for (std::thread& t : spinners) t.join();
  if (user_threads) setenv("OMP_NUM_THREADS", saved.c_str(), 1);
  ASSERT_EQ(dry, 0);
  ASSERT_EQ(real, 0) << err;
  json::Value cpu = json::Value::parse(test::read_file(path("cpu.json")));
  json::Value meta = json::Value::parse(test::read_file(path("meta.json")));
  for (const char* key : {"peak_allocated", "peak_reserved", "at_peak"})
    EXPECT_EQ(cpu["memory"][key].dump(), meta["memory"][key].dump()) << key;
}

TEST_F(GcForecastCli, ComputedForcingsAndConvertedCheckpoint) {
  std::string err;
  // No --forcings: gc computes them (tools/data/solar.h).
  ASSERT_EQ(run(kBase + " --steps 3 --out " + path("computed.safetensors"), &err), 0) << err;
  EXPECT_LE(worst_against_deepmind(path("computed.safetensors")), 1e-5);
  ASSERT_EQ(run("--checkpoint " + kDir + "checkpoint.npz --convert-to " + path("gc.safetensors"), &err), 0) << err;
  const std::string converted = kBase + " --steps 3 --forcings " + kDir + "forcings.npz --checkpoint " + path("gc.safetensors");
  ASSERT_EQ(run(converted + " --out " + path("from_gc.safetensors"), &err), 0) << err;
  ASSERT_EQ(run(kBase + " --steps 3 --forcings " + kDir + "forcings.npz --out " + path("from_npz.safetensors"), &err), 0) << err;
  const SafetensorsFile a = load_safetensors(path("from_gc.safetensors")), b = load_safetensors(path("from_npz.safetensors"));
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (size_t i = 0; i < a.tensors.size(); ++i) EXPECT_EQ(a.tensors[i].second.to_doubles(), b.tensors[i].second.to_doubles());
}

TEST_F(GcForecastCli, UsageErrorsExit2) {
  std::string err;
  EXPECT_EQ(run("--help"), 0);
  EXPECT_NE(test::read_file(path("out.txt")).find("--convert-to"), std::string::npos);
  EXPECT_EQ(run("--stats x.npz", &err), 2);
  EXPECT_NE(err.find("--checkpoint FILE is required"), std::string::npos) << err;
  EXPECT_EQ(run(kBase + " --precision fp8", &err), 2);
  EXPECT_NE(err.find("--precision must be"), std::string::npos) << err;
  EXPECT_EQ(run(kBase + " --steps 0", &err), 2);
  EXPECT_EQ(run(kBase + " --plot vorticity", &err), 2);
  EXPECT_NE(err.find("'vorticity' is not a target variable"), std::string::npos) << err;
  EXPECT_EQ(run(kBase + " --plot temperature@700", &err), 2);
  EXPECT_EQ(run(kBase + " --steps 4 --forcings " + kDir + "forcings.npz", &err), 2);
  EXPECT_NE(err.find("the forcings cover 3 target times"), std::string::npos) << err;
  EXPECT_EQ(run(kBase + " --checkpoint tests/data/deepmind_like/tiny_compressed.npz", &err), 2);
  EXPECT_NE(err.find("np.savez_compressed"), std::string::npos) << err;
  EXPECT_EQ(run(kBase + " --graphs tests/data/npz/bad_graphs.npz", &err), 2);
  EXPECT_NE(err.find("receiver 684 is outside"), std::string::npos) << err;
  EXPECT_EQ(run(kBase + " --stats " + kDir + "inputs.npz", &err), 2);
  EXPECT_NE(err.find("no array 'mean/"), std::string::npos) << err;
}

}  // namespace
}  // namespace gc
