// batch.cpp: drawing samples and filling their tensors (see batch.h).
#include "tools/data/batch.h"

#include <random>

#include "runtime/memory_scope.h"
#include "tools/data/host_tensor.h"

namespace gc::data {

std::vector<Sample> draw_training_samples(const SweDataset& data, uint64_t seed, int micro_step, int batch, int rollout) {
  std::mt19937_64 rng(seed * 1000003ull + static_cast<uint64_t>(micro_step) * 7919ull + 1);
  const int first = data.first_trajectory(SweSplit::train);
  const int count = data.split_trajectories(SweSplit::train);
  const int last_start = data.frames() - 1 - rollout;
  std::vector<Sample> samples;
  for (int b = 0; b < batch; ++b) {
    const int traj = first + static_cast<int>(rng() % static_cast<uint64_t>(count));
    const int t = 1 + static_cast<int>(rng() % static_cast<uint64_t>(last_start));
    samples.push_back({traj, t});
  }
  return samples;
}

Batch assemble_batch(const SweDataset& d, const Normalization& norm, const std::vector<Sample>& samples, int rollout,
                     DType compute_dtype, Device device) {
  const int C = kSweChannels;
  const int64_t nodes = static_cast<int64_t>(d.nlat) * d.nlon;
  const int64_t rows = nodes * static_cast<int64_t>(samples.size());
  MemoryScope scope(Category::input, "batch");
  auto frame_value = [&](int traj, int frame, int64_t node, int c) {
    return static_cast<double>(d.frame(traj, frame)[node * C + c]);
  };
  Batch batch;
  batch.input = host_filled({rows, 2 * C}, compute_dtype, device, [&](HostValues& v) {
    for (size_t s = 0; s < samples.size(); ++s)
      for (int64_t i = 0; i < nodes; ++i)
        for (int k = 0; k < 2; ++k)
          for (int c = 0; c < C; ++c) {
            const double x = frame_value(samples[s].first, samples[s].second - 1 + k, i, c);
            v[static_cast<size_t>(((static_cast<int64_t>(s) * nodes + i) * 2 + k) * C + c)] = norm.input(x, c);
          }
  });
  // Frame t + offset of every sample, as a state or as an input.
  auto frames = [&](int frame_offset, DType dtype, bool as_input) {
    return host_filled({rows, C}, dtype, device, [&](HostValues& v) {
      for (size_t s = 0; s < samples.size(); ++s)
        for (int64_t i = 0; i < nodes; ++i)
          for (int c = 0; c < C; ++c) {
            const double x = frame_value(samples[s].first, samples[s].second + frame_offset, i, c);
            v[static_cast<size_t>((static_cast<int64_t>(s) * nodes + i) * C + c)] =
                as_input ? norm.input(x, c) : norm.state(x, c);
          }
    });
  };
  batch.state = frames(0, DType::f32, false);
  batch.previous_input = frames(0, compute_dtype, true);
  for (int k = 0; k < rollout; ++k) batch.targets.push_back(frames(k + 1, DType::f32, false));
  return batch;
}

}  // namespace gc::data
