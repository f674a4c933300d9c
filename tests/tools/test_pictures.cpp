// test_pictures.cpp: the pictures and the trace of a real (tiny) training run:
// write_pictures writes loss.png (and rmse.png given an evaluation); a traced
// run has step / forward / backward / optimizer slices, properly nested, with
// module scopes inside forward. Uses a random-input preset shrunk to a 30 deg
// grid so that it runs in well under a second (the demo data set would take
// ~20 s to generate).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <unistd.h>
#include <vector>

#include "tests/test_util.h"
#include "tools/io/json.h"
#include "tools/memory/trace.h"
#include "tools/train/options.h"
#include "tools/train/pictures.h"
#include "tools/train/trainer.h"

namespace gc {
namespace {

using test::has_png_signature;
using test::read_file;

TrainOptions tiny_options(const std::string& out_dir) {
  TrainOptions options;
  std::string help;
  const bool run = parse_train_options({"--preset", "graphcast-small", "--grid", "30", "--mesh", "1", "--latent", "8",
                                        "--layers", "1", "--steps", "3", "--quiet", "--out", out_dir},
                                       &options, &help);
  EXPECT_TRUE(run);
  return options;
}

std::string make_temp_dir() {
  static int made = 0;
  return test::scratch_folder("pictures_" + std::to_string(made++));
}

TEST(Pictures, LossAndRmsePngsOfATinyRun) {
  const std::string dir = make_temp_dir();
  Trainer trainer(prepare_run(tiny_options(dir)));
  trainer.train();
  ASSERT_EQ(trainer.history().size(), 3u);
  EvalResult eval;  // a hand-made evaluation: the random-input preset has none
  eval.lead_hours = {6, 12, 18};
  eval.variables = {"h", "u", "v"};
  eval.cases = 1;
  for (int v = 0; v < 3; ++v) {
    eval.rmse_model.push_back({1.0 + v, 2.0 + v, 3.5 + v});
    eval.rmse_persistence.push_back({1.5 + v, 3.0 + v, 4.0 + v});
    eval.rmse_climatology.push_back({5.0 + v, 5.0 + v, 5.0 + v});
    eval.acc_model.push_back({0.9, 0.8, 0.7});
  }
  write_pictures(trainer, &eval, dir);
  EXPECT_TRUE(has_png_signature(dir + "/loss.png"));
  EXPECT_TRUE(has_png_signature(dir + "/rmse.png"));
  // No data set: no forecast maps.
  EXPECT_FALSE(std::ifstream(dir + "/forecast_h.png").good());
  std::remove((dir + "/loss.png").c_str());
  std::remove((dir + "/rmse.png").c_str());
  rmdir(dir.c_str());
}

TEST(Pictures, TracedTrainingStepsHavePhaseSlices) {
  const std::string dir = make_temp_dir();
  Trainer trainer(prepare_run(tiny_options(dir)));
  const std::string json_path = dir + "/trace.json", png_path = dir + "/trace.png";
  trace_begin(Device::cpu);
  trainer.train();
  trace_end(Device::cpu, json_path, png_path);
  EXPECT_TRUE(has_png_signature(png_path));

  const json::Value trace = json::Value::parse(read_file(json_path));
  int steps = 0, forwards = 0, backwards = 0, optimizers = 0, forward_modules = 0, backward_nodes = 0;
  for (const json::Value& e : trace.at("traceEvents").as_array()) {
    if (e.at("ph").as_string() != "X") continue;
    const std::string name = e.at("name").as_string(), category = e.at("cat").as_string();
    steps += category == "step";
    forwards += name == "forward";
    backwards += name == "backward";
    optimizers += name == "optimizer";
    forward_modules += category == "forward" && name != "forward";
    backward_nodes += category == "backward" && name != "backward";
  }
  EXPECT_EQ(steps, 3);
  EXPECT_EQ(forwards, 3);
  EXPECT_EQ(backwards, 3);
  EXPECT_EQ(optimizers, 3);
  EXPECT_GT(forward_modules, 3);
  EXPECT_GT(backward_nodes, 3);
  std::remove(json_path.c_str());
  std::remove(png_path.c_str());
  rmdir(dir.c_str());
}

}  // namespace
}  // namespace gc
