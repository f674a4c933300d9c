// plot.h: a small raster plotting library that writes PNG files (through stb):
// an RGB Canvas with clipped primitives and an embedded 5x7 bitmap font (plus a
// descender row), colour maps, lat-lon field maps with colour bars, line charts
// (loss curves) and stacked area charts (the memory timeline by category).
//
// Pixel coordinates are integers, origin top-left, y growing down. Every drawing
// call clips to the canvas, so drawing partly or wholly outside it is harmless;
// only malformed inputs (mismatched lengths, inverted or NaN ranges, bad scales)
// throw std::invalid_argument. Charts return their layout so callers (and tests)
// can map data values to pixels and annotate further.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace gc::plot {

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
  friend bool operator==(Rgb a, Rgb b) { return a.r == b.r && a.g == b.g && a.b == b.b; }
  friend bool operator!=(Rgb a, Rgb b) { return !(a == b); }
};
std::string to_string(Rgb colour);  // "rgb(12, 34, 56)"

namespace colour {
inline constexpr Rgb white{255, 255, 255};
inline constexpr Rgb black{0, 0, 0};
inline constexpr Rgb text{30, 30, 30};
inline constexpr Rgb axis{90, 90, 90};
inline constexpr Rgb grid{228, 228, 228};
inline constexpr Rgb missing{150, 150, 150};  // NaN cells of a field
}  // namespace colour

// A qualitative palette of 10 distinguishable colours; index wraps around.
Rgb category_colour(size_t index);

struct Rect {
  int x = 0, y = 0, w = 0, h = 0;
  bool contains(int px, int py) const { return px >= x && px < x + w && py >= y && py < y + h; }
};

class Canvas {
 public:
  // 1 <= width, height <= 16384; throws std::invalid_argument otherwise.
  Canvas(int width, int height, Rgb background = colour::white);

  int width() const { return width_; }
  int height() const { return height_; }

  void set_pixel(int x, int y, Rgb colour);  // ignored outside the canvas
  Rgb pixel(int x, int y) const;             // throws std::out_of_range outside
  void fill_rect(int x, int y, int w, int h, Rgb colour);
  // 1-px outline on the rectangle's own border pixels.
  void frame_rect(int x, int y, int w, int h, Rgb colour);
  // Straight line through pixel centres with a square pen of `thickness` px
  // (1..32); endpoints may lie anywhere, the segment is clipped first. NaN or
  // infinite endpoints draw nothing.
  void line(double x0, double y0, double x1, double y1, Rgb colour, int thickness = 1);
  void dashed_line(double x0, double y0, double x1, double y1, Rgb colour, int dash_px = 6,
                   int gap_px = 4, int thickness = 1);

  // Text in the embedded font, ASCII 32..126 (anything else draws as '?'),
  // single line, `scale` 1..4 (each glyph pixel becomes scale x scale). (x, y)
  // is the top-left of the box text_width(s) x text_height(); glyph pixels
  // never leave that box.
  void text(int x, int y, const std::string& s, Rgb colour, int scale = 1);
  // The same text rotated 90 degrees counter-clockwise (reads bottom to top),
  // in the box text_height(scale) wide and text_width(s, scale) tall at (x, y).
  void text_vertical(int x, int y, const std::string& s, Rgb colour, int scale = 1);
  static int text_width(const std::string& s, int scale = 1);
  static int text_height(int scale = 1);  // cap height plus descender row

  // Writes the canvas as an 8-bit RGB PNG: to a temporary file beside `path`,
  // then renamed over it, so readers never see a half-written picture. Throws
  // std::runtime_error naming the path on any failure.
  void save_png(const std::string& path) const;

  // Row-major RGB bytes. // [height, width, 3]
  const std::vector<uint8_t>& pixels() const { return rgb_; }

 private:
  int width_;
  int height_;
  std::vector<uint8_t> rgb_;  // [height, width, 3]
};

// ---- colour maps ---------------------------------------------------------------
enum class Map {
  sequential,  // perceptually ordered dark purple -> blue -> green -> yellow (viridis-like)
  diverging,   // blue -> white (at 0.5) -> red, for signed fields and errors
};
// t is clamped to [0, 1]; NaN gives colour::missing.
Rgb colormap(Map map, double t);

// ---- numbers and ticks --------------------------------------------------------
// Ascending "nice" ticks (1, 2, 5 x 10^k steps, about target_count of them)
// whose first <= lo and last >= hi. lo == hi widens the range; throws on NaN,
// infinities or lo > hi.
std::vector<double> nice_ticks(double lo, double hi, int target_count);
// A tick label with just the decimals the step needs ("0.25", "1500", "2e-05"
// style for very small or large values). -0 prints as "0".
std::string format_tick(double value, double step);
// Short general-purpose number: 3 significant digits ("0.0123", "12.3", "1.23e+06").
std::string format_number(double value);
// Bytes in binary units with up to 3 significant digits: "512 B", "1.5 KiB",
// "12.3 MiB", "256 GiB", "1.2 TiB".
std::string format_bytes_short(double bytes);

struct ValueRange {
  double min = 0, max = 1;
};
// Min and max of the finite values; {0, 1} when there are none.
ValueRange finite_range(const float* values, size_t count);  // [count]
// {-m, m} with m the largest finite |value| ({-1, 1} when all are zero or NaN):
// the range for Map::diverging so that 0 is white.
ValueRange symmetric_range(const float* values, size_t count);  // [count]

// ---- fields ------------------------------------------------------------------------
// A lat-lon field (row 0 = north, drawn at the top) scaled by nearest neighbour
// into the w x h rectangle at (x, y), plus a 1-px frame just outside it. Values
// map linearly from [vmin, vmax] to the colour map (vmin == vmax maps to its
// middle); NaN cells are colour::missing. Throws on rows/cols < 1, null values,
// vmin > vmax or non-finite bounds.
void draw_field(Canvas& canvas, int x, int y, int w, int h, const float* values,  // [rows, cols]
                int rows, int cols, double vmin, double vmax, Map map);

// A vertical colour bar (vmax at the top) in the w x h rectangle at (x, y), with
// 3 to 5 tick labels to its right and `label` written vertically beyond them.
// Returns the x one past the rightmost pixel drawn, for laying out what follows.
int draw_colorbar(Canvas& canvas, int x, int y, int w, int h, double vmin, double vmax, Map map,
                  const std::string& label, int text_scale = 1);

// ---- charts --------------------------------------------------------------------------
struct ChartText {
  std::string title;
  std::string x_label;
  std::string y_label;
};

// Where a chart put its data: the plot rectangle and the axis ranges it maps.
struct ChartLayout {
  Rect plot;
  double x_min = 0, x_max = 1;
  double y_min = 0, y_max = 1;  // for a log axis, the values (not their logarithms)
  bool log_y = false;
  double px_x(double x) const;  // pixel column (fractional) of data x
  double px_y(double y) const;  // pixel row (fractional) of data y
};

struct Series {
  std::string name;
  Rgb colour;
  std::vector<double> x;  // [points]
  std::vector<double> y;  // [points]
};

// Axes with nice ticks and a light grid, one polyline per series (non-finite
// points, and non-positive ones on a log axis, break the line), a legend below
// the axes and the title above. Text is larger on large areas. Throws when a
// series' x and y lengths differ or the area is too small to hold the axes.
ChartLayout line_chart(Canvas& canvas, Rect area, const std::vector<Series>& series,
                       const ChartText& text, bool log_y = false);

struct AreaLayer {
  std::string name;
  Rgb colour;
  std::vector<double> y;  // [points], >= 0
};

struct StackedAreaOptions {
  ChartText text;
  std::function<std::string(double)> format_x;  // empty: format_tick
  std::function<std::string(double)> format_y;  // empty: format_tick; e.g. format_bytes_short
  // Ticks at nice multiples of the largest power of 1024 below the top of the
  // axis, so byte axes read "256 MiB, 512 MiB, ..." rather than "2e+08".
  bool binary_y_ticks = false;
  std::optional<AreaLayer> overlay;  // drawn as a line over the areas (e.g. reserved bytes)
  bool mark_peak = true;
  std::string peak_label;  // the box reads "peak <format_y(total)>: <peak_label>"
};

struct StackedAreaResult {
  ChartLayout layout;
  size_t peak_index = 0;  // first index where the stacked total is largest
  double peak_total = 0;
};

// Layers stacked bottom to top over x (non-decreasing, e.g. time or event
// index), drawn as steps: a value holds until the next x. Where many points
// share a pixel column, the column shows the point with the largest total, so
// no peak is ever lost by downsampling. The peak is marked by a dashed vertical
// line and a labelled box kept inside the area. Throws on empty x, lengths that
// differ from x, decreasing x, or negative/non-finite layer values.
StackedAreaResult stacked_area_chart(Canvas& canvas, Rect area, const std::vector<double>& x,
                                     const std::vector<AreaLayer>& layers,
                                     const StackedAreaOptions& options);

}  // namespace gc::plot
