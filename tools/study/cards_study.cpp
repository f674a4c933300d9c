// cards_study.cpp: the cheapest plan per preset and card, and the largest model
// that fits (cards_study.h).
#include "tools/study/cards_study.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>

#include "tools/study/scaling.h"

namespace gc::study {

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The most edge chunks the prepared graphs allow at batch 1.
int most_edge_chunks(const RunSetup& s) {
  const model::GraphCastGeometry& g = *s.geometry;
  return std::min(model::edge_blocks_for(g.g2m.num_edges(), g.g2m.num_receivers),
                  model::edge_blocks_for(g.m2g.num_edges(), g.m2g.num_receivers));
}

// The smallest peak of a size: bf16, every stage checkpointed, the most edge chunks, batch 1.
int64_t smallest_peak(const RunSetup& s, int64_t latent, int layers) {
  Configuration c;
  c.latent = latent;
  c.layers = layers;
  c.precision = "bf16";
  c.remat = "all";
  c.edge_chunks = most_edge_chunks(s);
  return dry_run_peak(s, c).peak_reserved;
}

// For each budget, the largest n in 1..max with peak(n) <= budget (0: none),
// peak non-decreasing in n; peaks are cached across budgets.
std::vector<int64_t> largest_fitting(int64_t max, const std::vector<int64_t>& budgets,
                                     const std::function<int64_t(int64_t)>& peak) {
  std::map<int64_t, int64_t> cache;
  auto peak_of = [&](int64_t n) {
    auto it = cache.find(n);
    if (it != cache.end()) return it->second;
    return cache[n] = peak(n);
  };
  std::vector<int64_t> answers;
  for (int64_t budget : budgets) {
    int64_t lo = 0, hi = max + 1;  // peak(lo) fits (or lo = 0), peak(hi) does not (or hi = max + 1)
    while (hi - lo > 1) {
      const int64_t mid = lo + (hi - lo) / 2;
      if (peak_of(mid) <= budget) lo = mid;
      else hi = mid;
    }
    answers.push_back(lo);
  }
  return answers;
}

}  // namespace

std::string LadderStep::describe() const {
  std::string text = precision + ", remat " + remat;
  if (micro_batch > 1 || accum > 1) text += ", batch " + std::to_string(micro_batch) + " x accum " + std::to_string(accum);
  return text;
}

std::vector<LadderStep> plan_ladder(int batch) {
  std::vector<LadderStep> ladder;
  for (int b = batch; b >= 1; --b) {
    if (batch % b != 0) continue;
    for (const auto& [precision, remat] : {std::pair<const char*, const char*>{"fp32", "none"}, {"bf16", "none"},
                                           {"bf16", "auto"}})
      ladder.push_back(LadderStep{precision, remat, b, batch / b});
  }
  return ladder;
}

CardPlan cheapest_plan(const RunSetup& prepared, int batch, const MemoryBudget& budget, const Card* card) {
  CardPlan result;
  const std::vector<LadderStep> ladder = plan_ladder(batch);
  for (size_t i = 0; i < ladder.size(); ++i) {
    const LadderStep& step = ladder[i];
    Configuration c;
    c.latent = prepared.options.latent;
    c.layers = prepared.options.layers;
    c.precision = step.precision;
    c.remat = step.remat;
    c.budget = budget.bytes();
    c.batch = step.micro_batch;
    c.accum = step.accum;
    const PeakResult peak = dry_run_peak(prepared, c);
    if (!peak.planned || peak.peak_reserved > budget.bytes()) continue;
    result.fits = true;
    result.step = static_cast<int>(i);
    result.choice = step;
    result.peak = peak;
    if (card) result.modelled_step_ms = modelled_step_ms(*card, step.precision, peak.flops_per_step);
    return result;
  }
  return result;
}

std::vector<LargestModel> largest_models(const RunSetup& prepared, const std::vector<MemoryBudget>& budgets,
                                         int64_t max_latent, int max_layers, bool progress) {
  const int64_t latent = prepared.options.latent;
  const int layers = prepared.options.layers;
  std::vector<int64_t> bytes;
  for (const MemoryBudget& b : budgets) bytes.push_back(b.bytes());
  const auto start = std::chrono::steady_clock::now();
  // Latent in steps of 32 (n = latent / 32), then layers.
  auto probe = [&](int64_t probe_latent, int probe_layers) {
    const int64_t peak = smallest_peak(prepared, probe_latent, probe_layers);
    if (progress)
      std::fprintf(stderr, "cards: %s: latent %lld x %d layers: smallest peak %s (%.1f s so far)\n",
                   prepared.options.preset.c_str(), static_cast<long long>(probe_latent), probe_layers,
                   gib(peak).c_str(), seconds_since(start));
    return peak;
  };
  std::vector<int64_t> widths =
      largest_fitting(max_latent / 32, bytes, [&](int64_t n) { return probe(32 * n, layers); });
  std::vector<int64_t> depths =
      largest_fitting(max_layers, bytes, [&](int64_t n) { return probe(latent, static_cast<int>(n)); });
  std::vector<LargestModel> result(budgets.size());
  for (size_t i = 0; i < budgets.size(); ++i) {
    result[i].latent = 32 * widths[i];
    result[i].layers = static_cast<int>(depths[i]);
    result[i].latent_capped = widths[i] == max_latent / 32;
    result[i].layers_capped = depths[i] == max_layers;
  }
  if (progress)
    std::fprintf(stderr, "cards: %s: largest models for %zu cards in %.1f s\n", prepared.options.preset.c_str(),
                 budgets.size(), seconds_since(start));
  return result;
}

std::vector<PresetStudy> run_cards_study(const CardsOptions& options) {
  std::vector<PresetStudy> study;
  for (const std::string& preset : options.presets) {
    const auto start = std::chrono::steady_clock::now();
    std::vector<std::string> flags = {"--preset", preset};
    flags.insert(flags.end(), options.extra_flags.begin(), options.extra_flags.end());
    const RunSetup prepared = prepare_dry_runs(flags);
    PresetStudy p;
    p.preset = preset;
    p.latent = prepared.options.latent;
    p.layers = prepared.options.layers;
    for (const MemoryBudget& budget : options.budgets) {
      PresetOnCard on;
      on.budget = budget;
      on.card = find_card(budget.name);
      on.plan = cheapest_plan(prepared, options.batch, budget, on.card);
      if (options.progress)
        std::fprintf(stderr, "cards: %s on %s: %s (%.1f s so far)\n", preset.c_str(), budget.name.c_str(),
                     on.plan.fits ? on.plan.choice.describe().c_str() : "nothing fits", seconds_since(start));
      p.cards.push_back(std::move(on));
    }
    if (options.largest) {
      const std::vector<LargestModel> largest =
          largest_models(prepared, options.budgets, options.max_latent, options.max_layers, options.progress);
      for (size_t i = 0; i < largest.size(); ++i) {
        LargestModel& m = p.cards[i].largest;
        m = largest[i];
        // The planner's nested schedules can go below every stage checkpointed at
        // the most chunks: a preset that fits is at least as large as itself.
        if (p.cards[i].plan.fits) {
          m.latent = std::max(m.latent, p.latent);
          m.layers = std::max(m.layers, p.layers);
        }
      }
    }
    study.push_back(std::move(p));
  }
  return study;
}

}  // namespace gc::study
