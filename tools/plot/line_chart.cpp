// line_chart.cpp: line charts (loss curves, RMSE against lead time), on a
// linear or a logarithmic y axis.
//
// The x axis spans exactly the finite data; the y axis is widened to nice tick
// bounds (to 1, 2, 5 x 10^k on a log axis). A non-finite point, or a non-positive
// one on a log axis, breaks its line instead of being clamped; the first point
// after a break is drawn as a dot, so that a lone point stays visible.
#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "tools/plot/axes.h"

namespace gc::plot {

using namespace detail;

ChartLayout line_chart(Canvas& canvas, Rect area, const std::vector<Series>& series,
                       const ChartText& text, bool log_y) {
  bool any = false;
  double x_lo = 0, x_hi = 1, y_lo = 0, y_hi = 1;
  for (const Series& line : series) {
    if (line.x.size() != line.y.size()) {
      throw std::invalid_argument("line_chart: series '" + line.name + "' has " +
                                  std::to_string(line.x.size()) + " x values but " +
                                  std::to_string(line.y.size()) + " y values");
    }
    for (size_t i = 0; i < line.x.size(); ++i) {
      const double x = line.x[i], y = line.y[i];
      if (!std::isfinite(x) || !std::isfinite(y) || (log_y && y <= 0)) continue;
      x_lo = any ? std::min(x_lo, x) : x;
      x_hi = any ? std::max(x_hi, x) : x;
      y_lo = any ? std::min(y_lo, y) : y;
      y_hi = any ? std::max(y_hi, y) : y;
      any = true;
    }
  }
  if (!any && log_y) y_lo = 1, y_hi = 10;
  if (x_hi == x_lo) x_lo -= 0.5, x_hi += 0.5;

  ChartLayout layout;
  layout.log_y = log_y;
  layout.x_min = x_lo;
  layout.x_max = x_hi;
  const int s = chart_text_scale(area);
  const int y_target = std::clamp(area.h / (70 * s), 3, 8);
  std::vector<Tick> y_ticks;
  std::vector<double> y_minor;
  if (log_y) {
    const LogAxis axis = log_axis(y_lo, y_hi);
    layout.y_min = axis.lo;
    layout.y_max = axis.hi;
    for (double v : axis.major) y_ticks.push_back({v, log_tick_label(v)});
    y_minor = axis.minor;
  } else {
    const std::vector<double> values = nice_ticks(y_lo, y_hi, y_target);
    const double step = values.size() > 1 ? values[1] - values[0] : 1;
    layout.y_min = values.front();
    layout.y_max = values.back();
    for (double v : values) y_ticks.push_back({v, format_tick(v, step)});
  }

  std::vector<LegendEntry> legend;
  for (const Series& line : series) {
    if (!line.name.empty()) legend.push_back({line.name, line.colour, true});
  }
  const Axes axes = layout_axes(area, text, widest_label(y_ticks, s), legend);
  layout.plot = axes.plot;
  const std::vector<Tick> x_ticks =
      linear_ticks(layout.x_min, layout.x_max, axes.plot.w, s, 70 * s, nullptr);

  draw_grid(canvas, layout, x_ticks, y_ticks, y_minor);
  const int thickness = s + 1;
  for (const Series& line : series) {
    bool have_previous = false;
    double previous_x = 0, previous_y = 0;
    for (size_t i = 0; i < line.x.size(); ++i) {
      const double x = line.x[i], y = line.y[i];
      if (!std::isfinite(x) || !std::isfinite(y) || (log_y && y <= 0)) {
        have_previous = false;
        continue;
      }
      const double px = layout.px_x(x), py = layout.px_y(y);
      if (have_previous) canvas.line(previous_x, previous_y, px, py, line.colour, thickness);
      else canvas.line(px, py, px, py, line.colour, thickness + 1);  // a lone point stays visible
      previous_x = px;
      previous_y = py;
      have_previous = true;
    }
  }
  if (!any) {
    const std::string message = "no data";
    canvas.text(axes.plot.x + (axes.plot.w - Canvas::text_width(message, s)) / 2,
                axes.plot.y + axes.plot.h / 2, message, colour::axis, s);
  }
  draw_decorations(canvas, axes, layout, x_ticks, y_ticks, text, legend);
  return layout;
}

}  // namespace gc::plot
