// cards_study.h: which card fits (gc_study cards). For each preset and card,
// the cheapest plan that fits the card's memory less the CUDA context margin,
// and the largest model that fits at bf16 with --remat auto.
//
// "Cheapest" is the first plan of a fixed ladder of concessions that fits
// (peak reserved of its dry run <= the budget):
//   for each micro-batch b = batch, batch/2, ..., 1 (accumulating batch/b of them):
//     fp32 without remat, bf16 without remat, bf16 with --remat auto
// (auto: the planner's fastest schedule and edge chunking for the budget). So the
// step before the chosen one in the ladder never fits; tests check it.
//
// "Largest": at the preset's layer count, the widest latent (a multiple of 32,
// up to 4096 by default), and at the preset's latent, the most layers (up to
// 128), for which bf16 with every stage checkpointed and the most edge chunks
// fits: the smallest peak gc reaches for a size, so --remat auto has at least
// that plan (one dry run a size, shared by all cards). Peaks are nearly, not
// strictly, monotone in the size; the answer fits and the next size does not.
// The planner's nested schedules can do better (a lower bound for --remat auto);
// a preset whose cheapest plan fits counts as fitting at its own size.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tools/io/json.h"
#include "tools/study/fit.h"

namespace gc::study {

struct LadderStep {
  std::string precision, remat;
  int micro_batch = 1, accum = 1;
  std::string describe() const;  // "bf16, remat auto, batch 2 x accum 2"
};
// The ladder for an effective batch, cheapest first.
std::vector<LadderStep> plan_ladder(int batch);

struct CardPlan {
  bool fits = false;
  int step = -1;                // index into plan_ladder(batch); -1 when nothing fits
  LadderStep choice;
  PeakResult peak;              // of the chosen plan's dry run
  double modelled_step_ms = 0;  // FLOPs at the card's dense peak for the precision (card known)
};

struct LargestModel {
  int64_t latent = 0;           // at the preset's layers; 0: not even 32 fits
  int layers = 0;               // at the preset's latent; 0: not even 1 fits
  bool latent_capped = false, layers_capped = false;  // the search's upper end fits
};

struct PresetOnCard {
  MemoryBudget budget;
  const Card* card = nullptr;   // null for --card-bytes
  CardPlan plan;
  LargestModel largest;
};

struct PresetStudy {
  std::string preset;
  int64_t latent = 0;
  int layers = 0;
  std::vector<PresetOnCard> cards;
};

struct CardsOptions {
  std::vector<std::string> presets = {"graphcast", "graphcast-operational", "graphcast-small", "demo"};
  std::vector<MemoryBudget> budgets;       // the cards (card_budget / card_bytes_budget)
  int batch = 1;                           // effective batch per optimizer step
  std::vector<std::string> extra_flags;    // gc_train flags added to every preset (tests: --grid, --mesh)
  int64_t max_latent = 4096;
  int max_layers = 128;
  bool largest = true;                     // search the largest model (the slow part)
  bool progress = true;
};

// The cheapest plan of a prepared preset that fits `budget`.
CardPlan cheapest_plan(const RunSetup& prepared, int batch, const MemoryBudget& budget, const Card* card);

// The largest latent / layers of a prepared preset fitting each budget (bf16, remat auto).
std::vector<LargestModel> largest_models(const RunSetup& prepared, const std::vector<MemoryBudget>& budgets,
                                         int64_t max_latent, int max_layers, bool progress);

std::vector<PresetStudy> run_cards_study(const CardsOptions& options);
std::string cards_table(const CardsOptions& options, const std::vector<PresetStudy>& study);
json::Value cards_json(const CardsOptions& options, const std::vector<PresetStudy>& study);
void save_cards_png(const CardsOptions& options, const std::vector<PresetStudy>& study, const std::string& path);

}  // namespace gc::study
