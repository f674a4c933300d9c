// axes.h: the chart machinery both chart kinds share (plot_line_chart.cpp,
// plot_stacked_area.cpp); private to the plot files, not part of plot.h's API.
//
// A chart is drawn in a fixed order: pick ticks, lay out the axes around them
// (layout_axes), draw the grid, then the data, then the decorations (frame, tick
// labels, axis labels, title, legend), so that data sits on the grid and no data
// ever hides a label. Text is scale 1, or 2 on areas of at least 1200 x 700; the
// title is one scale larger. Log axis ticks live in plot_ticks.cpp beside the
// number formatting they share; the rest in plot_axes.cpp.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "tools/plot/plot.h"

namespace gc::plot::detail {

struct Tick {
  double value;
  std::string label;
};

struct LegendEntry {
  std::string name;
  Rgb colour;
  bool is_line;  // a line swatch (a series, an overlay) rather than a filled box (an area)
};

// Pixel geometry shared by both chart kinds.
struct Axes {
  Rect area;
  int scale = 1;  // tick and label text; the title uses scale + 1
  int margin = 10;
  Rect plot;
  std::vector<std::pair<int, int>> legend_positions;  // top-left of each entry
};

// Text scale of a chart in `area`: 2 on large areas, else 1.
int chart_text_scale(Rect area);

// Plot rectangle from the area minus title, y label, y tick labels, x tick
// labels, x label and the legend rows (entries wrap to the plot's width).
// Throws std::invalid_argument when fewer than 16 x 16 pixels are left.
Axes layout_axes(Rect area, const ChartText& text, int widest_y_tick_px, const std::vector<LegendEntry>& legend);

// Width in pixels of the widest tick label at text scale s.
int widest_label(const std::vector<Tick>& ticks, int s);

// Ticks strictly inside [lo, hi] whose labels do not collide across `length_px`;
// labels from `format`, or format_tick when it is empty.
std::vector<Tick> linear_ticks(double lo, double hi, int length_px, int s, int spacing_px,
                               const std::function<std::string(double)>& format);

// Log axis bounds snapped to 1, 2, 5 x 10^k around the data, with decades as
// major ticks (plus 2 and 5 multiples over short spans) and the rest as minor
// grid lines.
struct LogAxis {
  double lo, hi;
  std::vector<double> major, minor;
};
LogAxis log_axis(double data_min, double data_max);  // 0 < data_min <= data_max
// Plain decimals for 0.001 <= v < 1e5 ("0.002", "50000"), "1e-5" / "2e6" beyond.
std::string log_tick_label(double v);

// Grid lines at the ticks (and lighter ones at y_minor), drawn before the data.
void draw_grid(Canvas& canvas, const ChartLayout& layout, const std::vector<Tick>& x_ticks,
               const std::vector<Tick>& y_ticks, const std::vector<double>& y_minor);

// Frame, tick marks, tick labels, axis labels, title and legend, drawn last.
void draw_decorations(Canvas& canvas, const Axes& axes, const ChartLayout& layout, const std::vector<Tick>& x_ticks,
                      const std::vector<Tick>& y_ticks, const ChartText& text, const std::vector<LegendEntry>& legend);

}  // namespace gc::plot::detail
