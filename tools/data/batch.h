// batch.h: training and evaluation batches of the demo data, assembled on the
// host and uploaded under the memory category `input` (label "batch").
//
// A sample is (trajectory, t): inputs are frames t-1 and t, targets frames
// t+1 .. t+rollout; samples are stacked along the grid rows, so a batch of B
// samples has B * grid rows.
#pragma once

#include <utility>
#include <vector>

#include "runtime/tensor.h"
#include "tools/data/normalization.h"

namespace gc::data {

using Sample = std::pair<int, int>;  // (trajectory, frame t)

struct Batch {
  Tensor input;                 // [B * grid, 2 * C] compute dtype: frames t-1, t as inputs
  std::vector<Tensor> targets;  // per roll-out step k: [B * grid, C] f32, frame t+1+k as a state
  Tensor state;                 // [B * grid, C] f32: frame t as a state
  Tensor previous_input;        // [B * grid, C] compute dtype: frame t as an input
  // Weather data (weather_task.h): per roll-out step k >= 1 (index k - 1), the input columns
  // that do not come from the model: forcings and static fields [B * grid, X] compute dtype.
  // Empty for the demo data, whose inputs are the two frames alone.
  std::vector<Tensor> extra_inputs;
};

// `batch` training samples of micro step `micro_step`. They depend only on
// (seed, micro step), so a resumed run draws the same ones.
std::vector<Sample> draw_training_samples(const SweDataset& data, uint64_t seed, int micro_step, int batch, int rollout);

// The batch of these samples with `rollout` targets each, on `device`.
Batch assemble_batch(const SweDataset& data, const Normalization& norm, const std::vector<Sample>& samples,
                     int rollout, DType compute_dtype, Device device);

}  // namespace gc::data
