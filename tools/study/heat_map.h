// heat_map.h: tables of numbers drawn as coloured grids (rows x columns of
// cells, each with its value written in it), several panels to one PNG. The
// studies draw a quantity over latent x layers (or presets x cards) with the
// cells that fit a budget outlined; a cell without a value (no plan fits, not
// trained) is grey and says why in its text, never left out.
#pragma once

#include <string>
#include <vector>

#include "tools/plot/plot.h"

namespace gc::study {

struct HeatMap {
  std::string title;                        // above the panel
  std::string row_label, column_label;      // e.g. "layers", "latent"
  std::vector<std::string> rows, columns;   // tick labels, top to bottom / left to right
  std::vector<double> values;               // [rows * columns]; NaN: no value (grey)
  std::vector<std::string> cell_text;       // [rows * columns], written in the cell
  std::vector<bool> outlined;               // [rows * columns]: drawn with a thick frame
  bool log_scale = false;                   // colour by log10 of the (positive) values
  bool reversed_colours = false;            // large values dark (e.g. errors), small ones light
};

// Draws the panels, `panels_per_row` to a row, under `title`, and writes the
// PNG (plot::Canvas::save_png). `legend` is one line printed at the bottom
// (e.g. what an outline means). Throws std::invalid_argument on mismatched sizes.
void save_heat_maps(const std::string& path, const std::string& title, const std::vector<HeatMap>& panels,
                    int panels_per_row, const std::string& legend);

}  // namespace gc::study
