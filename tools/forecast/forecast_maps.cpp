// forecast_maps.cpp: write_forecast_map (forecast_maps.h).
#include "tools/forecast/forecast_maps.h"

#include <algorithm>
#include <cmath>

#include "tools/plot/plot.h"

namespace gc::forecast {

void write_forecast_map(const std::string& path, const std::string& title, const std::vector<float>& values,
                        int steps, const std::vector<double>& lat_deg, int n_lon, int hours_per_step) {
  const int n_lat = static_cast<int>(lat_deg.size());
  const bool south_first = n_lat > 1 && lat_deg.front() < lat_deg.back();
  const size_t field = static_cast<size_t>(n_lat) * n_lon;
  std::vector<float> north_first(values.size());
  for (int s = 0; s < steps; ++s)
    for (int i = 0; i < n_lat; ++i) {
      const int row = south_first ? n_lat - 1 - i : i;
      std::copy_n(values.begin() + static_cast<long>(s * field + static_cast<size_t>(row) * n_lon), n_lon,
                  north_first.begin() + static_cast<long>(s * field + static_cast<size_t>(i) * n_lon));
    }
  const plot::ValueRange range = plot::finite_range(north_first.data(), north_first.size());
  const int margin = 24, gap = 16, scale = 2;
  const int panel_w = 360, panel_h = std::max(1, static_cast<int>(std::lround(360.0 * n_lat / n_lon)));
  const int title_h = plot::Canvas::text_height(3) + 12, label_h = plot::Canvas::text_height(scale) + 6;
  const int height = margin + title_h + label_h + panel_h + margin;
  auto draw = [&](plot::Canvas& canvas) {
    canvas.text(margin, margin, title, plot::colour::text, 3);
    int x = margin;
    for (int s = 0; s < steps; ++s) {
      canvas.text(x, margin + title_h, "+" + std::to_string((s + 1) * hours_per_step) + " h", plot::colour::text, scale);
      plot::draw_field(canvas, x, margin + title_h + label_h, panel_w, panel_h,
                       north_first.data() + static_cast<size_t>(s) * field, n_lat, n_lon, range.min, range.max,
                       plot::Map::sequential);
      x += panel_w + gap;
    }
    const int right = plot::draw_colorbar(canvas, x, margin + title_h + label_h, 18, panel_h, range.min, range.max,
                                          plot::Map::sequential, "", scale);
    return std::max(right, margin + plot::Canvas::text_width(title, 3));
  };
  plot::Canvas probe(margin + steps * (panel_w + gap) + 400 + plot::Canvas::text_width(title, 3), height);
  const int right = draw(probe);
  plot::Canvas canvas(right + margin, height);
  draw(canvas);
  canvas.save_png(path);
}

}  // namespace gc::forecast
