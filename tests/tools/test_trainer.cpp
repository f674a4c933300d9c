// test_trainer.cpp: the training job on a tiny random-input configuration:
// resume continues bitwise exactly, checkpoints survive corruption checks
// (edited train_state values and moment tensors of the wrong shape or dtype are
// refused naming the file, key or tensor, and leave the trainer unchanged),
// the dry run on meta reports the cpu run's figures to the byte, an impossible
// limit is an OutOfMemory with a smallest passing limit, bad flags are usage errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <sys/stat.h>

#include "tools/io/safetensors.h"
#include "tools/memory/dry_run.h"
#include "tools/train/predict.h"
#include "tools/memory/memory_report.h"
#include "tools/train/options.h"
#include "tools/train/trainer.h"
#include "tests/test_util.h"

using namespace gc;

namespace {

TrainOptions tiny_options(const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args = {"--preset", "graphcast-small", "--grid", "30", "--mesh", "1", "--latent", "8",
                                   "--layers", "2", "--steps", "6", "--quiet", "--no-eval", "--lr", "1e-2"};
  args.insert(args.end(), extra.begin(), extra.end());
  TrainOptions o;
  std::string help;
  EXPECT_TRUE(parse_train_options(args, &o, &help));
  return o;
}

std::string temp_dir(const std::string& name) { return test::scratch_folder("trainer_" + name); }

std::vector<double> losses(const Trainer& t) {
  std::vector<double> out;
  for (const StepRecord& r : t.history()) out.push_back(r.loss);
  return out;
}

}  // namespace

// train(stop) then train() continues where the first call stopped (what the
// studies' periodic evaluations rely on): the same losses and weights as one call.
TEST(Trainer, TrainingInTwoCallsEqualsOne) {
  TrainOptions o = tiny_options();
  Trainer whole(prepare_run(o));
  whole.train();
  Trainer split(prepare_run(o));
  split.train(2);
  EXPECT_EQ(split.completed_steps(), 2);
  split.train();
  EXPECT_EQ(split.completed_steps(), 6);
  EXPECT_EQ(losses(split), losses(whole));
  for (size_t i = 0; i < whole.optimizer().params().size(); ++i)
    ASSERT_EQ(whole.optimizer().params()[i].value().to_doubles(), split.optimizer().params()[i].value().to_doubles());
}

TEST(Trainer, ResumeContinuesBitwiseExactly) {
  const std::string dir = temp_dir("resume");
  TrainOptions o = tiny_options();
  Trainer whole(prepare_run(o));
  whole.train();
  std::vector<double> all = losses(whole);
  ASSERT_EQ(all.size(), 6u);

  Trainer c(prepare_run(o));
  c.train(3);  // the first half, on the schedule of 6 steps
  c.save_checkpoint(dir);
  std::vector<double> resumed = losses(c);
  Trainer d(prepare_run(o));
  d.load_checkpoint(dir);
  d.train();
  for (double l : losses(d)) resumed.push_back(l);
  ASSERT_EQ(resumed.size(), all.size());
  for (size_t i = 0; i < all.size(); ++i) EXPECT_EQ(resumed[i], all[i]) << "step " << i;
  // The final weights are bitwise equal too.
  for (size_t i = 0; i < whole.optimizer().params().size(); ++i)
    ASSERT_EQ(whole.optimizer().params()[i].value().to_doubles(), d.optimizer().params()[i].value().to_doubles());
}

TEST(Trainer, CorruptedCheckpointIsAClearError) {
  const std::string dir = temp_dir("corrupt");
  TrainOptions o = tiny_options({"--steps", "2"});
  Trainer t(prepare_run(o));
  t.train();
  t.save_checkpoint(dir);
  const std::string weights = dir + "/checkpoint-2/weights.safetensors";
  {
    std::ifstream in(weights, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream out(weights, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
  }
  TrainOptions o4 = tiny_options({"--steps", "4"});
  Trainer r(prepare_run(o4));
  try {
    r.load_checkpoint(dir);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("weights.safetensors"), std::string::npos) << e.what();
  }
  // A checkpoint of another configuration is refused with both descriptions.
  TrainOptions other = tiny_options({"--latent", "16", "--steps", "4"});
  Trainer t2(prepare_run(o));
  t2.train();
  const std::string dir2 = temp_dir("other");
  t2.save_checkpoint(dir2);
  Trainer r2(prepare_run(other));
  EXPECT_THROW(r2.load_checkpoint(dir2), std::runtime_error);
}

namespace {

// The error of r.load_checkpoint(dir), or "" when it succeeds.
std::string load_error(Trainer& r, const std::string& dir) {
  try {
    r.load_checkpoint(dir);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

// A 2-step run's checkpoint saved in `dir`; returns its train_state file.
std::string save_two_step_checkpoint(const std::string& dir) {
  Trainer t(prepare_run(tiny_options({"--steps", "2"})));
  t.train();
  t.save_checkpoint(dir);
  return dir + "/checkpoint-2/train_state.safetensors";
}

}  // namespace

TEST(Trainer, EditedTrainStateValuesAreRefusedNamingFileKeyAndValue) {
  const std::string dir = temp_dir("edited");
  const std::string state_path = save_two_step_checkpoint(dir);
  const SafetensorsFile original = load_safetensors(state_path);
  TrainOptions o4 = tiny_options({"--steps", "4"});
  Trainer r(prepare_run(o4));
  const std::vector<double> untouched = r.optimizer().params()[0].value().to_doubles();
  for (const std::string key : {"step", "optimizer_steps", "clean_steps", "skipped_steps", "loss_scale"}) {
    // "3" is beyond the step for the counters, not a power of two for the scale.
    for (const std::string value : {"abc", "", "99999999999", "1:0", "-1", " 1", "1 ", "+1", "0x1", "3"}) {
      if (key == "step" && value == "3") continue;  // a valid step (the config check passes, then the counters do)
      SCOPED_TRACE(key + " = \"" + value + "\"");
      std::vector<std::pair<std::string, std::string>> metadata = original.metadata;
      for (auto& [k, v] : metadata)
        if (k == key) v = value;
      save_safetensors(state_path, original.tensors, metadata);
      const std::string error = load_error(r, dir);
      EXPECT_NE(error.find(state_path + ": metadata '" + key + "' is \"" + value + "\", expected "), std::string::npos)
          << error;
    }
  }
  // A value that is too long is cut short in the message.
  std::vector<std::pair<std::string, std::string>> metadata = original.metadata;
  for (auto& [k, v] : metadata)
    if (k == "step") v = std::string(1000, '7');
  save_safetensors(state_path, original.tensors, metadata);
  EXPECT_NE(load_error(r, dir).find("\"" + std::string(40, '7') + "...\""), std::string::npos);
  // A missing key is named too.
  metadata = original.metadata;
  for (size_t i = 0; i < metadata.size(); ++i)
    if (metadata[i].first == "clean_steps") metadata.erase(metadata.begin() + static_cast<long>(i));
  save_safetensors(state_path, original.tensors, metadata);
  EXPECT_NE(load_error(r, dir).find(state_path + ": metadata 'clean_steps' missing"), std::string::npos);

  // Nothing was changed by the refused loads; the original checkpoint still loads.
  EXPECT_EQ(r.completed_steps(), 0);
  EXPECT_EQ(r.optimizer().params()[0].value().to_doubles(), untouched);
  save_safetensors(state_path, original.tensors, original.metadata);
  EXPECT_EQ(load_error(r, dir), "");
  EXPECT_EQ(r.completed_steps(), 2);
  EXPECT_EQ(r.optimizer().steps(), 2);
  std::system(("rm -rf " + dir).c_str());
}

TEST(Trainer, MomentOfTheWrongShapeOrDtypeIsRefusedNamingFileAndTensor) {
  const std::string dir = temp_dir("moments");
  const std::string state_path = save_two_step_checkpoint(dir);
  const SafetensorsFile original = load_safetensors(state_path);
  TrainOptions o4 = tiny_options({"--steps", "4"});
  Trainer r(prepare_run(o4));
  const std::string moment = r.optimizer().params()[1].name() + ".adam_v";
  const Tensor& right = r.optimizer().second_moments()[1];
  const Shape wrong_shape = {right.numel() + 1};
  for (const Tensor& wrong : {Tensor::zeros(wrong_shape, right.dtype()), Tensor::zeros(right.shape(), DType::f64)}) {
    SCOPED_TRACE(wrong.describe());
    std::vector<std::pair<std::string, Tensor>> tensors = original.tensors;
    for (auto& [name, tensor] : tensors)
      if (name == moment) tensor = wrong;
    save_safetensors(state_path, tensors, original.metadata);
    const std::string error = load_error(r, dir);
    EXPECT_EQ(error.rfind(state_path + ": tensor '" + moment + "' is ", 0), 0u) << error;
    EXPECT_NE(error.find(std::string("expected ") + dtype_name(right.dtype()) + shape_string(right.shape())),
              std::string::npos)
        << error;
  }
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const auto& entry : original.tensors)
    if (entry.first != moment) tensors.push_back(entry);
  save_safetensors(state_path, tensors, original.metadata);
  EXPECT_EQ(load_error(r, dir), state_path + ": tensor '" + moment + "' missing");
  EXPECT_EQ(r.completed_steps(), 0);
  std::system(("rm -rf " + dir).c_str());
}

TEST(Trainer, DryRunEqualsRealRunToTheByte) {
  for (const std::vector<std::string>& extra :
       std::vector<std::vector<std::string>>{{},
                                             {"--precision", "bf16"},
                                             {"--remat", "all"},
                                             {"--remat", "every:1", "--precision", "fp16"},
                                             {"--edge-chunks", "3", "--remat", "all"},
                                             {"--batch", "2", "--accum", "2"},
                                             {"--concat-trick", "off"}}) {
    TrainOptions o = tiny_options(extra);
    o.steps = 2;
    CachingAllocator& cpu = allocator_for(Device::cpu);
    cpu.empty_cache();
    Trainer real(prepare_run(o));
    real.train();
    DryRunResult dry = dry_run(real.setup(), 0, real.plan(), 2);
    std::string what;
    for (const auto& e : extra) what += e + " ";
    ASSERT_TRUE(dry.fits) << what;
    EXPECT_EQ(dry.stats.peak_allocated, real.memory().stats.peak_allocated) << what;
    EXPECT_EQ(dry.stats.at_peak, real.memory().stats.at_peak) << what;
    EXPECT_EQ(dry.stats.peak_label, real.memory().stats.peak_label) << what;
  }
}

TEST(Trainer, ImpossibleLimitIsOutOfMemoryWithTheSmallestPassingLimit) {
  allocator_for(Device::cpu).empty_cache();
  {
    TrainOptions o = tiny_options({"--mem-limit", "1MiB"});
    EXPECT_THROW({
      Trainer t(prepare_run(o));
      t.train();
    }, OutOfMemory);
  }
  EXPECT_EQ(allocator_for(Device::cpu).limit(), 0) << "the trainer restores the limit it set";
  TrainOptions free_run = tiny_options();
  Trainer ok(prepare_run(free_run));
  const int64_t smallest = smallest_passing_limit(dry_runner(ok.setup()), ok.plan());
  EXPECT_GT(smallest, 0);
  EXPECT_TRUE(dry_run(ok.setup(), smallest, ok.plan()).fits);
  ASSERT_GT(smallest, int64_t(1) << 20);
  EXPECT_FALSE(dry_run(ok.setup(), smallest - (int64_t(1) << 20), ok.plan()).fits);  // (a limit of 0 means none)
}

TEST(Trainer, LearningRateWarmsUpThenDecays) {
  TrainOptions o = tiny_options({"--steps", "100", "--warmup", "10", "--lr", "1e-3"});
  EXPECT_DOUBLE_EQ(learning_rate(o, 0), 1e-4);
  EXPECT_DOUBLE_EQ(learning_rate(o, 9), 1e-3);
  EXPECT_NEAR(learning_rate(o, 55), 0.5e-3, 1e-12);
  EXPECT_LT(learning_rate(o, 99), 1e-5);
}

TEST(TrainOptions, BadFlagsAreUsageErrors) {
  TrainOptions o;
  std::string help;
  EXPECT_THROW(parse_train_options({"--steps", "x"}, &o, &help), UsageError);
  EXPECT_THROW(parse_train_options({"--precision", "fp8"}, &o, &help), UsageError);
  EXPECT_THROW(parse_train_options({"--remat", "sometimes"}, &o, &help), UsageError);
  EXPECT_THROW(parse_train_options({"--remat", "auto"}, &o, &help), UsageError);  // needs a budget
  EXPECT_THROW(parse_train_options({"--mem-limit", "lots"}, &o, &help), UsageError);
  EXPECT_THROW(parse_train_options({"--device", "tpu"}, &o, &help), UsageError);
  EXPECT_THROW(parse_train_options({"--preset", "huge"}, &o, &help), UsageError);
  EXPECT_THROW(parse_train_options({"--grid", "0.7"}, &o, &help), UsageError);
  EXPECT_THROW(parse_train_options({"--grid", "1e-300"}, &o, &help), UsageError);  // found by tests/fuzz
  EXPECT_THROW(parse_train_options({"--what"}, &o, &help), UsageError);
  EXPECT_FALSE(parse_train_options({"--help"}, &o, &help));
  EXPECT_NE(help.find("--mem-budget"), std::string::npos);
  TrainOptions p;
  ASSERT_TRUE(parse_train_options({"--latent", "256", "--preset", "graphcast", "--mem-limit", "80GB"}, &p, &help));
  EXPECT_EQ(p.latent, 256);  // a flag overrides the preset whatever the order
  EXPECT_EQ(p.layers, 16);
  EXPECT_EQ(p.mem_limit, int64_t(80000000000));
}

namespace {
TrainOptions tiny_demo_options(const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"--mesh", "1", "--latent", "8", "--layers", "2", "--steps", "3", "--quiet",
                                   "--no-eval", "--data-trajectories", "4", "--data-frames", "8", "--data-cache",
                                   "/tmp/gc_test_data_cache"};
  args.insert(args.end(), extra.begin(), extra.end());
  TrainOptions o;
  std::string help;
  EXPECT_TRUE(parse_train_options(args, &o, &help));
  return o;
}
}  // namespace

TEST(Trainer, RolloutCheckpointsGiveIdenticalLossesAndDryRunEqualsReal) {
  std::vector<std::vector<double>> curves;
  for (const char* remat : {"none", "all", "every:2"}) {
    TrainOptions o = tiny_demo_options({"--rollout", "3", "--remat", remat});
    Trainer t(prepare_run(o));
    t.train();
    curves.push_back(losses(t));
    DryRunResult dry = dry_run(t.setup(), 0, t.plan(), 3);
    EXPECT_EQ(dry.stats.peak_allocated, t.memory().stats.peak_allocated) << remat;
    EXPECT_EQ(dry.stats.at_peak, t.memory().stats.at_peak) << remat;
  }
  EXPECT_EQ(curves[0], curves[1]);
  EXPECT_EQ(curves[0], curves[2]);
}

TEST(Trainer, DemoEvaluationAndForecastOnTinyData) {
  TrainOptions o = tiny_demo_options({"--steps", "2"});
  o.no_eval = false;
  Trainer t(prepare_run(o));
  t.train();
  EvalResult e = t.evaluate();
  ASSERT_FALSE(e.lead_hours.empty());
  EXPECT_EQ(e.lead_hours.front(), 6);
  ASSERT_EQ(e.variables.size(), 3u);
  for (size_t v = 0; v < 3; ++v)
    for (size_t k = 0; k < e.lead_hours.size(); ++k) {
      EXPECT_GT(e.rmse_persistence[v][k], 0.0);
      EXPECT_GT(e.rmse_climatology[v][k], 0.0);
      EXPECT_TRUE(std::isfinite(e.rmse_model[v][k]));
    }
  auto fc = t.forecast(t.data()->first_trajectory(data::SweSplit::test), 1, 2);
  ASSERT_EQ(fc.size(), 2u);
  EXPECT_EQ(fc[0].size(), t.data()->frame_elements());
}

TEST(Trainer, RematAutoFitsTheBudgetAndTheMeasuredPeakEqualsThePrediction) {
  // The unconstrained peak first, then a budget below it.
  const std::vector<std::string> bigger = {"--grid", "10", "--mesh", "2", "--latent", "32", "--steps", "2"};
  TrainOptions free_run = tiny_options(bigger);
  int64_t unconstrained = 0;
  std::vector<double> base_losses;
  {
    // Allocator figures are the device's: one trainer alive at a time.
    Trainer base(prepare_run(free_run));
    base.train();
    unconstrained = base.memory().stats.peak_reserved;
    base_losses = losses(base);
  }
  const int64_t budget = unconstrained - (int64_t(2) << 20);
  std::vector<std::string> args = bigger;
  for (const char* a : {"--remat", "auto", "--mem-budget"}) args.push_back(a);
  args.push_back(std::to_string(budget));
  TrainOptions o = tiny_options(args);
  allocator_for(Device::cpu).empty_cache();
  Trainer t(prepare_run(o));
  t.train();
  ASSERT_FALSE(t.plan().description.empty());
  EXPECT_LE(t.plan().predicted_peak_reserved, budget);
  EXPECT_EQ(t.memory().stats.peak_allocated, t.plan().predicted_peak_allocated);
  // Gradients, hence losses, are those of the plain run.
  EXPECT_EQ(losses(t), base_losses);
  // An impossible budget is a usage error naming the smallest one.
  TrainOptions tiny_budget = tiny_options({"--remat", "auto", "--mem-budget", "64KiB"});
  try {
    prepare_run(tiny_budget);
    FAIL() << "expected a usage error";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("smallest peak reached in dry runs"), std::string::npos) << e.what();
  }
}

TEST(Trainer, BytesByModuleAtThePeakAddUpToThePeak) {
  TrainOptions o = tiny_options({"--steps", "2", "--remat", "all", "--edge-chunks", "2"});
  Trainer t(prepare_run(o));
  t.train();
  int64_t total = 0;
  for (const LiveBlock& b : t.memory().by_label) total += b.bytes;
  EXPECT_EQ(total, t.memory().stats.peak_allocated);
  int64_t grouped = 0;
  for (const auto& [module, bytes] : bytes_by_module(t.memory().by_label)) grouped += bytes;
  EXPECT_EQ(grouped, total);
  EXPECT_EQ(module_of("rollout.1.decoder.edge_block.3.m2g_edge_mlp.silu"), "decoder.m2g_edge_mlp");
  EXPECT_EQ(module_of("processor.7.edge_mlp.linear0"), "processor.7");
  EXPECT_EQ(module_of("encoder.edge_chunk.0.edge_block.12.g2m_edge_embed.linear1"), "encoder.g2m_edge_embed");
  EXPECT_EQ(module_of("batch"), "batch");
  EXPECT_EQ(module_of(""), "(unlabelled)");
}
