// normalization.cpp: statistics of the training split, accumulated in double.
#include "tools/data/normalization.h"

#include <algorithm>
#include <cmath>

namespace gc::data {

Normalization swe_normalization(const SweDataset& d) {
  const int C = kSweChannels;
  const int first = d.first_trajectory(SweSplit::train);
  const int count = d.split_trajectories(SweSplit::train);
  const size_t nodes = static_cast<size_t>(d.nlat) * static_cast<size_t>(d.nlon);
  std::vector<double> sum(C, 0), sum2(C, 0), dsum(C, 0), dsum2(C, 0);
  std::vector<double> clim(nodes * C, 0.0);
  double n = 0, nd = 0;
  for (int t = first; t < first + count; ++t) {
    for (int f = 0; f < d.frames(); ++f) {
      const float* x = d.frame(t, f);
      const float* prev = f > 0 ? d.frame(t, f - 1) : nullptr;
      for (size_t i = 0; i < nodes; ++i)
        for (int c = 0; c < C; ++c) {
          const double v = x[i * C + static_cast<size_t>(c)];
          sum[static_cast<size_t>(c)] += v;
          sum2[static_cast<size_t>(c)] += v * v;
          clim[i * C + static_cast<size_t>(c)] += v;
          if (prev) {
            const double dv = v - prev[i * C + static_cast<size_t>(c)];
            dsum[static_cast<size_t>(c)] += dv;
            dsum2[static_cast<size_t>(c)] += dv * dv;
          }
        }
      n += static_cast<double>(nodes);
      if (prev) nd += static_cast<double>(nodes);
    }
  }
  Normalization norm;
  norm.mean.resize(C);
  norm.std.resize(C);
  norm.diff_std.resize(C);
  for (int c = 0; c < C; ++c) {
    const size_t k = static_cast<size_t>(c);
    norm.mean[k] = sum[k] / n;
    norm.std[k] = std::sqrt(std::max(1e-30, sum2[k] / n - norm.mean[k] * norm.mean[k]));
    const double dm = dsum[k] / nd;
    norm.diff_std[k] = std::sqrt(std::max(1e-30, dsum2[k] / nd - dm * dm));
  }
  const double frames = static_cast<double>(count) * d.frames();
  norm.climatology.assign(nodes * C, 0.0f);
  for (size_t i = 0; i < clim.size(); ++i) norm.climatology[i] = static_cast<float>(clim[i] / frames);
  return norm;
}

}  // namespace gc::data
