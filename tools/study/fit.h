// fit.h: what the scaling and cards studies share: a preset prepared once for
// dry runs (its graphs built once and reused by every configuration), the
// closed-form parameter count, the dry-run peak of one configuration
// (latent, layers, precision, remat, edge chunks, batch), and memory budgets.
//
// A dry run here is exactly gc_train's --device meta run of the same flags
// (tools/train/predict.h, standing for a cuda device): the peaks printed by the
// studies are those gc_train --device meta prints, and tests check it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tools/memory/cards.h"
#include "tools/train/setup.h"

namespace gc::study {

// GraphCast's parameter count (interaction-network processor, one-hidden-layer
// MLPs of width `latent`, LayerNorm on every MLP but the output's), in closed
// form. An MLP in -> L -> out has in*L + L + L*out + out weights and biases, +2*out
// with LayerNorm. Summing the encoder (grid and mesh embeddings from `in`, the
// grid2mesh edge embedding from 4 features, edge MLP 3L, mesh node MLP 2L, grid
// node MLP L), the processor (mesh edge embedding, then per layer an edge MLP
// from 3L and a node MLP from 2L) and the decoder (mesh2grid edge embedding, edge
// MLP 3L, grid node MLP 2L, the published unused mesh node MLP L, output MLP to
// `out` without LayerNorm):
//   P = (7 N + 24) L^2 + (8 N + 57) L + 2 in L + out L + out
// quadratic in the width L, linear in the layers N.
int64_t parameter_formula(int64_t latent, int layers, int64_t in_channels, int64_t out_channels);

// The parameter count of the network gc builds for these options (on meta).
int64_t built_parameter_count(const TrainOptions& options);

// Comma-separated integers, each in [min_value, max_value], at least one, no
// repeats ("32,64,128"). Throws UsageError naming `flag`.
std::vector<int64_t> parse_int_list(const std::string& flag, const std::string& text, int64_t min_value,
                                    int64_t max_value);

// The value after argv[*i] (advancing *i), or UsageError naming the flag and
// `command`'s --help.
std::string flag_value(int argc, char** argv, int* i, const std::string& flag, const std::string& command);

// One integer in [min_value, max_value] (UsageError naming `flag`).
int64_t parse_int_flag(const std::string& flag, const std::string& text, int64_t min_value, int64_t max_value);

// `path` can be written: its folder exists and takes files. Checked before any
// work, so a long study never fails at its end. UsageError naming `flag`.
void check_output_file(const std::string& flag, const std::string& path);

// The memory a configuration may reserve on its device: a card's memory less the
// CUDA context margin (cards.h), or bytes given directly (no margin subtracted:
// the figure is what gc's allocator may reserve).
struct MemoryBudget {
  std::string name;          // "H100-80GB", "card of 24GB", "budget 32GB"
  int64_t device_bytes = 0;  // the card's memory, or the budget given
  int64_t margin = 0;        // kCudaContextMargin for a card, 0 for a bare budget
  int64_t bytes() const { return device_bytes - margin; }
};
MemoryBudget card_budget(const Card& card);
MemoryBudget card_bytes_budget(int64_t card_bytes);  // a card not in the table: its memory, less the margin
MemoryBudget plain_budget(int64_t bytes);
// --card NAME or --budget SIZE, as the user typed it (UsageError naming the flag).
MemoryBudget parse_card_flag(const std::string& name);
MemoryBudget parse_budget_flag(const std::string& flag, const std::string& size);

// gc_train's flags (a preset and overrides) prepared for dry runs: parsed as
// gc_train parses them, on meta standing for cuda, quiet, graphs built once.
// Throws UsageError for flags gc_train would refuse.
RunSetup prepare_dry_runs(const std::vector<std::string>& train_flags);

// One configuration of a prepared preset.
struct Configuration {
  int64_t latent = 0;
  int layers = 0;
  std::string precision = "fp32";
  std::string remat = "none";  // none | all | every:K | auto
  int64_t budget = 0;          // auto: the reserved bytes the step must fit
  int edge_chunks = 1;         // fixed policies; auto tries 1..32 itself
  int batch = 1;
  int accum = 1;
};

// The prepared run with these settings (graphs and data shared, not rebuilt);
// its plan is not resolved.
RunSetup with_configuration(const RunSetup& prepared, const Configuration& c);

struct PeakResult {
  bool planned = false;            // false: --remat auto found no plan within the budget
  int64_t peak_allocated = 0, peak_reserved = 0;
  double flops_per_step = 0;       // linear-layer FLOPs of one step, recomputation included
  double recompute_overhead = 0;   // recomputed FLOPs / FLOPs of the step without remat
  int edge_chunks = 1;
  std::string plan;                // auto: the planner's description
  std::string why_not;             // auto without a plan: the planner's message
};

// The dry run of one configuration (auto: the planner's plan, then its dry run).
// Peaks over the dry run's steps, as gc_train --device meta reports them.
PeakResult dry_run_peak(const RunSetup& prepared, const Configuration& c);

// "12.3 GiB" with two decimals, for tables.
std::string gib(int64_t bytes);

}  // namespace gc::study
