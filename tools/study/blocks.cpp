// gc_study blocks: skill against processor layers for the three message-passing
// blocks (interaction, gated, attention; docs/BLOCKS.md) on the built-in
// shallow-water data, at equal parameter count: for each layer count the
// interaction network runs at --latent, and the gated and attention blocks at
// the latent (attention: a multiple of its 4 heads) whose total parameter
// count is nearest to it.
// Every run trains the same fixed budget of steps from the same seed and is
// evaluated on the held-out trajectories at 24 and 48 h. Prints a table and a
// verdict, writes blocks.json and blocks.png.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "tools/data/swe_dataset.h"
#include "tools/io/atomic_file.h"
#include "tools/io/json.h"
#include "tools/plot/plot.h"
#include "tools/study/blocks_training.h"
#include "tools/study/command.h"

namespace gc::study {
namespace {

const char* kBlocksUsage = R"(usage: gc_study blocks [flags]

Skill against processor layers for the three message-passing blocks on the
built-in shallow-water data, at equal parameter count: the interaction network
at --latent, the gated and attention blocks at the latent (attention: a
multiple of its 4 heads) whose parameter count is nearest. Each run: --steps
optimizer steps (batch 1, one-step training, AdamW 1e-3 with warm-up and cosine
decay) from --seed, then the latitude-weighted RMSE on the held-out
trajectories at 24 and 48 h.

  --layers LIST         processor layer counts (default 1,2,4,8)
  --latent N            the interaction network's latent width (default 32)
  --processors LIST     among interaction,gated,attention (default all three)
  --steps N             training steps per run (default 400)
  --seed N              seed of every run (default 0)
  --noise-seeds K       also train the interaction network at the fewest layers with K other
                        seeds: the seed-to-seed spread that a difference must beat (default 2)
  --data-trajectories N training trajectories of the data set (default 64; validation and
                        test N/8 each)
  --data-cache DIR      where the data set is cached (default runs/data-cache)
  --out DIR             blocks.json, blocks.png (default runs/study-blocks)
  --help                this text
)";

struct BlockRun {
  std::string processor;
  int layers = 0;
  int64_t latent = 0, params = 0, processor_params = 0;
  double seconds = 0, flops_per_step = 0, loss_last = 0;
  int64_t peak_allocated = 0;
  LeadSkill day1, day2;
};

model::ParameterCounts count_parameters(const std::string& processor, int64_t latent, int layers) {
  model::GraphCastConfig c;
  c.latent = latent;
  c.layers = layers;
  c.mesh_level = 3;
  c.in_channels = 2 * data::kSweChannels + 3;
  c.out_channels = data::kSweChannels;
  c.processor = model::processor_from_name(processor);
  return model::GraphCastNet(c, Device::meta, 0).parameter_counts();
}

// The latent whose model has the parameter count nearest to `target`: any
// width for the gated block, a multiple of the heads for attention.
int64_t matching_latent(const std::string& processor, int layers, int64_t target) {
  const int64_t step = processor == "attention" ? model::kAttentionHeads : 1;
  int64_t best = step;
  double best_gap = 1e300;
  for (int64_t latent = step; latent <= 4096; latent += step) {
    const int64_t count = count_parameters(processor, latent, layers).total();
    const double gap = std::fabs(static_cast<double>(count - target));
    if (gap < best_gap) {
      best_gap = gap;
      best = latent;
    }
    if (count > target) break;
  }
  return best;
}

BlockRun run_one(const std::string& processor, int layers, int64_t latent, int steps, int64_t seed,
                 const std::vector<std::string>& data_flags) {
  std::vector<std::string> flags = {"--processor", processor, "--layers", std::to_string(layers), "--latent",
                                    std::to_string(latent), "--steps", std::to_string(steps), "--warmup",
                                    std::to_string(std::max(1, steps / 10)), "--seed", std::to_string(seed)};
  flags.insert(flags.end(), data_flags.begin(), data_flags.end());
  const TrainOptions options = blocks_train_options(flags);
  RunSetup setup = prepare_run(options);
  Trainer trainer(setup);
  share_cores(trainer);
  const auto start = std::chrono::steady_clock::now();
  trainer.train();
  BlockRun r;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  r.peak_allocated = allocator_for(Device::cpu).stats().peak_allocated;
  const EvalResult eval = trainer.evaluate();
  r.processor = processor;
  r.layers = layers;
  r.latent = latent;
  const model::ParameterCounts pc = trainer.net().parameter_counts();
  r.params = pc.total();
  r.processor_params = pc.processor;
  r.flops_per_step = flops_so_far(trainer) / static_cast<double>(std::max<size_t>(1, trainer.history().size()));
  r.loss_last = trainer.history().empty() ? 0.0 : trainer.history().back().loss;
  r.day1 = lead_skill(eval, 24);
  r.day2 = lead_skill(eval, 48);
  return r;
}

json::Value run_json(const BlockRun& r) {
  json::Value v = json::Value::object();
  v["processor"] = r.processor;
  v["layers"] = r.layers;
  v["latent"] = r.latent;
  v["params"] = r.params;
  v["processor_params"] = r.processor_params;
  v["train_seconds"] = r.seconds;
  v["flops_per_step"] = r.flops_per_step;
  v["loss_last"] = r.loss_last;
  v["peak_allocated"] = r.peak_allocated;
  for (const LeadSkill* s : {&r.day1, &r.day2}) {
    json::Value lead = json::Value::object();
    lead["relative_rmse"] = s->relative;
    json::Value rmse = json::Value::array();
    for (double x : s->rmse) rmse.push_back(x);
    lead["rmse_h_u_v"] = rmse;
    v[std::to_string(s->lead_hours) + "h"] = lead;
  }
  return v;
}

// The fewest layers at which `processor` reaches `target` (relative RMSE at the
// lead), or 0 when none of its runs does.
int fewest_layers_reaching(const std::vector<BlockRun>& runs, const std::string& processor, bool day2, double target) {
  int best = 0;
  for (const BlockRun& r : runs)
    if (r.processor == processor && (day2 ? r.day2 : r.day1).relative <= target && (best == 0 || r.layers < best))
      best = r.layers;
  return best;
}

void draw(const std::vector<BlockRun>& runs, const std::vector<std::string>& processors, const std::string& path,
          const std::string& subtitle) {
  plot::Canvas canvas(1200, 520);
  for (int day = 1; day <= 2; ++day) {
    std::vector<plot::Series> series;
    for (size_t p = 0; p < processors.size(); ++p) {
      plot::Series s{processors[p], plot::category_colour(p), {}, {}};
      for (const BlockRun& r : runs)
        if (r.processor == processors[p]) {
          s.x.push_back(r.layers);
          s.y.push_back((day == 1 ? r.day1 : r.day2).relative);
        }
      series.push_back(s);
    }
    plot::line_chart(canvas, {(day - 1) * 600, 0, 600, 520}, series,
                     {std::to_string(24 * day) + " h: " + subtitle, "processor layers",
                      "held-out RMSE / climatology's (mean of h, u, v)"});
  }
  canvas.save_png(path);
}

int run_blocks(int argc, char** argv) {
  std::vector<int> layer_counts = {1, 2, 4, 8};
  int64_t latent = 32;
  std::vector<std::string> processors = {"interaction", "gated", "attention"};
  int steps = 400;
  int64_t seed = 0;
  int noise_seeds = 2;
  int trajectories = 64;
  std::string data_cache = "runs/data-cache", out = "runs/study-blocks";
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      std::printf("%s", kBlocksUsage);
      return 0;
    }
    if (i + 1 >= argc) throw UsageError(flag + (flag.rfind("--", 0) == 0 ? " needs a value" : ": unknown argument") +
                                        " (see gc_study blocks --help)");
    const std::string value = argv[++i];
    if (flag == "--layers") layer_counts = parse_int_list(flag, value, 1, 64);
    else if (flag == "--latent") latent = parse_int_list(flag, value, 4, 4096).at(0);
    else if (flag == "--steps") steps = parse_int_list(flag, value, 1, 1000000).at(0);
    else if (flag == "--seed") seed = parse_int_list(flag, value, 0, 1 << 30).at(0);
    else if (flag == "--noise-seeds") noise_seeds = parse_int_list(flag, value, 0, 100).at(0);
    else if (flag == "--data-trajectories") trajectories = parse_int_list(flag, value, 16, 100000).at(0);
    else if (flag == "--data-cache") data_cache = value;
    else if (flag == "--out") out = value;
    else if (flag == "--processors") {
      processors.clear();
      std::string item;
      for (size_t start = 0; start <= value.size();) {
        const size_t comma = std::min(value.find(',', start), value.size());
        item = value.substr(start, comma - start);
        try {
          model::processor_from_name(item);
        } catch (const std::invalid_argument& e) {
          throw UsageError(std::string("--processors: ") + e.what());
        }
        processors.push_back(item);
        start = comma + 1;
      }
    } else {
      throw UsageError("unknown flag '" + flag + "' (see gc_study blocks --help)");
    }
  }
  if (latent % 4 != 0 && std::find(processors.begin(), processors.end(), "attention") != processors.end())
    throw UsageError("--latent must be a multiple of 4 (the attention block's heads), got " + std::to_string(latent));
  const std::vector<std::string> data_flags = {"--data-trajectories", std::to_string(trajectories), "--data-cache",
                                               data_cache, "--out", out + "/run"};
  make_directories(out);

  std::vector<BlockRun> runs;
  const size_t total = layer_counts.size() * processors.size();
  for (int layers : layer_counts) {
    const int64_t target = count_parameters("interaction", latent, layers).total();
    for (const std::string& processor : processors) {
      const int64_t width = processor == "interaction" ? latent : matching_latent(processor, layers, target);
      std::fprintf(stderr, "gc_study blocks: [%zu/%zu] %s, %d layers, latent %lld: %d steps...\n", runs.size() + 1,
                   total, processor.c_str(), layers, static_cast<long long>(width), steps);
      runs.push_back(run_one(processor, layers, width, steps, seed, data_flags));
      const BlockRun& r = runs.back();
      std::fprintf(stderr, "gc_study blocks:   %lld parameters, %.1f s, RMSE/climatology %.4f (24 h) %.4f (48 h)\n",
                   static_cast<long long>(r.params), r.seconds, r.day1.relative, r.day2.relative);
    }
  }

  // The seed-to-seed spread of the interaction network at the fewest layers.
  const int fewest = *std::min_element(layer_counts.begin(), layer_counts.end());
  std::vector<BlockRun> noise;
  for (const BlockRun& r : runs)
    if (r.processor == "interaction" && r.layers == fewest) noise.push_back(r);
  for (int k = 1; k <= noise_seeds && !noise.empty(); ++k) {
    std::fprintf(stderr, "gc_study blocks: [noise %d/%d] interaction, %d layers, seed %lld...\n", k, noise_seeds,
                 fewest, static_cast<long long>(seed + k));
    noise.push_back(run_one("interaction", fewest, latent, steps, seed + k, data_flags));
  }
  double spread[2] = {0, 0};
  for (int day = 0; day < 2 && noise.size() > 1; ++day) {
    double lo = 1e300, hi = -1e300;
    for (const BlockRun& r : noise) {
      const double v = (day == 0 ? r.day1 : r.day2).relative;
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
    spread[day] = hi - lo;
  }

  std::printf("gc_study blocks: %d steps per run, seed %lld, %d training trajectories; equal parameter count\n"
              "(the interaction network at latent %lld; the others at the latent nearest its count)\n\n",
              steps, static_cast<long long>(seed), trajectories, static_cast<long long>(latent));
  std::printf("%-12s %6s %6s %9s %8s %10s | %8s %8s %8s %8s | %8s %8s %8s %8s\n", "block", "layers", "latent",
              "params", "train s", "MFLOP/step", "24h rel", "h", "u", "v", "48h rel", "h", "u", "v");
  for (const BlockRun& r : runs)
    std::printf("%-12s %6d %6lld %9lld %8.1f %10.1f | %8.4f %8.3f %8.4f %8.4f | %8.4f %8.3f %8.4f %8.4f\n",
                r.processor.c_str(), r.layers, static_cast<long long>(r.latent), static_cast<long long>(r.params),
                r.seconds, r.flops_per_step / 1e6, r.day1.relative, r.day1.rmse[0], r.day1.rmse[1], r.day1.rmse[2],
                r.day2.relative, r.day2.rmse[0], r.day2.rmse[1], r.day2.rmse[2]);

  // The verdict: the interaction network's best skill over the layer counts run
  // is the target; the fewest layers at which each block reaches it, and whether
  // a block's margin beats the seed-to-seed spread.
  json::Value verdicts = json::Value::array();
  std::printf("\n");
  if (noise.size() > 1)
    std::printf("seed-to-seed spread (interaction, %d layers, %zu seeds): %.4f at 24 h, %.4f at 48 h\n", fewest,
                noise.size(), spread[0], spread[1]);
  for (int day = 1; day <= 2; ++day) {
    double target = 1e300;
    int target_layers = 0;
    for (const BlockRun& r : runs)
      if (r.processor == "interaction" && (day == 1 ? r.day1 : r.day2).relative < target) {
        target = (day == 1 ? r.day1 : r.day2).relative;
        target_layers = r.layers;
      }
    if (target_layers == 0) break;  // no interaction runs to compare with
    std::string line = "at " + std::to_string(24 * day) + " h, the interaction network's best skill (" +
                       plot::format_number(target) + ", " + std::to_string(target_layers) + " layers) is reached by";
    std::vector<std::string> fewer;
    for (const std::string& p : processors) {
      const int n = fewest_layers_reaching(runs, p, day == 2, target);
      double best = 1e300;
      for (const BlockRun& r : runs)
        if (r.processor == p) best = std::min(best, (day == 1 ? r.day1 : r.day2).relative);
      const double margin = target - best;
      const bool beyond_noise = noise.size() > 1 && margin > spread[day - 1];
      line += " " + p + (n ? " with " + std::to_string(n) + " layers" : std::string(" with no layer count run")) + ";";
      if (p != "interaction" && n > 0 && n < target_layers) fewer.push_back(p + (beyond_noise ? "" : " (within the seed spread)"));
      json::Value v = json::Value::object();
      v["lead_hours"] = 24 * day;
      v["processor"] = p;
      v["target_relative_rmse"] = target;
      v["target_layers"] = target_layers;
      v["fewest_layers"] = n;
      v["best_relative_rmse"] = best;
      v["margin_beyond_seed_spread"] = beyond_noise;
      verdicts.push_back(v);
    }
    std::printf("%s\n", line.c_str());
    std::string verdict = "  fewer layers than the interaction network's " + std::to_string(target_layers) + ": ";
    if (fewer.empty()) verdict += "no block";
    for (size_t i = 0; i < fewer.size(); ++i) verdict += (i ? ", " : "") + fewer[i];
    std::printf("%s\n", verdict.c_str());
  }
  std::printf("(one seed per cell and a short budget: read a difference as real only where it beats the seed spread)\n");

  json::Value report = json::Value::object();
  report["steps"] = steps;
  report["seed"] = seed;
  report["data_trajectories"] = trajectories;
  report["matched"] = "parameter count";
  report["base_latent"] = latent;
  json::Value list = json::Value::array();
  for (const BlockRun& r : runs) list.push_back(run_json(r));
  report["runs"] = list;
  report["verdicts"] = verdicts;
  report["seed_spread_relative_rmse"] = json::Value::array();
  report["seed_spread_relative_rmse"].push_back(spread[0]);
  report["seed_spread_relative_rmse"].push_back(spread[1]);
  write_file_atomic(out + "/blocks.json", report.dump(2) + "\n");
  draw(runs, processors, out + "/blocks.png",
       std::to_string(steps) + " steps, equal parameters");
  std::printf("\nwrote %s/blocks.json and %s/blocks.png\n", out.c_str(), out.c_str());
  return 0;
}

GC_STUDY_COMMAND("blocks", "skill against layers for the interaction, gated and attention blocks", run_blocks);

}  // namespace
}  // namespace gc::study
