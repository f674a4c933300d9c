// scaling.cpp: the scaling study's cells: dry runs at the target, the fixed
// training on the built-in data (scaling.h).
#include "tools/study/scaling.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "tools/memory/remat_policy.h"
#include "tools/train/cpu_share.h"
#include "tools/train/trainer.h"

namespace gc::study {

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::string describe_target(const RunSetup& s) {
  const TrainOptions& o = s.options;
  char grid[32] = "the data's";
  if (o.grid_deg > 0) std::snprintf(grid, sizeof grid, "%g deg", o.grid_deg);
  char text[256];
  std::snprintf(text, sizeof text, "%s: %s grid (%lld nodes), mesh %d (%lld nodes), %lld in / %lld out",
                o.preset.c_str(), grid, static_cast<long long>(s.geometry->num_grid_nodes()), o.mesh_level,
                static_cast<long long>(s.geometry->num_mesh_nodes()), static_cast<long long>(o.in_channels),
                static_cast<long long>(o.out_channels));
  return text;
}

}  // namespace

std::vector<std::string> skill_training_flags(const ScalingOptions& options) {
  std::vector<std::string> flags = {"--preset", "demo", "--steps", std::to_string(options.train_steps),
                                    "--rollout", "1", "--warmup", std::to_string(std::max(1, options.train_steps / 10)),
                                    "--quiet", "--no-eval"};
  if (!options.train_data_cache.empty()) {
    flags.push_back("--data-cache");
    flags.push_back(options.train_data_cache);
  }
  return flags;
}

double modelled_step_ms(const Card& card, const std::string& precision, double flops) {
  const double rate = precision == "fp32" ? card.fp32_flops : card.bf16_flops;
  return flops / rate * 1e3;
}

ScalingCell scaling_cell(const RunSetup& target, int64_t latent, int layers, int64_t budget) {
  const auto start = std::chrono::steady_clock::now();
  ScalingCell cell;
  cell.latent = latent;
  cell.layers = layers;
  TrainOptions o = target.options;
  o.latent = latent;
  o.layers = layers;
  cell.parameters = built_parameter_count(o);
  cell.parameters_formula = parameter_formula(latent, layers, o.in_channels, o.out_channels);
  for (int p = 0; p < 2; ++p) {
    for (int r = 0; r < 3; ++r) {
      Configuration c;
      c.latent = latent;
      c.layers = layers;
      c.precision = kPrecisions[p];
      c.remat = kRematPolicies[r];
      c.budget = budget;
      cell.peaks[p][r] = dry_run_peak(target, c);
    }
    // Recomputation of the fixed policies, against the same precision without remat.
    const double base = cell.peaks[p][0].flops_per_step;
    if (base > 0) cell.peaks[p][1].recompute_overhead = cell.peaks[p][1].flops_per_step / base - 1.0;
  }
  cell.dry_run_seconds = seconds_since(start);
  return cell;
}

SkillResult train_cell(const RunSetup& skill_setup, int64_t latent, int layers) {
  const auto start = std::chrono::steady_clock::now();
  Configuration c;
  c.latent = latent;
  c.layers = layers;
  RunSetup s = with_configuration(skill_setup, c);
  s.plan = fixed_remat_plan("none", layers, 1);
  SkillResult result;
  Trainer trainer(std::move(s));
  // OpenMP's spinning threads beside other busy processes cost many times the step.
  trainer.on_step([](const StepRecord& r) { share_cores_every_few_steps(r.step); });
  trainer.train();
  share_cores_every_few_steps(0);
  const EvalResult eval = trainer.evaluate();
  std::vector<double> ms;
  for (const StepRecord& r : trainer.history()) ms.push_back(r.ms);
  result.trained = true;
  result.step_ms_median = median(ms);
  result.loss_first = trainer.history().front().loss;
  result.loss_last = trainer.history().back().loss;
  result.variables = eval.variables;
  for (size_t v = 0; v < eval.variables.size(); ++v) {
    for (size_t k = 0; k < eval.lead_hours.size(); ++k) {
      if (eval.lead_hours[k] == 24) result.rmse_24h.push_back(eval.rmse_model[v][k]);
      if (eval.lead_hours[k] == 48) result.rmse_48h.push_back(eval.rmse_model[v][k]);
    }
  }
  if (result.rmse_24h.size() != eval.variables.size() || result.rmse_48h.size() != eval.variables.size())
    throw std::runtime_error("the evaluation has no 24 h or 48 h lead (the data's trajectories are too short)");
  result.seconds = seconds_since(start);
  return result;
}

ScalingResult run_scaling_study(const ScalingOptions& options) {
  ScalingResult result;
  result.options = options;
  const auto start = std::chrono::steady_clock::now();
  if (options.progress) std::fprintf(stderr, "scaling: building the target's graphs...\n");
  const RunSetup target = prepare_dry_runs(options.target_flags);
  result.setup_seconds = seconds_since(start);
  result.target = describe_target(target);
  result.in_channels = target.options.in_channels;
  result.out_channels = target.options.out_channels;
  if (options.progress)
    std::fprintf(stderr, "scaling: %s; graphs in %.1f s; budget: %s (%lld B for the allocator)\n", result.target.c_str(),
                 result.setup_seconds, options.budget.name.c_str(), static_cast<long long>(options.budget.bytes()));
  const size_t total = options.latents.size() * options.layers.size();
  for (int64_t latent : options.latents) {
    for (int64_t layers : options.layers) {
      ScalingCell cell = scaling_cell(target, latent, static_cast<int>(layers), options.budget.bytes());
      if (options.progress)
        std::fprintf(stderr, "scaling: [%zu/%zu] latent %lld x %lld layers: %lld parameters, 6 dry runs in %.1f s\n",
                     result.cells.size() + 1, total, static_cast<long long>(latent), static_cast<long long>(layers),
                     static_cast<long long>(cell.parameters), cell.dry_run_seconds);
      result.cells.push_back(std::move(cell));
    }
  }
  if (!options.train) return result;
  if (options.progress)
    std::fprintf(stderr, "scaling: skill: %d steps per cell on the built-in shallow-water data...\n", options.train_steps);
  TrainOptions skill_options;
  std::string help;
  parse_train_options(skill_training_flags(options), &skill_options, &help);
  const RunSetup skill = prepare_run(skill_options);
  size_t done = 0;
  for (ScalingCell& cell : result.cells) {
    cell.skill = train_cell(skill, cell.latent, cell.layers);
    ++done;
    if (options.progress)
      std::fprintf(stderr, "scaling: [%zu/%zu] latent %lld x %d layers trained: %.1f ms/step, loss %.4f -> %.4f, "
                   "h RMSE %.2f m (24 h) %.2f m (48 h), %.1f s\n",
                   done, total, static_cast<long long>(cell.latent), cell.layers, cell.skill.step_ms_median,
                   cell.skill.loss_first, cell.skill.loss_last, cell.skill.rmse_24h[0], cell.skill.rmse_48h[0],
                   cell.skill.seconds);
  }
  return result;
}

}  // namespace gc::study
