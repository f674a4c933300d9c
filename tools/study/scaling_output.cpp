// scaling_output.cpp: the scaling study as a text table, JSON and heat maps.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>

#include "tools/study/heat_map.h"
#include "tools/study/scaling.h"

namespace gc::study {

namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

// The table's unit of peaks: GiB, or MiB when every peak is below 1 GiB.
double peak_unit(const ScalingResult& r, const char** name) {
  int64_t largest = 0;
  for (const ScalingCell& cell : r.cells)
    for (const auto& row : cell.peaks)
      for (const PeakResult& p : row) largest = std::max(largest, p.peak_reserved);
  *name = largest >= int64_t(1) << 30 ? "GiB" : "MiB";
  return largest >= int64_t(1) << 30 ? kGiB : kGiB / 1024.0;
}

std::string printf_string(const char* format, double a, double b = 0) {
  char text[64];
  std::snprintf(text, sizeof text, format, a, b);
  return text;
}

// "12.34*" (fits), "150.36" (does not), "no plan" (auto without a plan).
std::string peak_text(const ScalingCell& cell, int p, int r, int64_t budget, bool with_overhead, double unit) {
  const PeakResult& peak = cell.peaks[p][r];
  if (!peak.planned) return "no plan";
  std::string text = printf_string("%.2f", static_cast<double>(peak.peak_reserved) / unit);
  text += cell.fits(p, r, budget) ? "*" : " ";
  if (with_overhead) text += printf_string(" +%.0f%%", 100.0 * peak.recompute_overhead);
  return text;
}

bool trained(const ScalingResult& r) { return !r.cells.empty() && r.cells.front().skill.trained; }

}  // namespace

std::string scaling_table(const ScalingResult& result) {
  const ScalingOptions& o = result.options;
  const int64_t budget = o.budget.bytes();
  std::string out;
  out += "scaling study at " + result.target + "\n";
  out += "budget: " + o.budget.name + ": " + std::to_string(o.budget.device_bytes) + " B";
  if (o.budget.margin > 0) out += " less the CUDA context margin " + std::to_string(o.budget.margin) + " B";
  out += " = " + std::to_string(budget) + " B (" + gib(budget) + ") for gc's allocator\n";
  const char* unit_name = nullptr;
  const double unit = peak_unit(result, &unit_name);
  out += std::string("peak: reserved ") + unit_name + " of a dry-run training step (standing for cuda); * fits the budget; auto: planned for\n"
         "      the budget, + the FLOPs it recomputes; no plan: nothing fits, not even every stage checkpointed\n"
         "TFLOP/step: linear layers of one step without remat";
  if (o.card) out += "; model ms: bf16 auto's FLOPs at " + std::string(o.card->name) + "'s dense bf16 peak (a lower bound)";
  out += "\n";
  if (trained(result))
    out += "skill: " + std::to_string(o.train_steps) + " steps per cell on the built-in shallow-water data (demo preset: "
           "T21 32 x 64 grid, mesh 3, rollout 1, fp32, batch 1), measured on this cpu; RMSE of h (m) on the held-out "
           "trajectories\n";
  out += "\n";
  char line[512];
  std::snprintf(line, sizeof line, "%6s %6s %11s %7s | %-8s %-8s %-15s | %-8s %-8s %-15s | %10s",
                "latent", "layers", "parameters", "formula", "fp32", "", "", "bf16", "", "", "TFLOP/step");
  out += line;
  if (o.card) out += "  model ms";
  if (trained(result)) out += " | cpu ms/step  RMSE 24h  RMSE 48h";
  out += "\n";
  std::snprintf(line, sizeof line, "%6s %6s %11s %7s | %-8s %-8s %-15s | %-8s %-8s %-15s | %10s", "", "", "", "",
                "none", "all", "auto", "none", "all", "auto", "");
  out += line;
  if (o.card) out += "          ";
  out += "\n";
  for (const ScalingCell& cell : result.cells) {
    std::snprintf(line, sizeof line, "%6lld %6d %11lld %7s | %-8s %-8s %-15s | %-8s %-8s %-15s | %10.3f",
                  static_cast<long long>(cell.latent), cell.layers, static_cast<long long>(cell.parameters),
                  cell.parameters == cell.parameters_formula ? "equal" : "DIFFERS",
                  peak_text(cell, 0, 0, budget, false, unit).c_str(), peak_text(cell, 0, 1, budget, false, unit).c_str(),
                  peak_text(cell, 0, 2, budget, true, unit).c_str(), peak_text(cell, 1, 0, budget, false, unit).c_str(),
                  peak_text(cell, 1, 1, budget, false, unit).c_str(), peak_text(cell, 1, 2, budget, true, unit).c_str(),
                  cell.peaks[0][0].flops_per_step / 1e12);
    out += line;
    if (o.card) {
      const PeakResult& a = cell.peaks[1][2];
      out += a.planned ? printf_string(" %9.1f", modelled_step_ms(*o.card, "bf16", a.flops_per_step)) : "         -";
    }
    if (trained(result))
      out += printf_string(" | %11.1f", cell.skill.step_ms_median) +
             printf_string("  %8.2f  %8.2f", cell.skill.rmse_24h[0], cell.skill.rmse_48h[0]);
    out += "\n";
  }
  return out;
}

json::Value scaling_json(const ScalingResult& result) {
  const ScalingOptions& o = result.options;
  json::Value root = json::Value::object();
  root["target"] = result.target;
  root["target_flags"] = json::Value::array();
  for (const std::string& f : o.target_flags) root["target_flags"].push_back(f);
  json::Value& budget = root["budget"];
  budget["name"] = o.budget.name;
  budget["device_bytes"] = o.budget.device_bytes;
  budget["margin_bytes"] = o.budget.margin;
  budget["bytes"] = o.budget.bytes();
  root["graphs_seconds"] = result.setup_seconds;
  if (o.train) {
    root["skill_training"]["steps"] = o.train_steps;
    root["skill_training"]["flags"] = json::Value::array();
    for (const std::string& f : skill_training_flags(o)) root["skill_training"]["flags"].push_back(f);
  }
  root["cells"] = json::Value::array();
  for (const ScalingCell& cell : result.cells) {
    json::Value c = json::Value::object();
    c["latent"] = cell.latent;
    c["layers"] = cell.layers;
    c["parameters"] = cell.parameters;
    c["parameters_formula"] = cell.parameters_formula;
    c["dry_run_seconds"] = cell.dry_run_seconds;
    for (int p = 0; p < 2; ++p) {
      for (int r = 0; r < 3; ++r) {
        const PeakResult& peak = cell.peaks[p][r];
        json::Value& j = c["memory"][kPrecisions[p]][kRematPolicies[r]];
        j["planned"] = peak.planned;
        j["fits"] = cell.fits(p, r, o.budget.bytes());
        if (!peak.planned) {
          j["why_not"] = peak.why_not;
          continue;
        }
        j["peak_allocated"] = peak.peak_allocated;
        j["peak_reserved"] = peak.peak_reserved;
        j["flops_per_step"] = peak.flops_per_step;
        j["recompute_overhead"] = peak.recompute_overhead;
        j["edge_chunks"] = peak.edge_chunks;
        if (!peak.plan.empty()) j["plan"] = peak.plan;
        if (o.card) j["modelled_step_ms"] = modelled_step_ms(*o.card, kPrecisions[p], peak.flops_per_step);
      }
    }
    if (cell.skill.trained) {
      json::Value& s = c["skill"];
      s["steps"] = o.train_steps;
      s["step_ms_median"] = cell.skill.step_ms_median;
      s["seconds"] = cell.skill.seconds;
      s["loss_first"] = cell.skill.loss_first;
      s["loss_last"] = cell.skill.loss_last;
      for (size_t v = 0; v < cell.skill.variables.size(); ++v) {
        s["rmse_24h"][cell.skill.variables[v]] = cell.skill.rmse_24h[v];
        s["rmse_48h"][cell.skill.variables[v]] = cell.skill.rmse_48h[v];
      }
    }
    root["cells"].push_back(std::move(c));
  }
  return root;
}

std::vector<std::string> save_scaling_pngs(const ScalingResult& result, const std::string& prefix) {
  const ScalingOptions& o = result.options;
  const int64_t budget = o.budget.bytes();
  // Rows: layers (top = most), columns: latents.
  auto make = [&](const std::string& title, bool log_scale) {
    HeatMap m;
    m.title = title;
    m.row_label = "layers";
    m.column_label = "latent width";
    for (auto it = o.layers.rbegin(); it != o.layers.rend(); ++it) m.rows.push_back(std::to_string(*it));
    for (int64_t l : o.latents) m.columns.push_back(std::to_string(l));
    m.log_scale = log_scale;
    return m;
  };
  auto fill = [&](HeatMap& m, const std::function<void(const ScalingCell&, double&, std::string&, bool&)>& f) {
    for (size_t r = o.layers.size(); r-- > 0;) {
      for (size_t c = 0; c < o.latents.size(); ++c) {
        double v = NAN;
        std::string text;
        bool outlined = false;
        f(result.cell(c, r), v, text, outlined);
        m.values.push_back(v);
        m.cell_text.push_back(text);
        m.outlined.push_back(outlined);
      }
    }
  };
  std::vector<std::string> written;
  std::vector<HeatMap> memory;
  for (int p = 0; p < 2; ++p) {
    for (int r = 0; r < 3; ++r) {
      HeatMap m = make(std::string("peak reserved, ") + kPrecisions[p] + ", remat " + kRematPolicies[r], true);
      fill(m, [&](const ScalingCell& cell, double& v, std::string& text, bool& outlined) {
        const PeakResult& peak = cell.peaks[p][r];
        if (!peak.planned) {
          text = "no plan";
          return;
        }
        v = static_cast<double>(peak.peak_reserved);
        text = printf_string("%.1f GiB", v / kGiB);
        if (r == 2) text += printf_string(" +%.0f%%", 100.0 * peak.recompute_overhead);
        outlined = cell.fits(p, r, budget);
      });
      memory.push_back(std::move(m));
    }
  }
  const std::string legend = "outlined: fits " + o.budget.name + " (" + gib(budget) +
                             (o.budget.margin > 0 ? " after the CUDA context margin" : "") + ")";
  written.push_back(prefix + "_memory.png");
  save_heat_maps(written.back(), "dry-run peak per training step at " + result.target, memory, 3, legend);

  std::vector<HeatMap> cost;
  HeatMap params = make("parameters", true);
  fill(params, [](const ScalingCell& cell, double& v, std::string& text, bool&) {
    v = static_cast<double>(cell.parameters);
    text = printf_string("%.3gM", v / 1e6);
  });
  cost.push_back(std::move(params));
  HeatMap flops = make("TFLOP per step (linear layers, no remat)", true);
  fill(flops, [](const ScalingCell& cell, double& v, std::string& text, bool&) {
    v = cell.peaks[0][0].flops_per_step / 1e12;
    text = printf_string("%.3g", v);
  });
  cost.push_back(std::move(flops));
  if (o.card) {
    HeatMap ms = make(std::string("modelled ms/step, bf16 auto, ") + o.card->name, true);
    fill(ms, [&](const ScalingCell& cell, double& v, std::string& text, bool& outlined) {
      const PeakResult& a = cell.peaks[1][2];
      if (!a.planned) {
        text = "no plan";
        return;
      }
      v = modelled_step_ms(*o.card, "bf16", a.flops_per_step);
      text = printf_string("%.3g ms", v);
      outlined = true;
    });
    cost.push_back(std::move(ms));
  }
  if (trained(result)) {
    HeatMap ms = make("measured cpu ms/step, skill training", true);
    fill(ms, [](const ScalingCell& cell, double& v, std::string& text, bool&) {
      v = cell.skill.step_ms_median;
      text = printf_string("%.4g ms", v);
    });
    cost.push_back(std::move(ms));
  }
  written.push_back(prefix + "_cost.png");
  save_heat_maps(written.back(), "size and time per step", cost, 2, legend);

  if (trained(result)) {
    std::vector<HeatMap> skill;
    for (int lead : {24, 48}) {
      HeatMap m = make("held-out RMSE of h (m) at " + std::to_string(lead) + " h", false);
      fill(m, [&](const ScalingCell& cell, double& v, std::string& text, bool& outlined) {
        v = lead == 24 ? cell.skill.rmse_24h[0] : cell.skill.rmse_48h[0];
        text = printf_string("%.1f", v);
        outlined = cell.fits(1, 2, budget);
      });
      m.reversed_colours = true;
      skill.push_back(std::move(m));
    }
    written.push_back(prefix + "_skill.png");
    save_heat_maps(written.back(),
                   "skill after " + std::to_string(o.train_steps) + " steps on the built-in shallow-water data",
                   skill, 2, legend + " with bf16 and remat auto; darker = larger error");
  }
  return written;
}

}  // namespace gc::study
