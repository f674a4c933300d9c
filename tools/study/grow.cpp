// gc_study grow: is it cheaper to grow a model than to train the big one from
// scratch? GraphCast's advice (latent 256 x 8 layers first, then 512 x 16),
// scaled down to what trains here in minutes (default 32 x 2 -> 64 x 4: the same
// doubling of width and depth). The small model trains --small-steps, is grown
// (gc_train --grow-from's code: identity layers, function-preserving widening)
// and trains --big-steps more; the big model trains --big-steps from scratch.
// Both are evaluated on the held-out trajectories every --eval-every steps, and
// the study reports the training FLOPs (linear layers, forward and backward, the
// small model's included for the grown run) at which each first reaches the
// target skill (default: the scratch run's final 24 h skill). Table, grow.json,
// grow.png.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "tools/io/atomic_file.h"
#include "tools/io/json.h"
#include "tools/plot/plot.h"
#include "tools/study/blocks_training.h"
#include "tools/study/command.h"
#include "tools/train/grow.h"

namespace gc::study {
namespace {

const char* kGrowUsage = R"(usage: gc_study grow [flags]

Growing a model against training the big one from scratch, on the built-in
shallow-water data: FLOPs to reach a held-out skill. The small model trains
--small-steps, is grown into the big one (as gc_train --grow-from does) and
trains --big-steps; the big model trains --big-steps from scratch. Skill: the
latitude-weighted RMSE at 24 h on the held-out trajectories, relative to
climatology's (mean of h, u, v; lower is better), every --eval-every steps.

  --small LxN           the small model, latent x layers (default 32x2)
  --big LxN             the big model (default 64x4; latent a whole multiple of the small's)
  --processor BLOCK     interaction (default) | gated | attention
  --small-steps N       steps of the small model (default 200)
  --big-steps N         steps of the big model, grown or from scratch (default 400)
  --eval-every N        steps between evaluations (default 100)
  --target R            the skill to reach (default: the scratch run's final skill)
  --seed N              seed of every run (default 0)
  --data-trajectories N training trajectories of the data set (default 64)
  --data-cache DIR      where the data set is cached (default runs/data-cache)
  --out DIR             grow.json, grow.png, the small model's checkpoint (default runs/study-grow)
  --help                this text
)";

struct Point {
  int step = 0;
  double flops = 0, relative = 0;
};

struct Curve {
  std::string name;
  std::vector<Point> points;
  double seconds = 0;
};

// Trains `trainer` to its --steps, evaluating at step 0 (when asked) and every `every` steps.
void train_and_evaluate(Trainer& trainer, int every, double flops_before, bool evaluate_first, Curve* curve,
                        const std::string& what) {
  auto evaluate = [&]() {
    const Point p{trainer.completed_steps(), flops_before + flops_so_far(trainer),
                  lead_skill(trainer.evaluate(), 24).relative};
    curve->points.push_back(p);
    std::fprintf(stderr, "gc_study grow: %s step %d, %.3g GFLOP, RMSE/climatology at 24 h %.4f\n", what.c_str(),
                 p.step, p.flops / 1e9, p.relative);
  };
  if (evaluate_first) evaluate();
  const auto start = std::chrono::steady_clock::now();
  const int steps = trainer.options().steps;
  for (int s = every; s < steps + every; s += every) {
    trainer.train(std::min(s, steps));
    evaluate();
  }
  curve->seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// FLOPs at which the curve first reaches `target` (linear between evaluations), or -1.
double flops_to_reach(const Curve& c, double target) {
  for (size_t i = 0; i < c.points.size(); ++i) {
    if (c.points[i].relative > target) continue;
    if (i == 0) return c.points[0].flops;
    const Point &a = c.points[i - 1], &b = c.points[i];
    const double t = (a.relative - target) / (a.relative - b.relative);
    return a.flops + t * (b.flops - a.flops);
  }
  return -1;
}

json::Value curve_json(const Curve& c) {
  json::Value v = json::Value::object();
  v["name"] = c.name;
  v["train_seconds"] = c.seconds;
  json::Value points = json::Value::array();
  for (const Point& p : c.points) {
    json::Value q = json::Value::object();
    q["step"] = p.step;
    q["flops"] = p.flops;
    q["relative_rmse_24h"] = p.relative;
    points.push_back(q);
  }
  v["points"] = points;
  return v;
}

int run_grow(int argc, char** argv) {
  std::pair<int64_t, int> small = {32, 2}, big = {64, 4};
  std::string processor = "interaction";
  int small_steps = 200, big_steps = 400, every = 100, trajectories = 64;
  int64_t seed = 0;
  double target = -1;
  std::string data_cache = "runs/data-cache", out = "runs/study-grow";
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      std::printf("%s", kGrowUsage);
      return 0;
    }
    if (i + 1 >= argc) throw UsageError(flag + (flag.rfind("--", 0) == 0 ? " needs a value" : ": unknown argument") +
                                        " (see gc_study grow --help)");
    const std::string value = argv[++i];
    if (flag == "--small") small = parse_shape(flag, value);
    else if (flag == "--big") big = parse_shape(flag, value);
    else if (flag == "--processor") {
      try {
        model::processor_from_name(value);
      } catch (const std::invalid_argument& e) {
        throw UsageError(std::string("--processor: ") + e.what());
      }
      processor = value;
    } else if (flag == "--small-steps") small_steps = parse_int_list(flag, value, 1, 1000000).at(0);
    else if (flag == "--big-steps") big_steps = parse_int_list(flag, value, 1, 1000000).at(0);
    else if (flag == "--eval-every") every = parse_int_list(flag, value, 1, 1000000).at(0);
    else if (flag == "--seed") seed = parse_int_list(flag, value, 0, 1 << 30).at(0);
    else if (flag == "--data-trajectories") trajectories = parse_int_list(flag, value, 16, 100000).at(0);
    else if (flag == "--data-cache") data_cache = value;
    else if (flag == "--out") out = value;
    else if (flag == "--target") {
      char* end = nullptr;
      target = std::strtod(value.c_str(), &end);
      if (value.empty() || *end != '\0' || !(target > 0)) throw UsageError("--target takes a positive number, got '" + value + "'");
    } else {
      throw UsageError("unknown flag '" + flag + "' (see gc_study grow --help)");
    }
  }
  if (big.first < small.first || big.second < small.second || big.first % small.first != 0 || big == small)
    throw UsageError("--big " + std::to_string(big.first) + "x" + std::to_string(big.second) + " must be at least as wide "
                     "and deep as --small " + std::to_string(small.first) + "x" + std::to_string(small.second) +
                     ", bigger in one, its latent a whole multiple of the small one's");
  make_directories(out);
  auto options = [&](std::pair<int64_t, int> shape, int steps, const std::string& run_out) {
    return blocks_train_options({"--processor", processor, "--latent", std::to_string(shape.first), "--layers",
                                 std::to_string(shape.second), "--steps", std::to_string(steps), "--warmup",
                                 std::to_string(std::max(1, steps / 10)), "--seed", std::to_string(seed),
                                 "--data-trajectories", std::to_string(trajectories), "--data-cache", data_cache,
                                 "--out", run_out});
  };
  const std::string shape_small = std::to_string(small.first) + "x" + std::to_string(small.second);
  const std::string shape_big = std::to_string(big.first) + "x" + std::to_string(big.second);

  // From scratch.
  Curve scratch{shape_big + " from scratch", {}, 0};
  {
    RunSetup setup = prepare_run(options(big, big_steps, out + "/scratch"));
    Trainer trainer(setup);
    share_cores(trainer);
    train_and_evaluate(trainer, every, 0.0, true, &scratch, scratch.name);
  }
  // Small, then grown.
  Curve grown{shape_small + " grown into " + shape_big, {}, 0};
  double small_flops = 0;
  const std::string small_dir = out + "/small";
  {
    RunSetup setup = prepare_run(options(small, small_steps, small_dir));
    Trainer trainer(setup);
    share_cores(trainer);
    train_and_evaluate(trainer, every, 0.0, true, &grown, shape_small);
    small_flops = flops_so_far(trainer);
    trainer.save_checkpoint(small_dir);
  }
  {
    RunSetup setup = prepare_run(options(big, big_steps, out + "/grown"));
    GrowSource source = load_grow_source(small_dir, setup.options);
    Trainer trainer(setup);
    share_cores(trainer);
    grow_parameters(trainer.net(), source, static_cast<uint64_t>(seed));
    source.weights.clear();
    // Its first evaluation, before any step, repeats the small model's last (function preserved).
    train_and_evaluate(trainer, every, small_flops, true, &grown, "grown " + shape_big);
  }
  if (target <= 0) target = scratch.points.back().relative;
  const double scratch_flops = flops_to_reach(scratch, target), grown_flops = flops_to_reach(grown, target);

  std::printf("gc_study grow: %s block; %s trained %d steps and grown into %s, which trains %d steps; %s trained %d\n"
              "steps from scratch; seed %lld, %d training trajectories, one-step training, batch 1.\n"
              "skill: held-out RMSE at 24 h relative to climatology's (mean of h, u, v); FLOPs: linear layers,\n"
              "forward and backward, the small model's included in the grown run's\n\n",
              processor.c_str(), shape_small.c_str(), small_steps, shape_big.c_str(), big_steps, shape_big.c_str(),
              big_steps, static_cast<long long>(seed), trajectories);
  for (const Curve* c : {&scratch, &grown}) {
    std::printf("%s (%.0f s of training):\n  %8s %12s %10s\n", c->name.c_str(), c->seconds, "step", "GFLOP", "24h rel");
    for (const Point& p : c->points) std::printf("  %8d %12.3f %10.4f\n", p.step, p.flops / 1e9, p.relative);
  }
  auto reached = [](double flops) {
    return flops < 0 ? std::string("not reached") : plot::format_number(flops / 1e9) + " GFLOP";
  };
  std::printf("\ntarget %.4f: from scratch %s, grown %s", target, reached(scratch_flops).c_str(),
              reached(grown_flops).c_str());
  if (scratch_flops > 0 && grown_flops > 0)
    std::printf(" (growing costs %.2fx the FLOPs of training from scratch)", grown_flops / scratch_flops);
  std::printf("\n");

  json::Value report = json::Value::object();
  report["processor"] = processor;
  report["small"] = shape_small;
  report["big"] = shape_big;
  report["small_steps"] = small_steps;
  report["big_steps"] = big_steps;
  report["seed"] = seed;
  report["data_trajectories"] = trajectories;
  report["target_relative_rmse_24h"] = target;
  report["flops_to_target_scratch"] = scratch_flops;
  report["flops_to_target_grown"] = grown_flops;
  report["scratch"] = curve_json(scratch);
  report["grown"] = curve_json(grown);
  write_file_atomic(out + "/grow.json", report.dump(2) + "\n");

  plot::Canvas canvas(900, 560);
  std::vector<plot::Series> series;
  for (size_t i = 0; i < 2; ++i) {
    const Curve& c = i == 0 ? scratch : grown;
    plot::Series s{c.name, plot::category_colour(i), {}, {}};
    for (const Point& p : c.points) {
      s.x.push_back(p.flops / 1e9);
      s.y.push_back(p.relative);
    }
    series.push_back(s);
  }
  const double last = std::max(scratch.points.back().flops, grown.points.back().flops) / 1e9;
  series.push_back({"target", plot::colour::axis, {0.0, last}, {target, target}});
  plot::line_chart(canvas, {0, 0, 900, 560}, series,
                   {"growing " + shape_small + " -> " + shape_big + " vs from scratch (" + processor + ")",
                    "training GFLOP (linear layers)", "held-out RMSE at 24 h / climatology's"}, true);
  canvas.save_png(out + "/grow.png");
  std::printf("wrote %s/grow.json and %s/grow.png\n", out.c_str(), out.c_str());
  return 0;
}

GC_STUDY_COMMAND("grow", "FLOPs to a skill: growing a small model vs training the big one from scratch", run_grow);

}  // namespace
}  // namespace gc::study
