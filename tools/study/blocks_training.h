// blocks_training.h: what gc_study blocks and gc_study grow share: short
// trainings of the demo model on the built-in shallow-water data, in this
// process, and the held-out skill they reach.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tools/train/trainer.h"

namespace gc::study {

// The settings every training of these studies shares (the demo preset, one-step
// training, a short warm-up), then `extra` flags: gc_train's own parser, so a
// bad value is the UsageError gc_train would give.
TrainOptions blocks_train_options(const std::vector<std::string>& extra);

// Held-out skill at one lead: the latitude-weighted RMSE of each variable
// (h, u, v), and their mean relative to climatology's RMSE (1 = climatology,
// lower is better): one number across variables of different units.
struct LeadSkill {
  int lead_hours = 0;
  std::vector<double> rmse;  // [variable]
  double relative = 0;
};
LeadSkill lead_skill(const EvalResult& eval, int lead_hours);

// On a shared machine, the cores other processes leave (unless OMP_NUM_THREADS
// says how many), as gc_train does: now and every 10 steps of `trainer`.
void share_cores(Trainer& trainer);

// Linear-layer FLOPs (forward and backward, 2 per multiply-add) of the steps run so far.
double flops_so_far(const Trainer& trainer);

// "1,2,4" -> {1, 2, 4}; UsageError naming the flag otherwise.
std::vector<int> parse_int_list(const std::string& flag, const std::string& text, int min_value, int max_value);
// "32x2" -> {32, 2}.
std::pair<int64_t, int> parse_shape(const std::string& flag, const std::string& text);

}  // namespace gc::study
