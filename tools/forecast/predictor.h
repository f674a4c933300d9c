// predictor.h: DeepMind's whole GraphCast predictor on gc's network, as
// autoregressive.Predictor(normalization.InputsAndResiduals(GraphCast)) runs it:
//
//   1. inputs (every input variable at the input frames, static fields) and the
//      target time's forcings are normalized per variable and level,
//      (x - mean) / stddev in f32, and stacked as dataset_to_stacked does
//      (variables sorted by name; time outer, level inner);
//   2. the network predicts the normalized residual of every target;
//   3. prediction = residual * diffs_stddev + the last input frame (f32);
//   4. the window of input frames moves one step: targets take the prediction,
//      forcings in the inputs take the forcings of that target time; static
//      fields stay.
//
// No tape: inference runs under NoGradGuard, so only what a step holds at once
// is allocated. The normalization, stacking and feedback are elementwise f32
// host work on the data (as the data set's batches are); every device byte (the
// parameters, the graphs, the stacked input, the network's activations and its
// output) goes through the device's allocator with a category and label, and a
// run on meta makes exactly the requests of a real run.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "model/graphcast.h"
#include "tools/forecast/forecast_data.h"
#include "tools/io/deepmind_checkpoint.h"

namespace gc::forecast {

// Per target variable: [steps * levels * grid nodes] f32 in the data's grid order.
using Predictions = std::map<std::string, std::vector<float>>;

class Predictor {
 public:
  // Parameters from the checkpoint; `compute` is the network's compute dtype
  // (f32 masters always). Throws UsageError when the statistics or geometry do
  // not fit the checkpoint's task.
  Predictor(const DeepMindCheckpoint& checkpoint, const Statistics& statistics,
            std::shared_ptr<const model::GraphCastGeometry> geometry, DType compute, Device device);

  // `steps` autoregressive steps from the inputs with the forcings of each target
  // time. On meta the requests are made and the predictions are empty.
  // on_step(step) is called after each step (memory figures, progress).
  Predictions rollout(const ForecastInputs& inputs, const ForecastForcings& forcings, int steps,
                      const std::function<void(int)>& on_step = {}) const;

  const model::GraphCastNet& net() const { return *net_; }
  const model::DeviceGeometry& device_geometry() const { return device_geometry_; }

 private:
  // The normalized network input [grid nodes, channels] of the current window.
  std::vector<float> stack_inputs(const std::map<std::string, std::vector<float>>& window,
                                  const ForecastForcings& forcings, int step) const;

  DeepMindTaskConfig task_;
  Statistics statistics_;
  std::shared_ptr<const model::GraphCastGeometry> geometry_;
  Device device_;
  std::unique_ptr<model::GraphCastNet> net_;
  model::DeviceGeometry device_geometry_;
  int64_t grid_nodes_ = 0;
};

}  // namespace gc::forecast
