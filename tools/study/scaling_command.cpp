// scaling_command.cpp: `gc_study scaling`, the command line of the scaling study
// (scaling.h).
#include <cstdio>
#include <string>
#include <vector>

#include "tools/io/atomic_file.h"
#include "tools/study/command.h"
#include "tools/study/scaling.h"
#include "tools/usage_error.h"

namespace gc::study {

namespace {

const char* const kScalingUsage = R"(usage: gc_study scaling [flags]

For each latent width x processor layer count: the parameters (the built
network's, checked against the closed form), the peak reserved bytes of a
dry-run training step at the target resolution for fp32/bf16 x remat
none/all/auto (auto planned for the budget), the step's FLOPs and a modelled
step time on the card, and the skill of a short fixed training on the built-in
shallow-water data (held-out RMSE at 24 h and 48 h, measured cpu step time).
Prints a table; cells that fit the budget are marked, cells that fit nothing
say so.

grid
  --latents LIST       latent widths (default 32,64,128,256,512)
  --layers LIST        processor layer counts (default 4,8,12,16)
target (the dry runs)
  --preset NAME        graphcast (default) | graphcast-operational | graphcast-small | demo
  --grid DEG           override the preset's grid spacing
  --mesh R             override the preset's mesh level
  --card NAME          the budget is this card's memory less the CUDA context margin
                       (2 GB); default H100-80GB. Cards: )";

const char* const kScalingUsageTail = R"(
  --budget SIZE        a budget in bytes for gc's allocator instead (24GB, 40GiB; no margin)
skill
  --train-steps N      steps of the fixed training of every cell (default 200): demo preset
                       (T21 32 x 64 grid, mesh 3), rollout 1, fp32, batch 1, on this cpu
  --no-train           skip the training (memory and FLOPs only)
  --data-cache DIR     where the built-in data set is cached (default runs/data-cache)
output
  --json FILE          the whole study as JSON
  --png-prefix P       heat maps P_memory.png, P_cost.png, P_skill.png
  --quiet              no progress on stderr
  --help               this text
)";

int run_scaling(int argc, char** argv) {
  ScalingOptions options;
  options.budget = parse_card_flag("H100-80GB");
  options.card = find_card("H100-80GB");
  std::string preset = "graphcast", grid, mesh, json_path, png_prefix;
  bool card_given = false, budget_given = false;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    auto value = [&] { return flag_value(argc, argv, &i, flag, "scaling"); };
    if (flag == "--help" || flag == "-h") {
      std::printf("%s%s%s", kScalingUsage, card_names().c_str(), kScalingUsageTail);
      return 0;
    }
    if (flag == "--latents") options.latents = parse_int_list(flag, value(), 1, 1 << 20);
    else if (flag == "--layers") options.layers = parse_int_list(flag, value(), 1, 1024);
    else if (flag == "--preset") preset = value();
    else if (flag == "--grid") grid = value();
    else if (flag == "--mesh") mesh = value();
    else if (flag == "--card") {
      options.budget = parse_card_flag(value());
      options.card = find_card(options.budget.name);
      card_given = true;
    } else if (flag == "--budget") {
      options.budget = parse_budget_flag(flag, value());
      options.card = nullptr;
      budget_given = true;
    } else if (flag == "--train-steps") {
      options.train_steps = static_cast<int>(parse_int_flag(flag, value(), 1, 1000000));
    } else if (flag == "--no-train") options.train = false;
    else if (flag == "--data-cache") options.train_data_cache = value();
    else if (flag == "--json") json_path = value();
    else if (flag == "--png-prefix") png_prefix = value();
    else if (flag == "--quiet") options.progress = false;
    else throw UsageError("unknown flag '" + flag + "' (see gc_study scaling --help)");
  }
  if (card_given && budget_given) throw UsageError("--card and --budget both set the budget: give one");
  if (!json_path.empty()) check_output_file("--json", json_path);
  if (!png_prefix.empty()) check_output_file("--png-prefix", png_prefix + "_memory.png");
  options.target_flags = {"--preset", preset};
  if (!grid.empty()) options.target_flags.insert(options.target_flags.end(), {"--grid", grid});
  if (!mesh.empty()) options.target_flags.insert(options.target_flags.end(), {"--mesh", mesh});

  const ScalingResult result = run_scaling_study(options);
  std::printf("%s", scaling_table(result).c_str());
  if (!json_path.empty()) {
    write_file_atomic(json_path, scaling_json(result).dump(2) + "\n");
    std::printf("wrote %s\n", json_path.c_str());
  }
  if (!png_prefix.empty())
    for (const std::string& path : save_scaling_pngs(result, png_prefix)) std::printf("wrote %s\n", path.c_str());
  return 0;
}

}  // namespace

GC_STUDY_COMMAND("scaling", "latent x layers: parameters, dry-run peaks, FLOPs and time, skill on the built-in data",
                 run_scaling);

}  // namespace gc::study
