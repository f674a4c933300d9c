// pictures.cpp: the PNGs of a training run: loss.png (the loss per step on a
// log axis), rmse.png (evaluation RMSE against lead time, when there is an
// evaluation) and, on demo data, forecast_<variable>.png for one held-out case.
//
// Forecast maps: rows are leads, columns truth / prediction / error. Truth and
// prediction share one sequential colour scale per variable across all leads,
// and the error one symmetric diverging scale (0 is white), so that colours
// compare across rows and growth of the error with lead is visible. The RMSE in
// each error title is latitude-weighted, as in the evaluation table.
#include "tools/train/pictures.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "tools/plot/plot.h"

namespace gc {
namespace {

void write_loss_png(const Trainer& trainer, const std::string& path) {
  const std::vector<StepRecord>& history = trainer.history();
  plot::Series loss{"loss per step", plot::category_colour(0), {}, {}};
  for (const StepRecord& r : history) {
    loss.x.push_back(r.step + 1);
    loss.y.push_back(r.loss);
  }
  std::vector<plot::Series> series{loss};
  // A trailing mean makes the trend readable through the step-to-step noise.
  const size_t window = std::max<size_t>(5, history.size() / 20);
  if (history.size() >= 4 * window) {
    plot::Series mean{"mean of the last " + std::to_string(window) + " steps", plot::category_colour(1), {}, {}};
    double sum = 0;
    for (size_t i = 0; i < history.size(); ++i) {
      sum += history[i].loss;
      if (i >= window) sum -= history[i - window].loss;
      if (i + 1 >= window) {
        mean.x.push_back(history[i].step + 1);
        mean.y.push_back(sum / static_cast<double>(window));
      }
    }
    series.push_back(std::move(mean));
  }
  const TrainOptions& o = trainer.options();
  plot::ChartText text;
  text.title = "Training loss (" + o.preset + ", " + std::to_string(history.size()) + " steps, last " +
               plot::format_number(history.back().loss) + ")";
  text.x_label = "step";
  text.y_label = "loss (normalized MSE, log scale)";
  plot::Canvas canvas(1200, 700);
  plot::line_chart(canvas, plot::Rect{0, 0, canvas.width(), canvas.height()}, series, text, true);
  canvas.save_png(path);
}

// One chart per variable: model, persistence and climatology RMSE against lead.
void write_rmse_png(const EvalResult& eval, const std::string& path) {
  const size_t variables = eval.variables.size();
  // Stacked vertically at a size where the chart library uses its large text.
  const int chart_w = 1200, chart_h = 700;
  plot::Canvas canvas(chart_w, chart_h * static_cast<int>(variables));
  for (size_t v = 0; v < variables; ++v) {
    std::vector<plot::Series> series{{"model", plot::category_colour(0), {}, eval.rmse_model[v]},
                                     {"persistence", plot::category_colour(1), {}, eval.rmse_persistence[v]},
                                     {"climatology", plot::category_colour(2), {}, eval.rmse_climatology[v]}};
    for (plot::Series& s : series)
      for (int hours : eval.lead_hours) s.x.push_back(hours);
    const int channel = static_cast<int>(v);
    plot::ChartText text;
    text.title = "RMSE of " + eval.variables[v] + " by lead (" + std::to_string(eval.cases) + " held-out cases)";
    text.x_label = "lead (hours)";
    const std::string unit = eval.units.empty() ? data::swe_channel_unit(channel) : eval.units[v];
    text.y_label = "latitude-weighted RMSE (" + unit + ")";
    plot::line_chart(canvas, plot::Rect{0, chart_h * channel, chart_w, chart_h}, series, text);
  }
  canvas.save_png(path);
}

struct LeadMaps {
  int lead_hours = 0;
  std::vector<float> truth, prediction, error;  // [nlat * nlon]
  double rmse = 0;
};

// Draws the picture of one variable; returns the rightmost pixel column used
// so that a second pass can size the canvas to fit.
int draw_forecast(plot::Canvas& canvas, const std::vector<LeadMaps>& leads, int nlat, int nlon,
                  const std::string& title, const std::string& variable, const std::string& unit) {
  const int scale = 2, margin = 24, gap = 20;
  const int panel_w = 384, panel_h = std::max(1, static_cast<int>(std::lround(384.0 * nlat / nlon)));
  const int title_h = plot::Canvas::text_height(3) + 10 + plot::Canvas::text_height(scale) + 16;
  const int row_label_w = plot::Canvas::text_width("+48 h", 3) + 16;
  const int panel_title_h = plot::Canvas::text_height(scale) + 8;
  const int row_h = panel_title_h + panel_h + gap;

  std::vector<float> fields, errors;
  for (const LeadMaps& m : leads) {
    fields.insert(fields.end(), m.truth.begin(), m.truth.end());
    fields.insert(fields.end(), m.prediction.begin(), m.prediction.end());
    errors.insert(errors.end(), m.error.begin(), m.error.end());
  }
  const plot::ValueRange field_range = plot::finite_range(fields.data(), fields.size());
  const plot::ValueRange error_range = plot::symmetric_range(errors.data(), errors.size());

  canvas.text(margin, margin, title, plot::colour::text, 3);
  const std::string subtitle =
      "columns: truth | prediction | error = prediction - truth; colour scales shared by all leads; "
      "RMSE latitude-weighted";
  canvas.text(margin, margin + plot::Canvas::text_height(3) + 10, subtitle, plot::colour::axis, scale);

  const int x_truth = margin + row_label_w, x_prediction = x_truth + panel_w + gap;
  const int maps_top = margin + title_h + panel_title_h;
  const int maps_height = static_cast<int>(leads.size()) * row_h - gap - panel_title_h;
  const int bar_w = 18;
  const int field_bar_right =
      plot::draw_colorbar(canvas, x_prediction + panel_w + gap, maps_top, bar_w, maps_height, field_range.min,
                          field_range.max, plot::Map::sequential, variable + " (" + unit + ")", scale);
  const int x_error = field_bar_right + 2 * gap;
  const int error_bar_right =
      plot::draw_colorbar(canvas, x_error + panel_w + gap, maps_top, bar_w, maps_height, error_range.min,
                          error_range.max, plot::Map::diverging, "error in " + variable + " (" + unit + ")", scale);

  for (size_t r = 0; r < leads.size(); ++r) {
    const LeadMaps& m = leads[r];
    const int top = margin + title_h + static_cast<int>(r) * row_h;
    const std::string lead = "+" + std::to_string(m.lead_hours) + " h";
    canvas.text(margin, top + panel_title_h + panel_h / 2 - plot::Canvas::text_height(3) / 2, lead,
                plot::colour::text, 3);
    canvas.text(x_truth, top, "truth " + lead, plot::colour::text, scale);
    canvas.text(x_prediction, top, "prediction " + lead, plot::colour::text, scale);
    canvas.text(x_error, top, "error " + lead + ", RMSE " + plot::format_number(m.rmse) + " " + unit,
                plot::colour::text, scale);
    const int y = top + panel_title_h;
    plot::draw_field(canvas, x_truth, y, panel_w, panel_h, m.truth.data(), nlat, nlon, field_range.min,
                     field_range.max, plot::Map::sequential);
    plot::draw_field(canvas, x_prediction, y, panel_w, panel_h, m.prediction.data(), nlat, nlon,
                     field_range.min, field_range.max, plot::Map::sequential);
    plot::draw_field(canvas, x_error, y, panel_w, panel_h, m.error.data(), nlat, nlon, error_range.min,
                     error_range.max, plot::Map::diverging);
  }
  const int text_right =
      margin + std::max(plot::Canvas::text_width(title, 3), plot::Canvas::text_width(subtitle, scale));
  return std::max({error_bar_right, x_error + panel_w, text_right});
}

void write_forecast_pngs(Trainer& trainer, const std::string& out_dir) {
  const data::SweDataset& data = *trainer.data();
  const int trajectory = data.first_trajectory(data::SweSplit::test);
  const int start_frame = 1;
  const double interval_hours = data.config.frame_interval_hours;
  const int leads_available = data.frames() - 1 - start_frame;
  const int leads = std::min(8, leads_available);
  if (leads < 1) return;
  const std::vector<std::vector<float>> forecast = trainer.forecast(trajectory, start_frame, leads);  // [lead][grid * C]

  std::vector<int> lead_indices;  // 0-based: lead k is frame start + k + 1
  for (int hours : {6, 24, 48}) {
    const int k = static_cast<int>(std::lround(hours / interval_hours)) - 1;
    if (k >= 0 && k < static_cast<int>(forecast.size()) &&
        std::find(lead_indices.begin(), lead_indices.end(), k) == lead_indices.end())
      lead_indices.push_back(k);
  }
  const int nlat = data.nlat, nlon = data.nlon, C = data::kSweChannels;
  const size_t nodes = static_cast<size_t>(nlat) * nlon;
  const std::vector<double>& row_weight = trainer.geometry().grid.row_weight;  // [nlat], mean 1

  for (int c = 0; c < C; ++c) {
    std::vector<LeadMaps> maps;
    for (int k : lead_indices) {
      LeadMaps m;
      m.lead_hours = static_cast<int>(std::lround((k + 1) * interval_hours));
      const float* truth = data.frame(trajectory, start_frame + k + 1);  // [nlat][nlon][C]
      const std::vector<float>& prediction = forecast[static_cast<size_t>(k)];  // [nlat * nlon * C]
      double weighted_se = 0, weight_sum = 0;
      for (size_t i = 0; i < nodes; ++i) {
        const float t = truth[i * C + c], p = prediction[i * C + c];
        m.truth.push_back(t);
        m.prediction.push_back(p);
        m.error.push_back(p - t);
        const double w = row_weight.size() == static_cast<size_t>(nlat) ? row_weight[i / nlon] : 1.0;
        weighted_se += w * (static_cast<double>(p) - t) * (static_cast<double>(p) - t);
        weight_sum += w;
      }
      m.rmse = std::sqrt(weighted_se / weight_sum);
      maps.push_back(std::move(m));
    }
    const std::string variable = data::swe_channel_name(c), unit = data::swe_channel_unit(c);
    const std::string title = "Forecast of " + variable + " (" + unit + "), held-out test trajectory " +
                              std::to_string(trajectory) + " from frame " + std::to_string(start_frame) + ", after " +
                              std::to_string(trainer.completed_steps()) + " training steps";
    const int margin = 24;
    const int panel_h = std::max(1, static_cast<int>(std::lround(384.0 * nlat / nlon)));
    const int height = margin + plot::Canvas::text_height(3) + 10 + plot::Canvas::text_height(2) + 16 +
                       static_cast<int>(maps.size()) * (plot::Canvas::text_height(2) + 8 + panel_h + 20) + margin;
    // First pass measures how wide the colour bars' labels make the picture.
    plot::Canvas probe(4000, height);
    const int right = draw_forecast(probe, maps, nlat, nlon, title, variable, unit);
    plot::Canvas canvas(right + margin, height);
    draw_forecast(canvas, maps, nlat, nlon, title, variable, unit);
    canvas.save_png(out_dir + "/forecast_" + variable + ".png");
  }
}

}  // namespace

void write_pictures(Trainer& trainer, const EvalResult* eval, const std::string& out_dir) {
  if (!trainer.history().empty()) write_loss_png(trainer, out_dir + "/loss.png");
  if (eval && !eval->lead_hours.empty() && !eval->variables.empty()) write_rmse_png(*eval, out_dir + "/rmse.png");
  // A forecast needs the whole grid in one process (not under --model-parallel).
  if (trainer.data() != nullptr && trainer.options().device != Device::meta && trainer.options().model_parallel == 1)
    write_forecast_pngs(trainer, out_dir);
}

}  // namespace gc
