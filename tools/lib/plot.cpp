// plot.cpp: canvas primitives, PNG output, colour maps, number formatting and
// ticks, lat-lon fields with colour bars, line charts and stacked area charts.
//
// Charts share one layout routine (axes_layout) so that the two chart kinds
// read alike: title on top at twice the tick-label scale, vertical y label on
// the left, legend below the x label, light grid under the data. A chart's
// x axis spans exactly the data; its y axis is widened to nice tick bounds.
#include "tools/lib/plot.h"

#include <stb/stb_image_write.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace gc::plot {

std::string to_string(Rgb colour) {
  return "rgb(" + std::to_string(colour.r) + ", " + std::to_string(colour.g) + ", " +
         std::to_string(colour.b) + ")";
}

Rgb category_colour(size_t index) {
  static constexpr Rgb kPalette[10] = {
      {55, 126, 184}, {255, 127, 0},  {77, 175, 74},   {228, 26, 28},  {152, 78, 163},
      {166, 86, 40},  {247, 129, 191}, {120, 120, 120}, {190, 190, 40}, {30, 180, 200},
  };
  return kPalette[index % 10];
}

// ---- canvas ---------------------------------------------------------------------
Canvas::Canvas(int width, int height, Rgb background) : width_(width), height_(height) {
  if (width < 1 || height < 1 || width > 16384 || height > 16384) {
    throw std::invalid_argument("Canvas: size must be 1..16384 per side, got " +
                                std::to_string(width) + " x " + std::to_string(height));
  }
  rgb_.resize(static_cast<size_t>(width) * height * 3);
  for (size_t i = 0; i < rgb_.size(); i += 3) {
    rgb_[i] = background.r;
    rgb_[i + 1] = background.g;
    rgb_[i + 2] = background.b;
  }
}

void Canvas::set_pixel(int x, int y, Rgb colour) {
  if (x < 0 || y < 0 || x >= width_ || y >= height_) return;
  uint8_t* p = &rgb_[(static_cast<size_t>(y) * width_ + x) * 3];
  p[0] = colour.r;
  p[1] = colour.g;
  p[2] = colour.b;
}

Rgb Canvas::pixel(int x, int y) const {
  if (x < 0 || y < 0 || x >= width_ || y >= height_) {
    throw std::out_of_range("Canvas::pixel: (" + std::to_string(x) + ", " + std::to_string(y) +
                            ") is outside " + std::to_string(width_) + " x " +
                            std::to_string(height_));
  }
  const uint8_t* p = &rgb_[(static_cast<size_t>(y) * width_ + x) * 3];
  return Rgb{p[0], p[1], p[2]};
}

void Canvas::fill_rect(int x, int y, int w, int h, Rgb colour) {
  // 64-bit ends so that huge rectangles cannot overflow before clipping.
  const int64_t x0 = std::max<int64_t>(x, 0), y0 = std::max<int64_t>(y, 0);
  const int64_t x1 = std::min<int64_t>(int64_t{x} + w, width_);
  const int64_t y1 = std::min<int64_t>(int64_t{y} + h, height_);
  for (int64_t py = y0; py < y1; ++py) {
    for (int64_t px = x0; px < x1; ++px) set_pixel(static_cast<int>(px), static_cast<int>(py), colour);
  }
}

void Canvas::frame_rect(int x, int y, int w, int h, Rgb colour) {
  if (w <= 0 || h <= 0) return;
  fill_rect(x, y, w, 1, colour);
  fill_rect(x, y + h - 1, w, 1, colour);
  fill_rect(x, y, 1, h, colour);
  fill_rect(x + w - 1, y, 1, h, colour);
}

namespace {

// Liang-Barsky: shrinks the segment to the part inside the box; false if none.
bool clip_segment(double& x0, double& y0, double& x1, double& y1, double xmin, double ymin,
                  double xmax, double ymax) {
  const double dx = x1 - x0, dy = y1 - y0;
  double t0 = 0, t1 = 1;
  const double p[4] = {-dx, dx, -dy, dy};
  const double q[4] = {x0 - xmin, xmax - x0, y0 - ymin, ymax - y0};
  for (int i = 0; i < 4; ++i) {
    if (p[i] == 0) {
      if (q[i] < 0) return false;
      continue;
    }
    const double t = q[i] / p[i];
    if (p[i] < 0) t0 = std::max(t0, t);
    else t1 = std::min(t1, t);
    if (t0 > t1) return false;
  }
  const double sx = x0, sy = y0;
  x0 = sx + t0 * dx;
  y0 = sy + t0 * dy;
  x1 = sx + t1 * dx;
  y1 = sy + t1 * dy;
  return true;
}

bool all_finite(double a, double b, double c, double d) {
  return std::isfinite(a) && std::isfinite(b) && std::isfinite(c) && std::isfinite(d);
}

void check_thickness(int thickness) {
  if (thickness < 1 || thickness > 32) {
    throw std::invalid_argument("Canvas::line: thickness must be 1..32, got " +
                                std::to_string(thickness));
  }
}

}  // namespace

void Canvas::line(double x0, double y0, double x1, double y1, Rgb colour, int thickness) {
  check_thickness(thickness);
  if (!all_finite(x0, y0, x1, y1)) return;
  const double pad = thickness + 1;
  if (!clip_segment(x0, y0, x1, y1, -pad, -pad, width_ + pad, height_ + pad)) return;
  int ix0 = static_cast<int>(std::lround(x0)), iy0 = static_cast<int>(std::lround(y0));
  const int ix1 = static_cast<int>(std::lround(x1)), iy1 = static_cast<int>(std::lround(y1));
  const int dx = std::abs(ix1 - ix0), dy = -std::abs(iy1 - iy0);
  const int step_x = ix0 < ix1 ? 1 : -1, step_y = iy0 < iy1 ? 1 : -1;
  const int pen_offset = (thickness - 1) / 2;
  int error = dx + dy;
  for (;;) {
    fill_rect(ix0 - pen_offset, iy0 - pen_offset, thickness, thickness, colour);
    if (ix0 == ix1 && iy0 == iy1) break;
    const int doubled = 2 * error;
    if (doubled >= dy) {
      error += dy;
      ix0 += step_x;
    }
    if (doubled <= dx) {
      error += dx;
      iy0 += step_y;
    }
  }
}

void Canvas::dashed_line(double x0, double y0, double x1, double y1, Rgb colour, int dash_px,
                         int gap_px, int thickness) {
  check_thickness(thickness);
  if (dash_px < 1 || gap_px < 0) {
    throw std::invalid_argument("Canvas::dashed_line: need dash_px >= 1 and gap_px >= 0");
  }
  if (!all_finite(x0, y0, x1, y1)) return;
  const double pad = thickness + 1;
  if (!clip_segment(x0, y0, x1, y1, -pad, -pad, width_ + pad, height_ + pad)) return;
  const double length = std::hypot(x1 - x0, y1 - y0);
  if (length == 0) {
    line(x0, y0, x1, y1, colour, thickness);
    return;
  }
  const double ux = (x1 - x0) / length, uy = (y1 - y0) / length;
  for (double s = 0; s < length; s += dash_px + gap_px) {
    const double e = std::min(length, s + dash_px - 1);
    line(x0 + ux * s, y0 + uy * s, x0 + ux * e, y0 + uy * e, colour, thickness);
  }
}

void Canvas::save_png(const std::string& path) const {
  static std::atomic<unsigned> temp_counter{0};
  const std::string temp_path = path + ".tmp." + std::to_string(getpid()) + "." +
                                std::to_string(temp_counter.fetch_add(1));
  auto fail = [&](const std::string& why) {
    std::remove(temp_path.c_str());
    throw std::runtime_error("cannot write PNG '" + path + "': " + why);
  };
  std::FILE* file = std::fopen(temp_path.c_str(), "wb");
  if (file == nullptr) fail(std::string("cannot create '") + temp_path + "': " + std::strerror(errno));

  struct Sink {
    std::FILE* file;
    bool ok;
  } sink{file, true};
  auto write_chunk = [](void* context, void* data, int size) {
    auto* s = static_cast<Sink*>(context);
    if (s->ok && std::fwrite(data, 1, static_cast<size_t>(size), s->file) != static_cast<size_t>(size)) {
      s->ok = false;
    }
  };
  const int encoded = stbi_write_png_to_func(write_chunk, &sink, width_, height_, 3, rgb_.data(),
                                             width_ * 3);
  // Flush and sync before the rename: a crash must leave the old file or the
  // complete new one, never a truncated picture under the final name.
  const bool flushed = std::fflush(file) == 0 && fsync(fileno(file)) == 0;
  const int write_errno = errno;
  const bool closed = std::fclose(file) == 0;
  if (!encoded) fail("PNG encoding failed");
  if (!sink.ok || !flushed || !closed) fail(std::strerror(sink.ok && flushed ? errno : write_errno));
  if (std::rename(temp_path.c_str(), path.c_str()) != 0) {
    fail(std::string("rename from '") + temp_path + "' failed: " + std::strerror(errno));
  }
}

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

// ---- numbers and ticks --------------------------------------------------------
namespace {

// 1, 2, 5 or 10 times a power of ten, the nearest such to x (x > 0).
double nice_number(double x) {
  const double power = std::pow(10.0, std::floor(std::log10(x)));
  const double fraction = x / power;
  const double nice = fraction < 1.5 ? 1 : fraction < 3 ? 2 : fraction < 7 ? 5 : 10;
  return nice * power;
}

std::string trim_zeros(std::string s) {
  if (s.find('.') == std::string::npos) return s;
  while (!s.empty() && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

// "1.50e+06" -> "1.5e6", "2e-05" -> "2e-5".
std::string tidy_exponent(std::string s) {
  const size_t e = s.find('e');
  if (e == std::string::npos) return s;
  std::string mantissa = trim_zeros(s.substr(0, e));
  const char sign = s[e + 1];
  std::string digits = s.substr(e + 2);
  while (digits.size() > 1 && digits[0] == '0') digits.erase(0, 1);
  return mantissa + "e" + (sign == '-' ? "-" : "") + digits;
}

std::string printf_string(const char* format, int precision, double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, format, precision, value);
  return buffer;
}

}  // namespace

std::vector<double> nice_ticks(double lo, double hi, int target_count) {
  if (!std::isfinite(lo) || !std::isfinite(hi) || lo > hi) {
    throw std::invalid_argument("nice_ticks: need finite lo <= hi, got [" + format_number(lo) +
                                ", " + format_number(hi) + "]");
  }
  target_count = std::clamp(target_count, 2, 50);
  if (lo == hi) {
    const double half_width = lo == 0 ? 1 : std::abs(lo) * 0.1;
    lo -= half_width;
    hi += half_width;
  }
  const double span = hi - lo;
  if (!std::isfinite(span)) throw std::invalid_argument("nice_ticks: range too large");
  const double step = nice_number(span / (target_count - 1));
  // The tolerance keeps 0.30000000000000004 / 0.1 from adding a tick below.
  const double first = std::floor(lo / step + 1e-9), last = std::ceil(hi / step - 1e-9);
  std::vector<double> ticks;
  for (double k = first; k <= last + 0.5; k += 1) {
    const double value = k * step;
    ticks.push_back(std::abs(value) < step * 1e-9 ? 0.0 : value);
  }
  return ticks;
}

std::string format_tick(double value, double step) {
  if (!std::isfinite(value)) return std::isnan(value) ? "nan" : (value > 0 ? "inf" : "-inf");
  step = std::abs(step);
  if (step == 0 || !std::isfinite(step)) return format_number(value);
  if (std::abs(value) < step * 1e-9) return "0";
  if (std::max(std::abs(value), step) >= 1e6 || step < 1e-4) {
    const int digits = std::clamp(
        static_cast<int>(std::floor(std::log10(std::abs(value))) - std::floor(std::log10(step) + 1e-9)),
        0, 15);
    return tidy_exponent(printf_string("%.*e", digits, value));
  }
  int decimals = 0;
  while (decimals < 10) {
    const double scaled = step * std::pow(10.0, decimals);
    if (std::abs(scaled - std::round(scaled)) < 1e-6 * scaled) break;
    ++decimals;
  }
  return printf_string("%.*f", decimals, value);
}


std::string format_number(double value) {
  if (!std::isfinite(value)) return std::isnan(value) ? "nan" : (value > 0 ? "inf" : "-inf");
  if (value == 0) return "0";  // also turns -0 into "0"
  return tidy_exponent(printf_string("%.*g", 3, value));
}

std::string format_bytes_short(double bytes) {
  if (!std::isfinite(bytes)) return format_number(bytes) + " B";
  static const char* const kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  const std::string sign = bytes < 0 ? "-" : "";
  double value = std::abs(bytes);
  int unit = 0;
  while (unit < 5 && value >= 1024) {
    value /= 1024;
    ++unit;
  }
  if (unit == 0) return sign + printf_string("%.*f", 0, value) + " B";
  // Up to 3 significant digits; 1023.7 KiB rounds to 1024 KiB, so step up once more.
  int decimals = value < 10 ? 2 : value < 100 ? 1 : 0;
  if (unit < 5 && std::round(value) >= 1024) {
    value /= 1024;
    ++unit;
    decimals = 2;
  }
  return sign + trim_zeros(printf_string("%.*f", decimals, value)) + " " + kUnits[unit];
}

ValueRange finite_range(const float* values, size_t count) {
  if (values == nullptr && count > 0) throw std::invalid_argument("finite_range: null values");
  bool any = false;
  ValueRange range;
  for (size_t i = 0; i < count; ++i) {
    const double v = values[i];
    if (!std::isfinite(v)) continue;
    if (!any || v < range.min) range.min = v;
    if (!any || v > range.max) range.max = v;
    any = true;
  }
  return any ? range : ValueRange{0, 1};
}

ValueRange symmetric_range(const float* values, size_t count) {
  if (values == nullptr && count > 0) throw std::invalid_argument("symmetric_range: null values");
  double largest = 0;
  for (size_t i = 0; i < count; ++i) {
    if (std::isfinite(values[i])) largest = std::max(largest, std::abs(static_cast<double>(values[i])));
  }
  if (largest == 0) largest = 1;
  return ValueRange{-largest, largest};
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

// ---- chart layout -------------------------------------------------------------
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

namespace {

struct Tick {
  double value;
  std::string label;
};

struct LegendEntry {
  std::string name;
  Rgb colour;
  bool is_line;
};

// Pixel geometry shared by both chart kinds.
struct Axes {
  Rect area;
  int scale = 1;  // tick and label text; the title uses scale + 1
  int margin = 10;
  Rect plot;
  std::vector<std::pair<int, int>> legend_positions;  // top-left of each entry
};

int legend_entry_width(const LegendEntry& entry, int s) {
  return 14 * s + Canvas::text_width(entry.name, s) + 16 * s;
}

// Plot rectangle from the area minus title, y label, y tick labels, x tick
// labels, x label and the legend rows (entries wrap to the plot's width).
Axes layout_axes(Rect area, const ChartText& text, int widest_y_tick_px,
                 const std::vector<LegendEntry>& legend) {
  Axes axes;
  axes.area = area;
  const int s = axes.scale = (area.w >= 1200 && area.h >= 700) ? 2 : 1;
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

// Ticks strictly inside [lo, hi] whose labels do not collide across `length_px`.
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

void draw_legend_swatch(Canvas& canvas, int x, int y, const LegendEntry& entry, int s) {
  const int cap = 7 * s;
  if (entry.is_line) canvas.fill_rect(x, y + cap / 2 - s, 12 * s, 2 * s + 1, entry.colour);
  else canvas.fill_rect(x, y, 12 * s, cap, entry.colour);
}

// Frame, tick marks, tick labels, axis labels, title and legend.
void draw_decorations(Canvas& canvas, const Axes& axes, const ChartLayout& layout,
                      const std::vector<Tick>& x_ticks, const std::vector<Tick>& y_ticks,
                      const ChartText& text, const std::vector<LegendEntry>& legend) {
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

// Log axis bounds snapped to 1, 2, 5 x 10^k around the data, with decades as
// major ticks (plus 2 and 5 multiples over short spans) and the rest as minor
// grid lines.
struct LogAxis {
  double lo, hi;
  std::vector<double> major, minor;
};

LogAxis log_axis(double data_min, double data_max) {
  auto decade = [](double v) { return std::floor(std::log10(v) + 1e-9); };
  auto snap_down = [&](double v) {
    const double p = std::pow(10.0, decade(v)), m = v / p * (1 + 1e-9);
    return (m >= 5 ? 5 : m >= 2 ? 2 : 1) * p;
  };
  auto snap_up = [&](double v) {
    const double p = std::pow(10.0, decade(v)), m = v / p * (1 - 1e-9);
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
  };
  LogAxis axis{snap_down(data_min), snap_up(data_max), {}, {}};
  if (axis.hi <= axis.lo) axis.hi = snap_up(axis.lo * 1.5);
  const int e_lo = static_cast<int>(decade(axis.lo)), e_hi = static_cast<int>(std::ceil(std::log10(axis.hi) - 1e-9));
  const int span = e_hi - e_lo;
  const int decade_step = std::max(1, (span + 7) / 8);
  auto inside = [&](double v) { return v >= axis.lo * (1 - 1e-9) && v <= axis.hi * (1 + 1e-9); };
  int decades_inside = 0;
  for (int e = e_lo; e <= e_hi; ++e) decades_inside += inside(std::pow(10.0, e)) ? 1 : 0;
  // Fewer than 3 labelled decades cannot be read: label the 2s and 5s too.
  const bool label_2_and_5 = decades_inside < 3;
  for (int e = e_lo; e <= e_hi; ++e) {
    const double p = std::pow(10.0, e);
    for (int m = 1; m <= 9; ++m) {
      const double v = m * p;
      if (!inside(v)) continue;
      const bool major = (m == 1 && (e - e_lo) % decade_step == 0) || (label_2_and_5 && (m == 2 || m == 5));
      if (major) axis.major.push_back(v);
      else if (span <= 6) axis.minor.push_back(v);
    }
  }
  return axis;
}

std::string log_tick_label(double v) {
  const int e = static_cast<int>(std::floor(std::log10(v) + 1e-9));
  if (e >= -3 && e <= 4) return format_tick(v, std::pow(10.0, e));
  return tidy_exponent(printf_string("%.*e", 0, v));
}

}  // namespace

// ---- line chart -----------------------------------------------------------------
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
  const int s = (area.w >= 1200 && area.h >= 700) ? 2 : 1;
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

// ---- stacked area chart ---------------------------------------------------------
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
  const int s = (area.w >= 1200 && area.h >= 700) ? 2 : 1;
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
