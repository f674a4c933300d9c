// scaling.h: the scaling study (gc_study scaling): a grid of latent widths x
// processor layer counts, and per cell the parameter count (the built model's,
// checked against the closed form of fit.h), the dry-run peak at a target
// resolution for fp32/bf16 x remat none/all/auto (auto planned for the budget),
// the step's linear-layer FLOPs and a modelled step time on the target card,
// and, unless switched off, the skill of a short fixed training on the built-in
// shallow-water data: held-out RMSE at 24 h and 48 h and the measured cpu step time.
//
// The target's graphs are built once and shared by every dry run; the training
// data and its graphs likewise. A cell that fits nothing is reported as such.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tools/io/json.h"
#include "tools/study/fit.h"

namespace gc::study {

inline const char* const kPrecisions[] = {"fp32", "bf16"};
inline const char* const kRematPolicies[] = {"none", "all", "auto"};

struct ScalingOptions {
  std::vector<int64_t> latents = {32, 64, 128, 256, 512};
  std::vector<int64_t> layers = {4, 8, 12, 16};
  std::vector<std::string> target_flags = {"--preset", "graphcast"};  // gc_train flags of the target resolution
  MemoryBudget budget;           // what a cell must fit (peak reserved)
  const Card* card = nullptr;    // the target card when given by --card (modelled times), else null
  bool train = true;
  int train_steps = 200;         // the fixed training budget of every cell
  std::string train_data_cache;  // "" : runs/data-cache
  bool progress = true;          // progress lines on stderr
};

// The skill part's gc_train flags: the demo data and mesh, rollout 1, a short
// warm-up, no evaluation printing (the study evaluates itself).
std::vector<std::string> skill_training_flags(const ScalingOptions& options);

struct SkillResult {
  bool trained = false;
  double step_ms_median = 0;       // measured on the cpu, this machine
  double seconds = 0;              // training and evaluation, wall
  double loss_first = 0, loss_last = 0;
  std::vector<std::string> variables;  // h, u, v
  std::vector<double> rmse_24h, rmse_48h;  // [variable], physical units
};

struct ScalingCell {
  int64_t latent = 0;
  int layers = 0;
  int64_t parameters = 0;          // of the built network
  int64_t parameters_formula = 0;  // parameter_formula(...)
  PeakResult peaks[2][3];          // [kPrecisions][kRematPolicies]
  double dry_run_seconds = 0;
  SkillResult skill;
  bool fits(int precision, int remat, int64_t budget) const {
    const PeakResult& p = peaks[precision][remat];
    return p.planned && p.peak_reserved <= budget;
  }
};

struct ScalingResult {
  ScalingOptions options;
  std::string target;              // "graphcast: 0.25 deg grid (1038240 nodes), mesh 6, 474 in / 227 out"
  int64_t in_channels = 0, out_channels = 0;
  double setup_seconds = 0;        // the target's graphs
  std::vector<ScalingCell> cells;  // latents x layers, latent-major
  const ScalingCell& cell(size_t latent_index, size_t layer_index) const {
    return cells[latent_index * options.layers.size() + layer_index];
  }
};

// Runs the study (dry runs, then the trainings). Throws UsageError for a target
// gc_train would refuse.
ScalingResult run_scaling_study(const ScalingOptions& options);
// The cells' dry runs only, against an already prepared target (tests use this).
ScalingCell scaling_cell(const RunSetup& target, int64_t latent, int layers, int64_t budget);
// The fixed training of one cell from a prepared skill setup.
SkillResult train_cell(const RunSetup& skill_setup, int64_t latent, int layers);

// Modelled step time on the card: the step's linear-layer FLOPs at the card's
// dense peak rate for the precision (fp32 without TF32, or bf16 tensor cores).
// A lower bound (memory traffic and launches are not counted); ms.
double modelled_step_ms(const Card& card, const std::string& precision, double flops);

std::string scaling_table(const ScalingResult& result);
json::Value scaling_json(const ScalingResult& result);
// PREFIX_memory.png (six panels of peaks), PREFIX_cost.png (parameters,
// FLOPs, step times), PREFIX_skill.png (RMSE at 24 h and 48 h; when trained).
// Returns the paths written.
std::vector<std::string> save_scaling_pngs(const ScalingResult& result, const std::string& prefix);

}  // namespace gc::study
