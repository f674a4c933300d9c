// normalization.h: the demo's per-channel statistics and its residual
// convention, the one place that defines both (GRAPHCAST.md section 5).
//
// Inputs are frames normalized per channel by the mean and std of the training
// frames. The network predicts the 6-hour change divided by the std of 6-hour
// changes (diff_std). The model state is carried as S = (X - mean) / diff_std in
// f32, so a roll-out step is S += y, the next input is S * diff_std / std, and
// the forecast in physical units is mean + S * diff_std. The loss at each
// roll-out step compares S with the truth in the same units.
#pragma once

#include <vector>

#include "tools/data/swe_dataset.h"

namespace gc::data {

struct Normalization {
  std::vector<double> mean, std, diff_std;  // per channel
  std::vector<float> climatology;           // [grid, channels]: mean of the training frames per point

  double input(double x, int c) const { return (x - mean[static_cast<size_t>(c)]) / std[static_cast<size_t>(c)]; }
  double state(double x, int c) const { return (x - mean[static_cast<size_t>(c)]) / diff_std[static_cast<size_t>(c)]; }
  double physical(double s, int c) const { return mean[static_cast<size_t>(c)] + s * diff_std[static_cast<size_t>(c)]; }
  // The factor that turns a state into an input: diff_std / std.
  double state_to_input(int c) const { return diff_std[static_cast<size_t>(c)] / std[static_cast<size_t>(c)]; }
};

// The statistics of the training split (never the held-out trajectories).
Normalization swe_normalization(const SweDataset& data);

}  // namespace gc::data
