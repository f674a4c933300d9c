// cards_output.cpp: the cards study as a text table, JSON and one picture.
#include <cmath>
#include <cstdio>

#include "tools/study/cards_study.h"
#include "tools/study/heat_map.h"

namespace gc::study {

namespace {

std::string plan_text(const CardPlan& plan) {
  if (!plan.fits) return "nothing fits";
  std::string text = plan.choice.describe();
  if (plan.choice.remat == "auto")
    text += ", " + std::to_string(plan.peak.edge_chunks) + (plan.peak.edge_chunks == 1 ? " edge chunk" : " edge chunks");
  return text;
}

std::string largest_text(int64_t value, bool capped) {
  if (value == 0) return "none";
  return (capped ? ">= " : "") + std::to_string(value);
}

}  // namespace

std::string cards_table(const CardsOptions& options, const std::vector<PresetStudy>& study) {
  std::string out;
  out += "cards study: the cheapest plan that fits each card, the first of (per micro-batch, batch " +
         std::to_string(options.batch) + " first, then halved with accumulation): fp32 no remat, bf16 no remat,\n"
         "bf16 --remat auto (the planner's fastest schedule and edge chunking)\n";
  out += "budget: the card's memory less the CUDA context margin of " + std::to_string(kCudaContextMargin) +
         " B (context, cuBLAS handle, driver); peak: reserved bytes of the chosen plan's dry run (standing for cuda)\n";
  out += "model ms: the step's linear-layer FLOPs at the card's dense peak for the precision (a lower bound)\n";
  if (options.largest)
    out += "largest: latent (steps of 32, at most " + std::to_string(options.max_latent) +
           ") at the preset's layers and layers (at most " + std::to_string(options.max_layers) +
           ") at its latent for which bf16 with every stage\n"
           "         checkpointed at the most edge chunks fits (or the preset itself, when its plan fits): a lower bound "
           "for --remat auto\n";
  out += "\n";
  char line[512];
  std::snprintf(line, sizeof line, "%-22s %-14s %10s  %-46s %10s %9s %9s", "preset", "card", "budget", "cheapest plan",
                "peak", "recompute", "model ms");
  out += line;
  if (options.largest) out += "  largest latent   largest layers";
  out += "\n";
  for (const PresetStudy& p : study) {
    for (const PresetOnCard& on : p.cards) {
      const CardPlan& plan = on.plan;
      const std::string model_ms = (plan.fits && on.card) ? [&] {
        char t[32];
        std::snprintf(t, sizeof t, "%.1f", plan.modelled_step_ms);
        return std::string(t);
      }() : std::string("-");
      char recompute[32] = "-";
      if (plan.fits) std::snprintf(recompute, sizeof recompute, "+%.1f%%", 100.0 * plan.peak.recompute_overhead);
      std::snprintf(line, sizeof line, "%-22s %-14s %10s  %-46s %10s %9s %9s", p.preset.c_str(), on.budget.name.c_str(),
                    gib(on.budget.bytes()).c_str(), plan_text(plan).c_str(),
                    plan.fits ? gib(plan.peak.peak_reserved).c_str() : "-", recompute, model_ms.c_str());
      out += line;
      if (options.largest) {
        std::snprintf(line, sizeof line, "  %6s x %-6d %6d x %-6s", largest_text(on.largest.latent, on.largest.latent_capped).c_str(),
                      p.layers, static_cast<int>(p.latent), largest_text(on.largest.layers, on.largest.layers_capped).c_str());
        out += line;
      }
      out += "\n";
    }
  }
  return out;
}

json::Value cards_json(const CardsOptions& options, const std::vector<PresetStudy>& study) {
  json::Value root = json::Value::object();
  root["cuda_context_margin_bytes"] = kCudaContextMargin;
  root["batch"] = options.batch;
  root["ladder"] = json::Value::array();
  for (const LadderStep& s : plan_ladder(options.batch)) root["ladder"].push_back(s.describe());
  root["presets"] = json::Value::array();
  for (const PresetStudy& p : study) {
    json::Value jp = json::Value::object();
    jp["preset"] = p.preset;
    jp["latent"] = p.latent;
    jp["layers"] = p.layers;
    jp["cards"] = json::Value::array();
    for (const PresetOnCard& on : p.cards) {
      json::Value c = json::Value::object();
      c["card"] = on.budget.name;
      c["card_bytes"] = on.budget.device_bytes;
      c["budget_bytes"] = on.budget.bytes();
      json::Value& plan = c["plan"];
      plan["fits"] = on.plan.fits;
      if (on.plan.fits) {
        plan["ladder_step"] = on.plan.step;
        plan["precision"] = on.plan.choice.precision;
        plan["remat"] = on.plan.choice.remat;
        plan["micro_batch"] = on.plan.choice.micro_batch;
        plan["accum"] = on.plan.choice.accum;
        plan["edge_chunks"] = on.plan.peak.edge_chunks;
        if (!on.plan.peak.plan.empty()) plan["schedule"] = on.plan.peak.plan;
        plan["peak_allocated"] = on.plan.peak.peak_allocated;
        plan["peak_reserved"] = on.plan.peak.peak_reserved;
        plan["recompute_overhead"] = on.plan.peak.recompute_overhead;
        plan["flops_per_step"] = on.plan.peak.flops_per_step;
        if (on.card) plan["modelled_step_ms"] = on.plan.modelled_step_ms;
      }
      if (options.largest) {
        c["largest"]["latent_at_preset_layers"] = on.largest.latent;
        c["largest"]["latent_capped"] = on.largest.latent_capped;
        c["largest"]["layers_at_preset_latent"] = on.largest.layers;
        c["largest"]["layers_capped"] = on.largest.layers_capped;
      }
      jp["cards"].push_back(std::move(c));
    }
    root["presets"].push_back(std::move(jp));
  }
  return root;
}

void save_cards_png(const CardsOptions& options, const std::vector<PresetStudy>& study, const std::string& path) {
  HeatMap fraction, width;
  fraction.title = "cheapest plan that fits; colour: peak / budget";
  width.title = "largest latent at the preset's layers, bf16 (a lower bound for remat auto)";
  for (HeatMap* m : {&fraction, &width}) {
    m->row_label = "preset";
    m->column_label = "card (budget = memory - CUDA context margin)";
    for (const PresetStudy& p : study) m->rows.push_back(p.preset);
    for (const MemoryBudget& b : options.budgets) m->columns.push_back(b.name);
  }
  for (const PresetStudy& p : study) {
    for (const PresetOnCard& on : p.cards) {
      const CardPlan& plan = on.plan;
      std::string text = "nothing fits";
      if (plan.fits) {
        text = plan.choice.precision + " " + plan.choice.remat;
        if (plan.choice.remat == "auto") text += " " + std::to_string(plan.peak.edge_chunks) + "ch";
        if (plan.choice.accum > 1) text += " a" + std::to_string(plan.choice.accum);
      }
      fraction.values.push_back(plan.fits ? static_cast<double>(plan.peak.peak_reserved) / on.budget.bytes() : NAN);
      fraction.cell_text.push_back(text);
      fraction.outlined.push_back(plan.fits);
      width.values.push_back(options.largest && on.largest.latent > 0 ? static_cast<double>(on.largest.latent) : NAN);
      width.cell_text.push_back(options.largest ? largest_text(on.largest.latent, on.largest.latent_capped) : "-");
      width.outlined.push_back(options.largest && on.largest.latent >= p.latent);
    }
  }
  std::vector<HeatMap> panels = {fraction};
  if (options.largest) panels.push_back(width);
  save_heat_maps(path, "which card fits GraphCast", panels, 1,
                 "outlined: the preset fits (left: some plan; right: at its own latent or wider); margin " +
                     std::to_string(kCudaContextMargin) + " B");
}

}  // namespace gc::study
