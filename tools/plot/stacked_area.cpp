// stacked_area.cpp: stacked area charts (the memory timeline by category),
// with an optional overlay line and a marked peak.
//
// Layers are drawn as steps, one pixel column at a time: each column shows one
// point, the one with the largest total among those that fall in it, so
// downsampling never hides a peak. Layer boundaries are rounded once per value
// (not per layer height), so stacked layers tile the column without gaps.
#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "tools/plot/axes.h"

namespace gc::plot {

using namespace detail;

namespace {

void check_stack_inputs(const std::vector<double>& x, const std::vector<AreaLayer>& layers,
                        const std::optional<AreaLayer>& overlay) {
  if (x.empty()) throw std::invalid_argument("stacked_area_chart: no x values");
  if (layers.empty()) throw std::invalid_argument("stacked_area_chart: no layers");
  for (size_t i = 0; i < x.size(); ++i) {
    if (!std::isfinite(x[i]) || (i > 0 && x[i] < x[i - 1])) {
      throw std::invalid_argument("stacked_area_chart: x must be finite and non-decreasing (index " +
                                  std::to_string(i) + ")");
    }
  }
  auto check_layer = [&](const AreaLayer& layer, const char* kind) {
    if (layer.y.size() != x.size()) {
      throw std::invalid_argument(std::string("stacked_area_chart: ") + kind + " '" + layer.name +
                                  "' has " + std::to_string(layer.y.size()) + " values for " +
                                  std::to_string(x.size()) + " x values");
    }
    for (size_t i = 0; i < layer.y.size(); ++i) {
      if (!std::isfinite(layer.y[i]) || layer.y[i] < 0) {
        throw std::invalid_argument(std::string("stacked_area_chart: ") + kind + " '" + layer.name +
                                    "' has value " + format_number(layer.y[i]) + " at index " +
                                    std::to_string(i) + " (need finite, >= 0)");
      }
    }
  };
  for (const AreaLayer& layer : layers) check_layer(layer, "layer");
  if (overlay) check_layer(*overlay, "overlay");
}

// The point each pixel column shows: the largest total among the points whose
// x rounds to that column, or else the last point before it (steps hold).
std::vector<int64_t> column_samples(const ChartLayout& layout, const std::vector<double>& x,
                                    const std::vector<double>& total) {
  const int w = layout.plot.w;
  const double x_per_px = (layout.x_max - layout.x_min) / (w - 1);
  std::vector<int64_t> chosen(static_cast<size_t>(w), -1);
  for (int c = 0; c < w; ++c) {
    const double lo = layout.x_min + (c - 0.5) * x_per_px, hi = layout.x_min + (c + 0.5) * x_per_px;
    const size_t first = std::lower_bound(x.begin(), x.end(), lo) - x.begin();
    const size_t last = c == w - 1 ? x.size() : std::lower_bound(x.begin(), x.end(), hi) - x.begin();
    if (first < last) {
      size_t best = first;
      for (size_t i = first + 1; i < last; ++i) best = total[i] > total[best] ? i : best;
      chosen[c] = static_cast<int64_t>(best);
    } else if (first > 0) {
      chosen[c] = static_cast<int64_t>(first - 1);
    }
  }
  return chosen;
}

// Dashed line at the peak and a boxed label beside it, flipped to the left of
// the line (and finally clamped, the label shortened) to stay inside the area.
void draw_peak_marker(Canvas& canvas, const Axes& axes, const ChartLayout& layout, double peak_x,
                      double peak_total, const std::string& text) {
  const Rect& p = layout.plot;
  const int s = axes.scale, pad = 4 * s;
  // The dashed line stops above the peak so it never hides the data it marks.
  const double column = std::round(layout.px_x(peak_x));
  const double row = layout.px_y(peak_total);
  canvas.dashed_line(column, p.y, column, row - 4 * s, colour::text, 5 * s, 3 * s, 1);
  canvas.fill_rect(static_cast<int>(column) - 2 * s, static_cast<int>(std::lround(row)) - 2 * s,
                   4 * s + 1, 4 * s + 1, colour::text);

  const int area_left = axes.area.x + 1, area_right = axes.area.x + axes.area.w - 1;
  std::string label = text;
  while (label.size() > 4 && Canvas::text_width(label, s) + 2 * pad > area_right - area_left) {
    label = label.substr(0, label.size() - 4) + "...";
  }
  const int box_w = Canvas::text_width(label, s) + 2 * pad, box_h = 7 * s + 2 * pad;
  int box_x = static_cast<int>(column) + 6 * s;
  if (box_x + box_w > area_right) box_x = static_cast<int>(column) - 6 * s - box_w;
  box_x = std::clamp(box_x, area_left, std::max(area_left, area_right - box_w));
  const int box_y = p.y + 4 * s;
  canvas.fill_rect(box_x, box_y, box_w, box_h, colour::white);
  canvas.frame_rect(box_x, box_y, box_w, box_h, colour::text);
  canvas.text(box_x + pad, box_y + pad, label, colour::text, s);
}

}  // namespace

StackedAreaResult stacked_area_chart(Canvas& canvas, Rect area, const std::vector<double>& x,
                                     const std::vector<AreaLayer>& layers,
                                     const StackedAreaOptions& options) {
  check_stack_inputs(x, layers, options.overlay);
  std::vector<double> total(x.size(), 0.0);
  for (const AreaLayer& layer : layers) {
    for (size_t i = 0; i < x.size(); ++i) total[i] += layer.y[i];
  }
  StackedAreaResult result;
  result.peak_index = static_cast<size_t>(std::max_element(total.begin(), total.end()) - total.begin());
  result.peak_total = total[result.peak_index];
  double top = result.peak_total;
  if (options.overlay) top = std::max(top, *std::max_element(options.overlay->y.begin(), options.overlay->y.end()));
  top = top > 0 ? top * 1.12 : 1;  // headroom above the peak for its label box

  ChartLayout& layout = result.layout;
  layout.x_min = x.front();
  layout.x_max = x.back();
  if (layout.x_max == layout.x_min) layout.x_min -= 0.5, layout.x_max += 0.5;
  const int s = chart_text_scale(area);
  const int y_target = std::clamp(area.h / (70 * s), 3, 8);
  double unit = 1;
  if (options.binary_y_ticks) {
    while (unit * 1024 <= top && unit < std::pow(1024.0, 5)) unit *= 1024;
  }
  const std::vector<double> unit_values = nice_ticks(0, top / unit, y_target);
  const double step = (unit_values[1] - unit_values[0]) * unit;
  std::vector<Tick> y_ticks;
  for (double v : unit_values) {
    const double value = v * unit;
    y_ticks.push_back({value, options.format_y ? options.format_y(value) : format_tick(value, step)});
  }
  layout.y_min = 0;
  layout.y_max = unit_values.back() * unit;

  std::vector<LegendEntry> legend;
  for (const AreaLayer& layer : layers) legend.push_back({layer.name, layer.colour, false});
  if (options.overlay) legend.push_back({options.overlay->name, options.overlay->colour, true});
  const Axes axes = layout_axes(area, options.text, widest_label(y_ticks, s), legend);
  layout.plot = axes.plot;
  const std::vector<Tick> x_ticks =
      linear_ticks(layout.x_min, layout.x_max, axes.plot.w, s, 70 * s, options.format_x);
  draw_grid(canvas, layout, x_ticks, y_ticks, {});

  // Layer boundaries are rows between pixels: value v ends at plot bottom minus
  // round(v / y_max * plot height), so stacked layers tile without gaps.
  const Rect& p = layout.plot;
  auto boundary_row = [&](double v) {
    return p.y + p.h - static_cast<int>(std::lround(v / layout.y_max * p.h));
  };
  const std::vector<int64_t> chosen = column_samples(layout, x, total);
  for (int c = 0; c < p.w; ++c) {
    if (chosen[c] < 0) continue;
    double bottom = 0;
    for (const AreaLayer& layer : layers) {
      const double upper = bottom + layer.y[chosen[c]];
      const int row_top = boundary_row(upper), row_end = boundary_row(bottom);
      canvas.fill_rect(p.x + c, row_top, 1, row_end - row_top, layer.colour);
      bottom = upper;
    }
  }
  if (options.overlay) {
    const std::vector<double>& overlay = options.overlay->y;
    const std::vector<int64_t> overlay_chosen = column_samples(layout, x, overlay);
    double previous_row = 0;
    for (int c = 0; c < p.w; ++c) {
      if (overlay_chosen[c] < 0) continue;
      const double row = std::min<double>(boundary_row(overlay[overlay_chosen[c]]), p.y + p.h - 1);
      canvas.line(p.x + c - (c > 0 ? 1 : 0), c > 0 ? previous_row : row, p.x + c, row,
                  options.overlay->colour, s + 1);
      previous_row = row;
    }
  }
  if (options.mark_peak) {
    const auto format_y = options.format_y ? options.format_y : [](double v) { return format_number(v); };
    std::string label = "peak " + format_y(result.peak_total);
    if (!options.peak_label.empty()) label += ": " + options.peak_label;
    draw_peak_marker(canvas, axes, layout, x[result.peak_index], result.peak_total, label);
  }
  draw_decorations(canvas, axes, layout, x_ticks, y_ticks, options.text, legend);
  return result;
}

}  // namespace gc::plot
