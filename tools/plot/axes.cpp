// axes.cpp: what the two chart kinds share (see plot_axes.h): data-to-pixel
// mapping, axes layout, linear ticks, grid and decorations.
//
// Layout works outward in: margins, then title, y label and y tick labels, then
// the legend rows from the bottom, and the plot rectangle is what is left, so a
// longer label or legend shrinks the data area rather than overlapping it. The
// plot rectangle's first and last pixel rows and columns are the axis ends:
// px_x(x_min) is its left column and px_y(y_max) its top row.
#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "tools/plot/axes.h"

namespace gc::plot {

double ChartLayout::px_x(double x) const {
  const double f = x_max > x_min ? (x - x_min) / (x_max - x_min) : 0.5;
  return plot.x + f * (plot.w - 1);
}

double ChartLayout::px_y(double y) const {
  double f;
  if (log_y) f = (std::log10(y) - std::log10(y_min)) / (std::log10(y_max) - std::log10(y_min));
  else f = y_max > y_min ? (y - y_min) / (y_max - y_min) : 0.5;
  return plot.y + (plot.h - 1) - f * (plot.h - 1);
}

namespace detail {
namespace {

int legend_entry_width(const LegendEntry& entry, int s) {
  return 14 * s + Canvas::text_width(entry.name, s) + 16 * s;
}

void draw_legend_swatch(Canvas& canvas, int x, int y, const LegendEntry& entry, int s) {
  const int cap = 7 * s;
  if (entry.is_line) canvas.fill_rect(x, y + cap / 2 - s, 12 * s, 2 * s + 1, entry.colour);
  else canvas.fill_rect(x, y, 12 * s, cap, entry.colour);
}

}  // namespace

int chart_text_scale(Rect area) { return (area.w >= 1200 && area.h >= 700) ? 2 : 1; }

Axes layout_axes(Rect area, const ChartText& text, int widest_y_tick_px, const std::vector<LegendEntry>& legend) {
  Axes axes;
  axes.area = area;
  const int s = axes.scale = chart_text_scale(area);
  const int th = Canvas::text_height(s);
  axes.margin = 10 * s;
  int left = area.x + axes.margin + widest_y_tick_px + 8 * s;
  if (!text.y_label.empty()) left += th + 8 * s;
  const int right = area.x + area.w - axes.margin - Canvas::text_width("000", s);
  int top = area.y + axes.margin;
  top += text.title.empty() ? th / 2 : Canvas::text_height(s + 1) + 10 * s;

  // Legend rows, laid out left to right from the plot's left edge.
  const int row_height = th + 6 * s;
  std::vector<std::pair<int, int>> relative;  // (x, row)
  int cursor = left, row = 0;
  for (const LegendEntry& entry : legend) {
    const int width = legend_entry_width(entry, s);
    if (cursor > left && cursor + width > right) {
      cursor = left;
      ++row;
    }
    relative.emplace_back(cursor, row);
    cursor += width;
  }
  const int legend_rows = legend.empty() ? 0 : row + 1;

  int bottom = area.y + area.h - axes.margin - legend_rows * row_height;
  if (!text.x_label.empty()) bottom -= th + 6 * s;
  bottom -= th + 8 * s;  // tick marks and x tick labels
  if (legend_rows > 0) bottom -= 4 * s;
  axes.plot = Rect{left, top, right - left, bottom - top};
  if (axes.plot.w < 16 || axes.plot.h < 16) {
    throw std::invalid_argument("chart: area " + std::to_string(area.w) + " x " +
                                std::to_string(area.h) + " is too small for axes, labels and legend");
  }
  const int legend_top = area.y + area.h - axes.margin - legend_rows * row_height;
  for (const auto& [x, r] : relative) axes.legend_positions.emplace_back(x, legend_top + r * row_height);
  return axes;
}

int widest_label(const std::vector<Tick>& ticks, int s) {
  int widest = 0;
  for (const Tick& t : ticks) widest = std::max(widest, Canvas::text_width(t.label, s));
  return widest;
}

std::vector<Tick> linear_ticks(double lo, double hi, int length_px, int s, int spacing_px,
                               const std::function<std::string(double)>& format) {
  std::vector<Tick> ticks;
  for (int target = std::max(2, length_px / spacing_px); target >= 2; --target) {
    const std::vector<double> values = nice_ticks(lo, hi, target);
    const double step = values.size() > 1 ? values[1] - values[0] : 1;
    ticks.clear();
    for (double v : values) {
      if (v < lo - step * 1e-9 || v > hi + step * 1e-9) continue;
      ticks.push_back({v, format ? format(v) : format_tick(v, step)});
    }
    const double step_px = length_px * step / (hi - lo);
    if (widest_label(ticks, s) + 12 * s <= step_px) break;
  }
  return ticks;
}

// Grid first, so that data drawn afterwards sits on top of it.
void draw_grid(Canvas& canvas, const ChartLayout& layout, const std::vector<Tick>& x_ticks,
               const std::vector<Tick>& y_ticks, const std::vector<double>& y_minor) {
  const Rect& p = layout.plot;
  for (double v : y_minor) {
    const int row = static_cast<int>(std::lround(layout.px_y(v)));
    canvas.fill_rect(p.x, row, p.w, 1, Rgb{242, 242, 242});
  }
  for (const Tick& t : y_ticks) {
    canvas.fill_rect(p.x, static_cast<int>(std::lround(layout.px_y(t.value))), p.w, 1, colour::grid);
  }
  for (const Tick& t : x_ticks) {
    canvas.fill_rect(static_cast<int>(std::lround(layout.px_x(t.value))), p.y, 1, p.h, colour::grid);
  }
}

void draw_decorations(Canvas& canvas, const Axes& axes, const ChartLayout& layout, const std::vector<Tick>& x_ticks,
                      const std::vector<Tick>& y_ticks, const ChartText& text, const std::vector<LegendEntry>& legend) {
  const Rect& p = axes.plot;
  const int s = axes.scale, th = Canvas::text_height(s), cap = 7 * s;
  canvas.frame_rect(p.x - 1, p.y - 1, p.w + 2, p.h + 2, colour::axis);
  for (const Tick& t : y_ticks) {
    const int row = static_cast<int>(std::lround(layout.px_y(t.value)));
    canvas.fill_rect(p.x - 1 - 4 * s, row, 4 * s, 1, colour::axis);
    const int label_right = p.x - 1 - 6 * s;
    canvas.text(label_right - Canvas::text_width(t.label, s), row - cap / 2, t.label, colour::text, s);
  }
  const int x_label_top = p.y + p.h + 1 + 7 * s;
  for (const Tick& t : x_ticks) {
    const int column = static_cast<int>(std::lround(layout.px_x(t.value)));
    canvas.fill_rect(column, p.y + p.h + 1, 1, 4 * s, colour::axis);
    const int width = Canvas::text_width(t.label, s);
    const int left = std::clamp(column - width / 2, axes.area.x, axes.area.x + axes.area.w - width);
    canvas.text(left, x_label_top, t.label, colour::text, s);
  }
  if (!text.x_label.empty()) {
    const int width = Canvas::text_width(text.x_label, s);
    canvas.text(p.x + (p.w - width) / 2, x_label_top + th + 6 * s, text.x_label, colour::text, s);
  }
  if (!text.y_label.empty()) {
    const int length = Canvas::text_width(text.y_label, s);
    canvas.text_vertical(axes.area.x + axes.margin, p.y + (p.h - length) / 2, text.y_label,
                         colour::text, s);
  }
  if (!text.title.empty()) {
    const int width = Canvas::text_width(text.title, s + 1);
    int left = p.x + (p.w - width) / 2;
    if (left + width > axes.area.x + axes.area.w - axes.margin) {
      left = axes.area.x + axes.area.w - axes.margin - width;
    }
    left = std::max(left, axes.area.x + axes.margin);
    canvas.text(left, axes.area.y + axes.margin, text.title, colour::text, s + 1);
  }
  for (size_t i = 0; i < legend.size(); ++i) {
    const auto [x, y] = axes.legend_positions[i];
    draw_legend_swatch(canvas, x, y, legend[i], s);
    canvas.text(x + 16 * s, y, legend[i].name, colour::text, s);
  }
}

}  // namespace detail
}  // namespace gc::plot
