// plot.cpp: the Canvas (pixels, clipped rectangles and lines) and its PNG output,
// plus the small colour helpers of plot.h. Text is in font.cpp, colour maps and
// lat-lon fields in plot_fields.cpp, numbers and ticks in plot_ticks.cpp, chart
// axes in plot_axes.cpp and the two chart kinds in plot_line_chart.cpp and
// plot_stacked_area.cpp.
//
// Every primitive clips to the canvas, with 64-bit or floating-point ends so that
// huge or far-away shapes cannot overflow before clipping; lines are clipped as
// segments (to the canvas widened by the pen) before they are rasterized, so a
// far-away endpoint costs nothing. save_png writes through write_file_atomic
// (tools/io): readers see the old picture or the complete new one.
#include "tools/plot/plot.h"

#include <stb/stb_image_write.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "tools/io/atomic_file.h"

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
  write_file_atomic(path, [&](std::FILE* file) {
    struct Sink {
      std::FILE* file;
      bool ok;
    } sink{file, true};
    auto write_chunk = [](void* context, void* data, int size) {
      auto* s = static_cast<Sink*>(context);
      if (s->ok && std::fwrite(data, 1, static_cast<size_t>(size), s->file) != static_cast<size_t>(size)) s->ok = false;
    };
    const int encoded = stbi_write_png_to_func(write_chunk, &sink, width_, height_, 3, rgb_.data(), width_ * 3);
    if (!encoded) throw std::runtime_error("cannot write PNG '" + path + "': PNG encoding failed");
    if (!sink.ok) throw std::runtime_error("cannot write PNG '" + path + "': " + std::strerror(errno));
  });
}

}  // namespace gc::plot
