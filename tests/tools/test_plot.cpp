// test_plot.cpp: the PNG plotting library: canvas primitives set exactly the
// pixels they should, glyphs are distinct and stay in their boxes, colour maps
// hit their documented colours, PNG files decode back to the same pixels, and
// charts colour the regions their data says (and nothing outside their area).
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include "tools/plot/plot.h"

// The decoder is only for reading pictures back here; static so it cannot clash
// with any other definition in the library.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wall"
#pragma GCC diagnostic ignored "-Wextra"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#include <stb/stb_image.h>
#pragma GCC diagnostic pop

namespace gc::plot {
void PrintTo(Rgb c, std::ostream* os) { *os << to_string(c); }
}  // namespace gc::plot

namespace {

using namespace gc::plot;

const Rgb kRed{220, 20, 30};
const Rgb kBlue{20, 40, 200};

// Pixels (x, y) that differ from `background`.
std::set<std::pair<int, int>> painted(const Canvas& canvas, Rgb background = colour::white) {
  std::set<std::pair<int, int>> result;
  for (int y = 0; y < canvas.height(); ++y) {
    for (int x = 0; x < canvas.width(); ++x) {
      if (canvas.pixel(x, y) != background) result.insert({x, y});
    }
  }
  return result;
}

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "gc_plot_test_XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path = pattern;
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

std::vector<unsigned char> read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<unsigned char>(std::istreambuf_iterator<char>(in), {});
}

uint32_t big_endian_u32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

// ---- canvas -------------------------------------------------------------------------
TEST(PlotCanvas, FillRectSetsExactlyItsPixelsAndClips) {
  Canvas canvas(31, 33);
  canvas.fill_rect(3, 4, 5, 6, kRed);
  canvas.fill_rect(28, 30, 10, 10, kBlue);  // partly outside: clipped to 3 x 3
  canvas.fill_rect(-50, -50, 10, 10, kBlue);  // wholly outside: nothing
  const auto set = painted(canvas);
  EXPECT_EQ(set.size(), 5u * 6u + 3u * 3u);
  for (const auto& [x, y] : set) {
    const bool in_red = x >= 3 && x < 8 && y >= 4 && y < 10;
    EXPECT_EQ(canvas.pixel(x, y), in_red ? kRed : kBlue) << x << "," << y;
  }
  EXPECT_THROW(canvas.pixel(31, 0), std::out_of_range);
  EXPECT_THROW(Canvas(0, 5), std::invalid_argument);
}

TEST(PlotCanvas, LinesSetTheirPixelsAndClip) {
  Canvas canvas(33, 31);
  canvas.line(2, 5, 20, 5, kRed);
  std::set<std::pair<int, int>> expected;
  for (int x = 2; x <= 20; ++x) expected.insert({x, 5});
  EXPECT_EQ(painted(canvas), expected);

  Canvas diagonal(33, 31);
  diagonal.line(-100, -100, 200, 200, kBlue);  // clipped to the canvas
  expected.clear();
  for (int i = 0; i < 31; ++i) expected.insert({i, i});
  EXPECT_EQ(painted(diagonal), expected);

  Canvas thick(33, 31);
  thick.line(4, 10, 12, 10, kRed, 3);  // a 3-px pen centred on row 10
  expected.clear();
  for (int x = 3; x <= 13; ++x) {
    for (int y = 9; y <= 11; ++y) expected.insert({x, y});
  }
  EXPECT_EQ(painted(thick), expected);

  Canvas nothing(33, 31);
  nothing.line(NAN, 0, 10, 10, kRed);
  nothing.line(-5, -5, -1, -20, kRed);
  EXPECT_TRUE(painted(nothing).empty());
}

TEST(PlotCanvas, DashedLineLeavesGaps) {
  Canvas canvas(65, 5);
  canvas.dashed_line(0, 2, 64, 2, kRed, 6, 4);
  const auto set = painted(canvas);
  for (const auto& [x, y] : set) {
    EXPECT_EQ(y, 2);
    EXPECT_LT(x % 10, 6) << "pixel " << x << " lies in a gap";
  }
  EXPECT_EQ(set.size(), 6u * 6u + 5u);  // dashes at 0, 10, ..., 60; the last one ends at 64
}

TEST(PlotCanvas, TextStaysInsideItsBox) {
  const std::string message = "Peak 12.3 GiB: edge_mlp[7] {g,j,p,q,y}";
  for (int scale = 1; scale <= 4; ++scale) {
    Canvas canvas(Canvas::text_width(message, scale) + 40, Canvas::text_height(scale) + 40);
    canvas.text(20, 20, message, kRed, scale);
    const Rect box{20, 20, Canvas::text_width(message, scale), Canvas::text_height(scale)};
    EXPECT_EQ(box.w, (6 * static_cast<int>(message.size()) - 1) * scale);
    const auto set = painted(canvas);
    EXPECT_GT(set.size(), message.size() * 5 * scale * scale) << "scale " << scale;
    for (const auto& [x, y] : set) EXPECT_TRUE(box.contains(x, y)) << x << "," << y;
    // The descender row is used (g, j, p, q, y), the row below the box is not.
    bool descender = false;
    for (const auto& [x, y] : set) descender |= y >= box.y + 7 * scale;
    EXPECT_TRUE(descender);
  }
  EXPECT_THROW(Canvas::text_width("x", 5), std::invalid_argument);
}

TEST(PlotCanvas, EveryGlyphIsDistinctAndOnlySpaceIsBlank) {
  std::set<std::set<std::pair<int, int>>> shapes;
  for (int code = 32; code <= 126; ++code) {
    Canvas canvas(5, 8);
    canvas.text(0, 0, std::string(1, static_cast<char>(code)), colour::black);
    const auto set = painted(canvas);
    EXPECT_EQ(set.empty(), code == ' ') << "character " << code;
    EXPECT_TRUE(shapes.insert(set).second) << "character '" << static_cast<char>(code)
                                           << "' looks like an earlier one";
  }
}

TEST(PlotCanvas, VerticalTextIsHorizontalTextRotatedCounterClockwise) {
  const std::string message = "loss (m2/s2)";
  const int w = Canvas::text_width(message, 2), h = Canvas::text_height(2);
  Canvas horizontal(w, h), vertical(h + 3, w + 5);
  horizontal.text(0, 0, message, kBlue, 2);
  vertical.text_vertical(1, 2, message, kBlue, 2);
  int matched = 0;
  for (int v = 0; v < h; ++v) {
    for (int u = 0; u < w; ++u) {
      ASSERT_EQ(vertical.pixel(1 + v, 2 + w - 1 - u), horizontal.pixel(u, v)) << u << "," << v;
      matched += horizontal.pixel(u, v) == kBlue;
    }
  }
  EXPECT_GT(matched, 0);
  EXPECT_EQ(painted(vertical).size(), static_cast<size_t>(matched));  // nothing outside the box
}

// ---- colour maps --------------------------------------------------------------------
TEST(PlotColormap, EndsMiddleClampAndNan) {
  EXPECT_EQ(colormap(Map::sequential, 0.0), (Rgb{68, 1, 84}));
  EXPECT_EQ(colormap(Map::sequential, 0.5), (Rgb{33, 144, 141}));
  EXPECT_EQ(colormap(Map::sequential, 1.0), (Rgb{253, 231, 37}));
  EXPECT_EQ(colormap(Map::diverging, 0.0), (Rgb{30, 60, 150}));
  EXPECT_EQ(colormap(Map::diverging, 0.5), colour::white);
  EXPECT_EQ(colormap(Map::diverging, 1.0), (Rgb{165, 20, 35}));
  EXPECT_EQ(colormap(Map::sequential, -3.0), colormap(Map::sequential, 0.0));
  EXPECT_EQ(colormap(Map::diverging, 7.0), colormap(Map::diverging, 1.0));
  EXPECT_EQ(colormap(Map::sequential, NAN), colour::missing);
}

TEST(PlotColormap, SequentialLightnessRisesAndDivergingIsBlueBelowRedAbove) {
  auto luminance = [](Rgb c) { return 0.2126 * c.r + 0.7152 * c.g + 0.0722 * c.b; };
  double previous = -1;
  for (int i = 0; i <= 64; ++i) {
    const double current = luminance(colormap(Map::sequential, i / 64.0));
    EXPECT_GT(current, previous) << "t = " << i / 64.0;
    previous = current;
  }
  for (int i = 0; i < 32; ++i) {
    const Rgb low = colormap(Map::diverging, 0.5 - i / 64.0), high = colormap(Map::diverging, 0.5 + i / 64.0);
    EXPECT_GE(low.b, low.r);
    EXPECT_GE(high.r, high.b);
  }
}

// ---- PNG -------------------------------------------------------------------------------
TEST(PlotPng, WritesSignatureSizeAndPixelsAtomically) {
  TempDir dir;
  Canvas canvas(37, 21, Rgb{10, 20, 30});
  canvas.fill_rect(5, 6, 7, 8, kRed);
  canvas.text(1, 1, "gc", colour::white);
  const auto path = dir.path / "picture.png";
  canvas.save_png(path.string());

  const std::vector<unsigned char> bytes = read_file(path);
  ASSERT_GE(bytes.size(), 33u);
  const std::array<unsigned char, 8> signature = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  EXPECT_TRUE(std::equal(signature.begin(), signature.end(), bytes.begin()));
  EXPECT_EQ(std::string(bytes.begin() + 12, bytes.begin() + 16), "IHDR");
  EXPECT_EQ(big_endian_u32(&bytes[16]), 37u);
  EXPECT_EQ(big_endian_u32(&bytes[20]), 21u);

  int width = 0, height = 0, channels = 0;
  unsigned char* decoded = stbi_load_from_memory(bytes.data(), static_cast<int>(bytes.size()), &width,
                                                 &height, &channels, 3);
  ASSERT_NE(decoded, nullptr);
  EXPECT_EQ(std::vector<uint8_t>(decoded, decoded + 37 * 21 * 3), canvas.pixels());
  stbi_image_free(decoded);

  // Saving again replaces the file and leaves no temporary beside it.
  Canvas second(5, 3);
  second.save_png(path.string());
  EXPECT_EQ(big_endian_u32(&read_file(path)[16]), 5u);
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path), {}), 1);
}

TEST(PlotPng, UnwritablePathThrowsNamingThePath) {
  TempDir dir;
  const std::string path = (dir.path / "no_such_dir" / "chart.png").string();
  Canvas canvas(4, 4);
  try {
    canvas.save_png(path);
    FAIL() << "save_png did not throw";
  } catch (const std::runtime_error& error) {
    EXPECT_NE(std::string(error.what()).find(path), std::string::npos) << error.what();
  }
  // A directory in place of the file: the rename fails, the temporary is removed.
  std::filesystem::create_directory(dir.path / "taken.png");
  EXPECT_THROW(canvas.save_png((dir.path / "taken.png").string()), std::runtime_error);
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path), {}), 1);
}

// ---- numbers --------------------------------------------------------------------------
TEST(PlotFormat, BytesShort) {
  const double KiB = 1024, MiB = KiB * 1024, GiB = MiB * 1024;
  EXPECT_EQ(format_bytes_short(0), "0 B");
  EXPECT_EQ(format_bytes_short(512), "512 B");
  EXPECT_EQ(format_bytes_short(1.5 * KiB), "1.5 KiB");
  EXPECT_EQ(format_bytes_short(123 * MiB), "123 MiB");
  EXPECT_EQ(format_bytes_short(1.5 * GiB), "1.5 GiB");
  EXPECT_EQ(format_bytes_short(12.34 * GiB), "12.3 GiB");
  EXPECT_EQ(format_bytes_short(2 * GiB), "2 GiB");
  EXPECT_EQ(format_bytes_short(1023.9 * KiB), "1 MiB");
  EXPECT_EQ(format_bytes_short(-256 * MiB), "-256 MiB");
}

TEST(PlotFormat, NiceTicksAndTickLabels) {
  EXPECT_EQ(nice_ticks(0, 9.3, 5), (std::vector<double>{0, 2, 4, 6, 8, 10}));
  EXPECT_EQ(nice_ticks(-3, 3, 4), (std::vector<double>{-4, -2, 0, 2, 4}));
  EXPECT_EQ(format_tick(0.1 + 0.2, 0.1), "0.3");
  EXPECT_EQ(format_tick(-0.0, 1), "0");
  EXPECT_EQ(format_tick(2500, 500), "2500");
  EXPECT_EQ(format_tick(0.25, 0.05), "0.25");
  EXPECT_EQ(format_tick(2e-5, 1e-5), "2e-5");
  EXPECT_EQ(format_tick(1.5e6, 5e5), "1.5e6");
  EXPECT_EQ(format_number(0.012345), "0.0123");
  EXPECT_THROW(nice_ticks(2, 1, 5), std::invalid_argument);
  EXPECT_THROW(nice_ticks(0, NAN, 5), std::invalid_argument);
}

TEST(PlotFormat, NiceTicksCoverTheRangeWithEqualSteps) {
  uint32_t state = 12345;
  auto next = [&]() {
    state = state * 1664525u + 1013904223u;
    return (state >> 8) / double(1 << 24);
  };
  for (int trial = 0; trial < 500; ++trial) {
    const double scale = std::pow(10.0, std::floor(next() * 12) - 6);
    const double lo = (next() - 0.5) * scale, hi = lo + next() * scale;
    const int target = 2 + static_cast<int>(next() * 8);
    const std::vector<double> ticks = nice_ticks(lo, hi, target);
    ASSERT_GE(ticks.size(), 2u);
    EXPECT_LE(ticks.front(), lo);
    EXPECT_GE(ticks.back(), hi);
    EXPECT_LE(ticks.size(), static_cast<size_t>(2 * target + 2)) << lo << " " << hi;
    const double step = ticks[1] - ticks[0];
    for (size_t i = 1; i < ticks.size(); ++i) EXPECT_NEAR(ticks[i] - ticks[i - 1], step, step * 1e-6);
  }
}

// ---- fields --------------------------------------------------------------------------
TEST(PlotField, RowZeroIsNorthNearestNeighbourAndFrame) {
  const float values[2 * 3] = {0, 1, 2,  // north row
                               3, 4, NAN};
  Canvas canvas(40, 30);
  draw_field(canvas, 5, 5, 30, 20, values, 2, 3, 0, 4, Map::sequential);
  for (int row = 0; row < 2; ++row) {
    for (int col = 0; col < 3; ++col) {
      const float v = values[row * 3 + col];
      const Rgb expected = colormap(Map::sequential, std::isnan(v) ? NAN : v / 4.0);
      for (int dy = 0; dy < 10; ++dy) {
        for (int dx = 0; dx < 10; ++dx) {
          ASSERT_EQ(canvas.pixel(5 + col * 10 + dx, 5 + row * 10 + dy), expected) << row << "," << col;
        }
      }
    }
  }
  EXPECT_EQ(canvas.pixel(4, 4), colour::axis);
  EXPECT_EQ(canvas.pixel(35, 25), colour::axis);
  EXPECT_EQ(canvas.pixel(3, 3), colour::white);
  EXPECT_THROW(draw_field(canvas, 0, 0, 10, 10, values, 2, 3, 4, 0, Map::sequential),
               std::invalid_argument);
  EXPECT_THROW(draw_field(canvas, 0, 0, 10, 10, nullptr, 2, 3, 0, 4, Map::sequential),
               std::invalid_argument);
}

TEST(PlotField, ColorbarRunsFromVmaxAtTopToVminAtBottomWithLabels) {
  Canvas canvas(200, 240);
  const int right = draw_colorbar(canvas, 10, 10, 16, 200, -2.5, 7.5, Map::diverging, "error");
  EXPECT_EQ(canvas.pixel(15, 10), colormap(Map::diverging, 1.0));
  EXPECT_EQ(canvas.pixel(15, 209), colormap(Map::diverging, 0.0));
  EXPECT_EQ(canvas.pixel(15, 60), colormap(Map::diverging, 1.0 - 50.0 / 199));
  int text_pixels = 0;
  for (const auto& [x, y] : painted(canvas)) {
    EXPECT_LT(x, right);
    text_pixels += x > 27 && canvas.pixel(x, y) == colour::text;
  }
  EXPECT_GT(text_pixels, 40);
  EXPECT_GT(right, 27 + Canvas::text_width("-2", 1));
}

// ---- charts --------------------------------------------------------------------------
TEST(PlotLineChart, SeriesPassThroughTheirMappedPixelsAndStayInTheArea) {
  Series rising{"rising", kRed, {}, {}};
  for (int i = 0; i <= 33; ++i) {
    rising.x.push_back(i);
    rising.y.push_back(3.0 * i + 1);
  }
  Canvas canvas(900, 600);
  const Rect area{0, 0, 640, 420};
  const ChartLayout layout = line_chart(canvas, area, {rising}, {"title", "x", "y"});
  EXPECT_LE(layout.y_min, 1.0);
  EXPECT_GE(layout.y_max, 100.0);
  for (int i : {3, 17, 30}) {
    const int px = static_cast<int>(std::lround(layout.px_x(i))), py = static_cast<int>(std::lround(layout.px_y(3.0 * i + 1)));
    EXPECT_EQ(canvas.pixel(px, py), kRed) << "point " << i;
  }
  for (const auto& [x, y] : painted(canvas)) EXPECT_TRUE(area.contains(x, y)) << x << "," << y;

  Canvas log_canvas(640, 420);
  const Series decades{"loss", kBlue, {0, 1, 2, 3}, {100, 10, 1, 0.1}};
  const ChartLayout log_layout = line_chart(log_canvas, {0, 0, 640, 420}, {decades}, {}, true);
  EXPECT_TRUE(log_layout.log_y);
  // A straight line on a log axis: the midpoint of the first segment is at 10^1.5.
  const int mid_x = static_cast<int>(std::lround(log_layout.px_x(0.5)));
  const int mid_y = static_cast<int>(std::lround(log_layout.px_y(std::pow(10.0, 1.5))));
  // Rounding the segment's ends may shift its middle by a pixel; a linear axis
  // would put it about 150 px lower.
  bool near_midpoint = false;
  for (int dy = -1; dy <= 1; ++dy) {
    for (int dx = -1; dx <= 1; ++dx) near_midpoint |= log_canvas.pixel(mid_x + dx, mid_y + dy) == kBlue;
  }
  EXPECT_TRUE(near_midpoint);

  EXPECT_THROW(line_chart(canvas, area, {Series{"bad", kRed, {1, 2}, {1}}}, {}), std::invalid_argument);
  EXPECT_NO_THROW(line_chart(canvas, area, {}, {"empty", "", ""}));
  EXPECT_THROW(line_chart(canvas, {0, 0, 30, 20}, {rising}, {}), std::invalid_argument);
}

TEST(PlotStackedArea, LayersFillTheirBandsAndThePeakIsMarkedInsideTheArea) {
  std::vector<double> x;
  AreaLayer bottom{"bottom", kBlue, {}}, top{"top", kRed, {}};
  for (int i = 0; i < 31; ++i) {
    x.push_back(i);
    bottom.y.push_back(10);
    top.y.push_back(i == 30 ? 9 : 5);  // the peak (19) is at the last point
  }
  Canvas canvas(900, 600);
  const Rect area{0, 0, 700, 450};
  StackedAreaOptions options;
  options.text = {"memory", "event", "bytes"};
  options.peak_label = "a rather long label that must be kept inside the area";
  const StackedAreaResult result = stacked_area_chart(canvas, area, x, {bottom, top}, options);
  EXPECT_EQ(result.peak_index, 30u);
  EXPECT_EQ(result.peak_total, 19.0);
  const ChartLayout& layout = result.layout;
  EXPECT_EQ(layout.y_min, 0.0);
  EXPECT_GE(layout.y_max, 19.0);

  // In every column but the peak's: 10 units of blue at the bottom, 5 of red above.
  const Rect& p = layout.plot;
  for (int c = p.x + 2; c < p.x + p.w - 20; c += 7) {
    int blue = 0, red = 0;
    for (int y = p.y; y < p.y + p.h; ++y) {
      blue += canvas.pixel(c, y) == kBlue;
      red += canvas.pixel(c, y) == kRed;
    }
    EXPECT_NEAR(blue, 10.0 / layout.y_max * p.h, 1.0) << "column " << c;
    EXPECT_NEAR(red, 5.0 / layout.y_max * p.h, 1.5) << "column " << c;
    EXPECT_EQ(canvas.pixel(c, p.y + p.h - 1), kBlue);
    EXPECT_NE(canvas.pixel(c, static_cast<int>(layout.px_y(16))), kRed);
  }
  // The peak column reaches 19; its dashed line is above it; nothing leaves the area.
  const int peak_column = static_cast<int>(std::lround(layout.px_x(30)));
  EXPECT_EQ(canvas.pixel(peak_column, static_cast<int>(std::lround(layout.px_y(18)))), kRed);
  int dash_pixels = 0;
  for (int y = p.y + 40; y < static_cast<int>(layout.px_y(19)) - 8; ++y) {
    dash_pixels += canvas.pixel(peak_column, y) == colour::text;
  }
  EXPECT_GT(dash_pixels, 5);
  for (const auto& [px, py] : painted(canvas)) EXPECT_TRUE(area.contains(px, py)) << px << "," << py;
}

TEST(PlotStackedArea, DownsamplingNeverLosesTheSpike) {
  const size_t n = 200001;
  std::vector<double> x(n);
  AreaLayer layer{"activation", kRed, std::vector<double>(n, 1.0)};
  for (size_t i = 0; i < n; ++i) x[i] = static_cast<double>(i);
  layer.y[123457] = 50;  // one event among 200001, far below a pixel's width
  Canvas canvas(500, 300);
  StackedAreaOptions options;
  options.mark_peak = false;
  const StackedAreaResult result = stacked_area_chart(canvas, {0, 0, 500, 300}, x, {layer}, options);
  EXPECT_EQ(result.peak_index, 123457u);
  const int column = static_cast<int>(std::lround(result.layout.px_x(123457)));
  EXPECT_EQ(canvas.pixel(column, static_cast<int>(std::lround(result.layout.px_y(49)))), kRed);
  EXPECT_NE(canvas.pixel(column - 3, static_cast<int>(std::lround(result.layout.px_y(49)))), kRed);
}

TEST(PlotStackedArea, ByteAxisAndBadInputs) {
  const double GiB = 1024.0 * 1024 * 1024;
  StackedAreaOptions options;
  options.format_y = format_bytes_short;
  options.binary_y_ticks = true;
  options.overlay = AreaLayer{"reserved", colour::black, {2 * GiB, 3 * GiB}};
  Canvas canvas(640, 400);
  const auto result = stacked_area_chart(canvas, {0, 0, 640, 400}, {0, 1},
                                         {AreaLayer{"a", kBlue, {1 * GiB, 2.5 * GiB}}}, options);
  // Ticks are whole multiples of a binary unit, so the top is too.
  EXPECT_EQ(std::fmod(result.layout.y_max, 0.5 * GiB), 0.0);
  EXPECT_GE(result.layout.y_max, 3 * GiB);

  const std::vector<double> x = {0, 1, 2};
  const AreaLayer good{"ok", kBlue, {1, 2, 3}};
  EXPECT_THROW(stacked_area_chart(canvas, {0, 0, 640, 400}, x, {AreaLayer{"neg", kRed, {1, -1, 2}}}, {}),
               std::invalid_argument);
  EXPECT_THROW(stacked_area_chart(canvas, {0, 0, 640, 400}, x, {AreaLayer{"short", kRed, {1, 2}}}, {}),
               std::invalid_argument);
  EXPECT_THROW(stacked_area_chart(canvas, {0, 0, 640, 400}, {0, 2, 1}, {good}, {}),
               std::invalid_argument);
  EXPECT_THROW(stacked_area_chart(canvas, {0, 0, 640, 400}, {}, {}, {}), std::invalid_argument);
}

}  // namespace
