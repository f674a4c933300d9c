// fields.cpp: colour maps, lat-lon fields drawn through them, and the colour
// bars that explain them.
//
// A colour map is a few control points at equal spacing in t, interpolated
// linearly in RGB; t is clamped to [0, 1] and NaN is colour::missing. A field and
// its colour bar map a value v by (v - vmin) / (vmax - vmin), a degenerate range
// to the middle, so a bar placed beside a field with the same range reads true.
#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "tools/plot/plot.h"

namespace gc::plot {

// ---- colour maps --------------------------------------------------------------
namespace {

// Control points at equal spacing in t, interpolated linearly in RGB.
constexpr Rgb kSequential[] = {
    {68, 1, 84},    {71, 44, 122},  {59, 81, 139},   {44, 113, 142}, {33, 144, 141},
    {39, 173, 129}, {92, 200, 99},  {170, 220, 50},  {253, 231, 37},
};
constexpr Rgb kDiverging[] = {
    {30, 60, 150}, {110, 160, 215}, {255, 255, 255}, {230, 120, 100}, {165, 20, 35},
};

template <size_t N>
Rgb interpolate(const Rgb (&points)[N], double t) {
  const double position = t * (N - 1);
  const size_t i = std::min(static_cast<size_t>(position), N - 2);
  const double f = position - static_cast<double>(i);
  auto mix = [f](uint8_t a, uint8_t b) {
    return static_cast<uint8_t>(std::lround(a + (static_cast<double>(b) - a) * f));
  };
  return Rgb{mix(points[i].r, points[i + 1].r), mix(points[i].g, points[i + 1].g),
             mix(points[i].b, points[i + 1].b)};
}

}  // namespace

Rgb colormap(Map map, double t) {
  if (std::isnan(t)) return colour::missing;
  t = std::clamp(t, 0.0, 1.0);
  switch (map) {
    case Map::sequential: return interpolate(kSequential, t);
    case Map::diverging: return interpolate(kDiverging, t);
  }
  throw std::invalid_argument("colormap: unknown map");
}

// ---- fields ---------------------------------------------------------------------
namespace {

void check_value_range(const char* who, double vmin, double vmax) {
  if (!std::isfinite(vmin) || !std::isfinite(vmax) || vmin > vmax) {
    throw std::invalid_argument(std::string(who) + ": need finite vmin <= vmax, got [" +
                                format_number(vmin) + ", " + format_number(vmax) + "]");
  }
}

// Position of v in [vmin, vmax] as 0..1; a degenerate range maps to the middle.
double unit_position(double v, double vmin, double vmax) {
  return vmax > vmin ? (v - vmin) / (vmax - vmin) : 0.5;
}

}  // namespace

void draw_field(Canvas& canvas, int x, int y, int w, int h, const float* values, int rows, int cols,
                double vmin, double vmax, Map map) {
  if (values == nullptr || rows < 1 || cols < 1) {
    throw std::invalid_argument("draw_field: need values and rows, cols >= 1, got " +
                                std::to_string(rows) + " x " + std::to_string(cols));
  }
  check_value_range("draw_field", vmin, vmax);
  if (w < 1 || h < 1) throw std::invalid_argument("draw_field: empty rectangle");
  for (int py = 0; py < h; ++py) {
    // Nearest neighbour through pixel centres: row = floor((py + 0.5) * rows / h).
    const int64_t row = (2 * int64_t{py} + 1) * rows / (2 * int64_t{h});
    for (int px = 0; px < w; ++px) {
      const int64_t column = (2 * int64_t{px} + 1) * cols / (2 * int64_t{w});
      const double v = values[row * cols + column];
      canvas.set_pixel(x + px, y + py, colormap(map, unit_position(v, vmin, vmax)));
    }
  }
  canvas.frame_rect(x - 1, y - 1, w + 2, h + 2, colour::axis);
}

namespace {

// 3 to 5 nice values inside [vmin, vmax] (vmin < vmax), or the two ends and the
// middle when no nice step gives that many.
std::vector<double> colorbar_ticks(double vmin, double vmax, double& step) {
  for (int target : {5, 4, 6, 3, 7, 8, 9, 10}) {
    const std::vector<double> candidates = nice_ticks(vmin, vmax, target);
    step = candidates.size() > 1 ? candidates[1] - candidates[0] : 1;
    const double slack = step * 1e-9;
    std::vector<double> inside;
    for (double v : candidates) {
      if (v >= vmin - slack && v <= vmax + slack) inside.push_back(v);
    }
    if (inside.size() >= 3 && inside.size() <= 5) return inside;
  }
  step = (vmax - vmin) / 2;
  return {vmin, vmin + step, vmax};
}

}  // namespace

int draw_colorbar(Canvas& canvas, int x, int y, int w, int h, double vmin, double vmax, Map map,
                  const std::string& label, int text_scale) {
  check_value_range("draw_colorbar", vmin, vmax);
  if (w < 1 || h < 1) throw std::invalid_argument("draw_colorbar: empty rectangle");
  Canvas::text_height(text_scale);  // validates the scale before anything is drawn
  const int s = text_scale;
  for (int row = 0; row < h; ++row) {
    const double t = h > 1 ? 1.0 - static_cast<double>(row) / (h - 1) : 0.5;
    canvas.fill_rect(x, y + row, w, 1, colormap(map, t));
  }
  canvas.frame_rect(x - 1, y - 1, w + 2, h + 2, colour::axis);

  double step = 1;
  const std::vector<double> ticks =
      vmax > vmin ? colorbar_ticks(vmin, vmax, step) : std::vector<double>{vmin};
  const int tick_x = x + w + 1, label_x = tick_x + 5 * s;
  int widest = 0;
  for (double v : ticks) {
    const int row = y + static_cast<int>(std::lround((1.0 - unit_position(v, vmin, vmax)) * (h - 1)));
    canvas.fill_rect(tick_x, row, 3 * s, 1, colour::axis);
    const std::string text = vmax > vmin ? format_tick(v, step) : format_number(v);
    canvas.text(label_x, row - (7 * s) / 2, text, colour::text, s);
    widest = std::max(widest, Canvas::text_width(text, s));
  }
  int right = label_x + widest;
  if (!label.empty()) {
    const int label_left = right + 6 * s;
    canvas.text_vertical(label_left, y + (h - Canvas::text_width(label, s)) / 2, label, colour::text, s);
    right = label_left + Canvas::text_height(s);
  }
  return right;
}

}  // namespace gc::plot
