// heat_map.cpp: panels of coloured cells (heat_map.h).
#include "tools/study/heat_map.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace gc::study {

namespace {

constexpr int kCellWidth = 96, kCellHeight = 34;
constexpr int kTopMargin = 34, kBottomMargin = 34, kPanelGap = 28;
constexpr plot::Rgb kOutline{220, 20, 60};

// Room for the row labels and, left of them, the vertical row title.
int left_margin(const HeatMap& m) {
  int widest = 0;
  for (const std::string& r : m.rows) widest = std::max(widest, plot::Canvas::text_width(r));
  return widest + 8 + plot::Canvas::text_height() + 10;
}

int panel_width(const HeatMap& m) { return left_margin(m) + kCellWidth * static_cast<int>(m.columns.size()); }
int panel_height(const HeatMap& m) { return kTopMargin + kCellHeight * static_cast<int>(m.rows.size()) + kBottomMargin; }

// Dark text on light cells, white on dark ones.
plot::Rgb text_colour_on(plot::Rgb background) {
  const double luminance = 0.299 * background.r + 0.587 * background.g + 0.114 * background.b;
  return luminance > 140 ? plot::colour::text : plot::colour::white;
}

void draw_panel(plot::Canvas& canvas, int x0, int y0, const HeatMap& m) {
  const size_t cells = m.rows.size() * m.columns.size();
  if (m.values.size() != cells || m.cell_text.size() != cells || m.outlined.size() != cells)
    throw std::invalid_argument("heat map '" + m.title + "': values, texts and outlines need rows x columns entries");
  auto scaled = [&m](double v) { return m.log_scale ? (v > 0 ? std::log10(v) : NAN) : v; };
  double lo = INFINITY, hi = -INFINITY;
  for (double v : m.values) {
    const double s = scaled(v);
    if (std::isfinite(s)) {
      lo = std::min(lo, s);
      hi = std::max(hi, s);
    }
  }
  canvas.text(x0, y0, m.title, plot::colour::text, 1);
  const int gx = x0 + left_margin(m), gy = y0 + kTopMargin - 14;
  for (size_t r = 0; r < m.rows.size(); ++r) {
    const int y = gy + static_cast<int>(r) * kCellHeight;
    canvas.text(gx - 8 - plot::Canvas::text_width(m.rows[r]), y + kCellHeight / 2 - 4, m.rows[r], plot::colour::text);
    for (size_t c = 0; c < m.columns.size(); ++c) {
      const size_t i = r * m.columns.size() + c;
      const int x = gx + static_cast<int>(c) * kCellWidth;
      const double s = scaled(m.values[i]);
      double t = NAN;
      if (std::isfinite(s)) t = hi > lo ? (s - lo) / (hi - lo) : 0.5;
      if (std::isfinite(t) && m.reversed_colours) t = 1.0 - t;
      const plot::Rgb fill = plot::colormap(plot::Map::sequential, t);
      canvas.fill_rect(x, y, kCellWidth, kCellHeight, fill);
      canvas.frame_rect(x, y, kCellWidth, kCellHeight, plot::colour::white);
      if (m.outlined[i])
        for (int k = 1; k <= 3; ++k) canvas.frame_rect(x + k, y + k, kCellWidth - 2 * k, kCellHeight - 2 * k, kOutline);
      const std::string& text = m.cell_text[i];
      canvas.text(x + (kCellWidth - plot::Canvas::text_width(text)) / 2, y + kCellHeight / 2 - 4, text,
                  text_colour_on(fill));
    }
  }
  const int bottom = gy + static_cast<int>(m.rows.size()) * kCellHeight;
  for (size_t c = 0; c < m.columns.size(); ++c)
    canvas.text(gx + static_cast<int>(c) * kCellWidth + (kCellWidth - plot::Canvas::text_width(m.columns[c])) / 2,
                bottom + 5, m.columns[c], plot::colour::text);
  canvas.text(gx, bottom + 18, m.column_label, plot::colour::axis);
  canvas.text_vertical(x0 + 2, gy, m.row_label, plot::colour::axis);
}

}  // namespace

void save_heat_maps(const std::string& path, const std::string& title, const std::vector<HeatMap>& panels,
                    int panels_per_row, const std::string& legend) {
  if (panels.empty() || panels_per_row < 1) throw std::invalid_argument("save_heat_maps: no panels");
  const int per_row = std::min<int>(panels_per_row, static_cast<int>(panels.size()));
  const int panel_rows = (static_cast<int>(panels.size()) + per_row - 1) / per_row;
  int cell_w = 0, cell_h = 0;
  for (const HeatMap& m : panels) {
    cell_w = std::max(cell_w, std::max(panel_width(m), plot::Canvas::text_width(m.title)));
    cell_h = std::max(cell_h, panel_height(m));
  }
  const int width = std::max(kPanelGap + per_row * (cell_w + kPanelGap), plot::Canvas::text_width(legend) + 2 * kPanelGap);
  const int height = 40 + panel_rows * (cell_h + kPanelGap) + 24;
  plot::Canvas canvas(width, height);
  canvas.text(kPanelGap, 12, title, plot::colour::text, 2);
  for (size_t p = 0; p < panels.size(); ++p) {
    const int col = static_cast<int>(p) % per_row, row = static_cast<int>(p) / per_row;
    draw_panel(canvas, kPanelGap + col * (cell_w + kPanelGap), 40 + row * (cell_h + kPanelGap), panels[p]);
  }
  canvas.text(kPanelGap, height - 20, legend, plot::colour::text);
  canvas.save_png(path);
}

}  // namespace gc::study
