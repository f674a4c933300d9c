// test_study.cpp: the scaling and cards studies (tools/study/) as functions:
// the closed-form parameter count against the built network, a study cell's
// dry-run peaks against direct dry runs of the same gc_train flags, the cards
// answer against the ladder it promises (the chosen plan fits, the step before
// it does not), the largest-model search at its boundary, the skill training of
// one cell, and the heat maps' outlines. Small grids (30 degrees, mesh 1).
#include <gtest/gtest.h>

#include <cmath>

#include "tests/test_util.h"
#include "tools/memory/remat_policy.h"
#include "tools/study/cards_study.h"
#include "tools/study/heat_map.h"
#include "tools/study/scaling.h"
#include "tools/train/predict.h"
#include "tools/usage_error.h"

namespace gc::study {
namespace {

// graphcast-small shrunk to 84 grid nodes and 42 mesh nodes.
const std::vector<std::string> kTinyTarget = {"--preset", "graphcast-small", "--grid", "30", "--mesh", "1"};

const RunSetup& tiny_target() {
  static const RunSetup setup = prepare_dry_runs(kTinyTarget);
  return setup;
}

// The dry run gc_train --device meta makes for these flags, prepared from scratch.
DryRunResult direct_dry_run(std::vector<std::string> flags) {
  flags.insert(flags.end(), {"--device", "meta", "--quiet"});
  TrainOptions o;
  std::string help;
  parse_train_options(flags, &o, &help);
  const RunSetup s = prepare_run(o);
  return dry_run(s, 0, s.plan);
}

std::vector<std::string> tiny_flags(int64_t latent, int layers, const std::string& precision, const std::string& remat) {
  std::vector<std::string> f = kTinyTarget;
  f.insert(f.end(), {"--latent", std::to_string(latent), "--layers", std::to_string(layers), "--precision", precision,
                     "--remat", remat});
  return f;
}

TEST(StudyParameters, FormulaEqualsTheBuiltNetwork) {
  for (int64_t latent : {1, 8, 33, 64, 256}) {
    for (int layers : {1, 2, 5, 16}) {
      for (auto [in, out] : {std::pair<int64_t, int64_t>{9, 3}, {186, 83}, {474, 227}}) {
        TrainOptions o;
        o.latent = latent;
        o.layers = layers;
        o.in_channels = in;
        o.out_channels = out;
        EXPECT_EQ(parameter_formula(latent, layers, in, out), built_parameter_count(o))
            << "latent " << latent << " layers " << layers << " in " << in << " out " << out;
      }
    }
  }
  // Quadratic in the width, linear in the layers: second differences.
  const auto p = [](int64_t l, int n) { return parameter_formula(l, n, 474, 227); };
  EXPECT_EQ(p(64, 3) - 2 * p(64, 2) + p(64, 1), 0);
  EXPECT_EQ(p(66, 4) - 2 * p(65, 4) + p(64, 4), 2 * (7 * 4 + 24));
}

TEST(StudyScaling, CellPeaksEqualDirectDryRuns) {
  const int64_t budget = 40000000;  // 38 MiB: between the policies' peaks below
  const ScalingCell cell = scaling_cell(tiny_target(), 48, 3, budget);
  EXPECT_EQ(cell.parameters, cell.parameters_formula);
  for (int p = 0; p < 2; ++p) {
    for (int r = 0; r < 2; ++r) {
      const DryRunResult direct = direct_dry_run(tiny_flags(48, 3, kPrecisions[p], kRematPolicies[r]));
      ASSERT_TRUE(cell.peaks[p][r].planned);
      EXPECT_EQ(cell.peaks[p][r].peak_reserved, direct.stats.peak_reserved) << kPrecisions[p] << " " << kRematPolicies[r];
      EXPECT_EQ(cell.peaks[p][r].peak_allocated, direct.stats.peak_allocated) << kPrecisions[p] << " " << kRematPolicies[r];
      EXPECT_GT(cell.peaks[p][r].flops_per_step, 0);
    }
    // auto: the plan gc_train --remat auto --mem-budget makes, and its prediction.
    std::vector<std::string> flags = tiny_flags(48, 3, kPrecisions[p], "auto");
    flags.insert(flags.end(), {"--mem-budget", std::to_string(budget)});
    const DryRunResult direct = direct_dry_run(flags);
    const PeakResult& a = cell.peaks[p][2];
    ASSERT_TRUE(a.planned) << a.why_not;
    EXPECT_EQ(a.peak_reserved, direct.stats.peak_reserved);
    EXPECT_LE(a.peak_reserved, budget);
    EXPECT_TRUE(cell.fits(p, 2, budget));
    // Checkpointing every stage recomputes the forward: more FLOPs, never fewer.
    EXPECT_GT(cell.peaks[p][1].flops_per_step, cell.peaks[p][0].flops_per_step);
    EXPECT_GT(cell.peaks[p][1].recompute_overhead, 0.0);
  }
  // bf16 halves the activations.
  EXPECT_LT(cell.peaks[1][0].peak_allocated, cell.peaks[0][0].peak_allocated);
}

TEST(StudyScaling, ACellThatFitsNothingSaysSo) {
  const ScalingCell cell = scaling_cell(tiny_target(), 16, 1, 1 << 20);  // 1 MiB: less than cuBLAS's workspace
  for (int p = 0; p < 2; ++p) {
    EXPECT_FALSE(cell.peaks[p][2].planned);
    EXPECT_NE(cell.peaks[p][2].why_not.find("too small"), std::string::npos) << cell.peaks[p][2].why_not;
    EXPECT_FALSE(cell.fits(p, 0, 1 << 20));
    EXPECT_TRUE(cell.peaks[p][0].planned);  // the fixed policies still report their peaks
  }
  ScalingResult result;
  result.options.latents = {16};
  result.options.layers = {1};
  result.options.budget = plain_budget(1 << 20);
  result.options.train = false;
  result.target = "tiny";
  result.cells = {cell};
  const std::string table = scaling_table(result);
  EXPECT_NE(table.find("no plan"), std::string::npos) << table;
  const json::Value j = scaling_json(result);
  EXPECT_FALSE(j.at("cells").as_array()[0].at("memory").at("bf16").at("auto").at("fits").as_bool());
}

TEST(StudyScaling, SkillTrainingOfOneCell) {
  const std::string cache = test::scratch_folder("study_skill_cache");
  TrainOptions o;
  std::string help;
  parse_train_options({"--preset", "demo", "--mesh", "1", "--steps", "3", "--rollout", "1", "--data-trajectories", "4",
                       "--data-frames", "12", "--quiet", "--no-eval", "--data-cache", cache},
                      &o, &help);
  const RunSetup skill = prepare_run(o);
  const SkillResult r = train_cell(skill, 8, 1);
  ASSERT_TRUE(r.trained);
  ASSERT_EQ(r.variables.size(), 3u);
  ASSERT_EQ(r.rmse_24h.size(), 3u);
  ASSERT_EQ(r.rmse_48h.size(), 3u);
  for (size_t v = 0; v < 3; ++v) {
    EXPECT_TRUE(std::isfinite(r.rmse_24h[v]) && r.rmse_24h[v] > 0);
    EXPECT_TRUE(std::isfinite(r.rmse_48h[v]) && r.rmse_48h[v] > 0);
  }
  EXPECT_GT(r.step_ms_median, 0);
  // Deterministic: the same cell trains to the same figures.
  const SkillResult again = train_cell(skill, 8, 1);
  EXPECT_EQ(again.rmse_48h, r.rmse_48h);
  EXPECT_EQ(again.loss_last, r.loss_last);
}

// A target where activations outweigh the parameters, so that bf16 lowers the
// peak (on the tiny graphs the 512 x 16 model's bf16 weight copies raise it).
const RunSetup& cards_target() {
  static const RunSetup setup =
      prepare_dry_runs({"--preset", "graphcast-small", "--grid", "5", "--mesh", "2", "--latent", "64", "--layers", "4"});
  return setup;
}

// Peak reserved of one ladder step of cards_target().
PeakResult ladder_peak(const LadderStep& s, int64_t budget) {
  Configuration c;
  c.latent = cards_target().options.latent;
  c.layers = cards_target().options.layers;
  c.precision = s.precision;
  c.remat = s.remat;
  c.budget = budget;
  c.batch = s.micro_batch;
  c.accum = s.accum;
  return dry_run_peak(cards_target(), c);
}

TEST(StudyCards, TheChosenPlanFitsAndTheOneBeforeItDoesNot) {
  const std::vector<LadderStep> ladder = plan_ladder(2);
  ASSERT_EQ(ladder.size(), 6u);  // micro-batch 2, then 1 with accumulation 2
  EXPECT_EQ(ladder[0].describe(), "fp32, remat none, batch 2 x accum 1");
  EXPECT_EQ(ladder[5].describe(), "bf16, remat auto, batch 1 x accum 2");
  const int64_t fp32_none = ladder_peak(ladder[0], 0).peak_reserved;
  const int64_t bf16_none = ladder_peak(ladder[1], 0).peak_reserved;
  ASSERT_LT(bf16_none, fp32_none);
  std::vector<int> chosen_steps;
  // Budgets at and just below each fixed plan's peak, and a tight one.
  for (int64_t budget : {fp32_none, fp32_none - 1, bf16_none, bf16_none - 1, bf16_none / 2, bf16_none / 4,
                         int64_t(1) << 20}) {
    const MemoryBudget card = card_bytes_budget(budget + kCudaContextMargin);
    ASSERT_EQ(card.bytes(), budget);
    const CardPlan plan = cheapest_plan(cards_target(), 2, card, nullptr);
    const int first_fitting = plan.fits ? plan.step : static_cast<int>(ladder.size());
    chosen_steps.push_back(plan.fits ? plan.step : -1);
    for (int i = 0; i < first_fitting; ++i) {
      const PeakResult p = ladder_peak(ladder[static_cast<size_t>(i)], budget);
      EXPECT_TRUE(!p.planned || p.peak_reserved > budget) << "budget " << budget << ": " << ladder[i].describe()
                                                          << " fits but was passed over";
    }
    if (!plan.fits) continue;
    EXPECT_LE(plan.peak.peak_reserved, budget);
    const PeakResult direct = ladder_peak(plan.choice, budget);
    EXPECT_EQ(plan.peak.peak_reserved, direct.peak_reserved);
  }
  // The budgets walk down the ladder: fp32, then bf16, then remat, then nothing at 1 MiB.
  EXPECT_EQ(chosen_steps[0], 0);
  EXPECT_EQ(chosen_steps[1], 1);
  EXPECT_EQ(chosen_steps[2], 1);
  EXPECT_GE(chosen_steps[3], 2);
  EXPECT_EQ(chosen_steps.back(), -1);
}

TEST(StudyCards, LargestModelIsAtTheBoundary) {
  // A 2.3 GB card: 300 MB for the allocator, between the smallest peaks of two widths.
  const std::vector<MemoryBudget> budgets = {card_bytes_budget(2300000000)};
  const std::vector<LargestModel> largest = largest_models(tiny_target(), budgets, 4096, 64, false);
  ASSERT_EQ(largest.size(), 1u);
  const LargestModel& m = largest[0];
  const int64_t budget = budgets[0].bytes();
  ASSERT_GT(m.latent, 0);
  ASSERT_FALSE(m.latent_capped);
  auto all_peak = [&](int64_t latent, int layers) {
    Configuration c;
    c.latent = latent;
    c.layers = layers;
    c.precision = "bf16";
    c.remat = "all";
    c.edge_chunks = 4;  // the tiny graphs' encoder and decoder have 4 edge blocks
    return dry_run_peak(tiny_target(), c).peak_reserved;
  };
  const int layers = tiny_target().options.layers;
  EXPECT_LE(all_peak(m.latent, layers), budget);
  EXPECT_GT(all_peak(m.latent + 32, layers), budget);
  // Layers at the preset's latent.
  const int64_t latent = tiny_target().options.latent;
  ASSERT_GT(m.layers, 0);
  ASSERT_FALSE(m.layers_capped);
  EXPECT_GT(all_peak(latent, m.layers + 1), budget);
  EXPECT_LE(all_peak(latent, m.layers), budget);
}

TEST(StudyHeatMap, OutlinedCellsAreFramed) {
  HeatMap m;
  m.title = "t";
  m.rows = {"a", "b"};
  m.columns = {"x", "y"};
  m.values = {1, 2, NAN, 4};
  m.cell_text = {"1", "2", "none", "4"};
  m.outlined = {true, false, false, true};
  const std::string path = test::scratch_folder("heat_map") + "/m.png";
  save_heat_maps(path, "title", {m}, 1, "legend");
  EXPECT_TRUE(test::has_png_signature(path));
  m.outlined.pop_back();
  EXPECT_THROW(save_heat_maps(path, "title", {m}, 1, "legend"), std::invalid_argument);
}

TEST(StudyFlags, ListsAndBudgetsAreChecked) {
  EXPECT_EQ(parse_int_list("--latents", "32,64", 1, 100), (std::vector<int64_t>{32, 64}));
  EXPECT_THROW(parse_int_list("--latents", "32,,64", 1, 100), UsageError);
  EXPECT_THROW(parse_int_list("--latents", "0", 1, 100), UsageError);
  EXPECT_THROW(parse_int_list("--latents", "32,32", 1, 100), UsageError);
  EXPECT_THROW(parse_card_flag("V100"), UsageError);
  EXPECT_EQ(parse_card_flag("h100-80gb").bytes(), find_card("H100-80GB")->memory_bytes - kCudaContextMargin);
  EXPECT_EQ(parse_budget_flag("--budget", "24GB").bytes(), 24000000000);
  EXPECT_THROW(parse_budget_flag("--budget", "lots"), UsageError);
  EXPECT_THROW(card_bytes_budget(kCudaContextMargin), UsageError);
}

}  // namespace
}  // namespace gc::study
