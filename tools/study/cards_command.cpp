// cards_command.cpp: `gc_study cards`, the command line of the cards study
// (cards_study.h).
#include <cstdio>
#include <string>
#include <vector>

#include "tools/io/atomic_file.h"
#include "tools/study/cards_study.h"
#include "tools/study/command.h"
#include "tools/usage_error.h"

namespace gc::study {

namespace {

const char* const kCardsUsage = R"(usage: gc_study cards [flags]

For each preset and card: the cheapest plan that fits the card's memory less
the CUDA context margin (2 GB): the first of fp32 without remat, bf16 without
remat, bf16 with --remat auto (the planner's schedule and edge chunking), and
then the same with the batch split into accumulated micro-batches; its dry-run
peak, recomputed FLOPs and modelled step time; and the largest latent (at the
preset's layers) and layer count (at its latent) that fit at bf16 with
--remat auto.

  --presets LIST       comma-separated presets (default graphcast,graphcast-operational,
                       graphcast-small,demo)
  --cards LIST         comma-separated card names (default all: )";

const char* const kCardsUsageTail = R"()
  --card-bytes SIZE    also a card of this much memory (e.g. 32GB, 96GiB); repeatable
  --batch N            samples per optimizer step (default 1); micro-batches of N, N/2, ..
                       with accumulation are tried
  --grid DEG, --mesh R override every preset's grid spacing / mesh level
  --no-largest         skip the search for the largest model (the slow part)
  --max-latent N       the largest latent searched (default 4096)
  --max-layers N       the most layers searched (default 128)
  --json FILE          the study as JSON
  --png FILE           one picture: plans and largest latents, presets x cards
  --quiet              no progress on stderr
  --help               this text
)";

std::vector<std::string> split_commas(const std::string& flag, const std::string& text) {
  std::vector<std::string> items;
  size_t start = 0;
  while (true) {
    const size_t comma = text.find(',', start);
    items.push_back(text.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (items.back().empty()) throw UsageError(flag + " expects a comma-separated list, got '" + text + "'");
    if (comma == std::string::npos) return items;
    start = comma + 1;
  }
}

int run_cards(int argc, char** argv) {
  CardsOptions options;
  std::vector<MemoryBudget> cards, extra;
  bool cards_given = false;
  std::string json_path, png_path;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    auto value = [&] { return flag_value(argc, argv, &i, flag, "cards"); };
    if (flag == "--help" || flag == "-h") {
      std::printf("%s%s%s", kCardsUsage, card_names().c_str(), kCardsUsageTail);
      return 0;
    }
    if (flag == "--presets") {
      options.presets = split_commas(flag, value());
      for (const std::string& p : options.presets)
        if (p != "graphcast" && p != "graphcast-operational" && p != "graphcast-small" && p != "demo")
          throw UsageError("--presets: unknown preset '" + p + "' (graphcast, graphcast-operational, graphcast-small, demo)");
    } else if (flag == "--cards") {
      cards_given = true;
      for (const std::string& name : split_commas(flag, value()))
        cards.push_back(parse_card_flag(name));
    } else if (flag == "--card-bytes") {
      const MemoryBudget b = parse_budget_flag(flag, value());
      extra.push_back(card_bytes_budget(b.device_bytes));
    } else if (flag == "--batch") options.batch = static_cast<int>(parse_int_flag(flag, value(), 1, 1024));
    else if (flag == "--grid" || flag == "--mesh") {
      options.extra_flags.push_back(flag);
      options.extra_flags.push_back(value());
    } else if (flag == "--no-largest") options.largest = false;
    else if (flag == "--max-latent") options.max_latent = parse_int_flag(flag, value(), 32, 1 << 16);
    else if (flag == "--max-layers") options.max_layers = static_cast<int>(parse_int_flag(flag, value(), 1, 1024));
    else if (flag == "--json") json_path = value();
    else if (flag == "--png") png_path = value();
    else if (flag == "--quiet") options.progress = false;
    else throw UsageError("unknown flag '" + flag + "' (see gc_study cards --help)");
  }
  if (!cards_given)
    for (const Card& card : known_cards()) cards.push_back(card_budget(card));
  cards.insert(cards.end(), extra.begin(), extra.end());
  options.budgets = cards;
  if (!json_path.empty()) check_output_file("--json", json_path);
  if (!png_path.empty()) check_output_file("--png", png_path);

  const std::vector<PresetStudy> study = run_cards_study(options);
  std::printf("%s", cards_table(options, study).c_str());
  if (!json_path.empty()) {
    write_file_atomic(json_path, cards_json(options, study).dump(2) + "\n");
    std::printf("wrote %s\n", json_path.c_str());
  }
  if (!png_path.empty()) {
    save_cards_png(options, study, png_path);
    std::printf("wrote %s\n", png_path.c_str());
  }
  return 0;
}

}  // namespace

GC_STUDY_COMMAND("cards", "presets x cards: the cheapest plan that fits, its peak and cost, the largest model",
                 run_cards);

}  // namespace gc::study
