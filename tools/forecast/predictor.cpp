// predictor.cpp: the predictor of predictor.h. Every f32 operation here is one
// IEEE f32 operation in DeepMind's order (subtract, then divide; multiply, then
// add), so that the host part adds no difference of its own.
#include "tools/forecast/predictor.h"

#include <stdexcept>

#include "autograd/precision.h"
#include "autograd/tape.h"
#include "kernels/elementwise.h"
#include "runtime/memory_scope.h"
#include "tools/usage_error.h"

namespace gc::forecast {

Predictor::Predictor(const DeepMindCheckpoint& checkpoint, const Statistics& statistics,
                     std::shared_ptr<const model::GraphCastGeometry> geometry, DType compute, Device device)
    : task_(checkpoint.task), statistics_(statistics), geometry_(std::move(geometry)), device_(device) {
  model::GraphCastConfig config = checkpoint.graphcast_config();
  config.compute_dtype = compute;
  if (geometry_->finest_mesh.vertices.size() != static_cast<size_t>(10 * (1 << (2 * config.mesh_level)) + 2))
    throw UsageError("the geometry's mesh is not the checkpoint's mesh level " + std::to_string(config.mesh_level));
  grid_nodes_ = geometry_->num_grid_nodes();
  net_ = std::make_unique<model::GraphCastNet>(config, device, 0);
  load_deepmind_parameters(checkpoint, *net_);
  device_geometry_ = model::upload_geometry(*geometry_, config, device);
}

std::vector<float> Predictor::stack_inputs(const std::map<std::string, std::vector<float>>& window,
                                           const ForecastForcings& forcings, int step) const {
  const std::vector<ChannelGroup> groups = input_channel_groups(task_);
  const int64_t channels = net_->config().in_channels - 3, nodes = grid_nodes_;
  std::vector<float> stacked(static_cast<size_t>(nodes * channels));
  for (const ChannelGroup& g : groups) {
    const std::vector<float>& mean = statistics_.mean.at(g.variable);
    const std::vector<float>& stddev = statistics_.stddev.at(g.variable);
    const float* source = g.role == ChannelGroup::target_forcing
                              ? forcings.fields.at(g.variable).data() + static_cast<size_t>(step) * nodes
                              : window.at(g.variable).data();
    for (int f = 0; f < g.frames; ++f)
      for (int l = 0; l < g.levels; ++l) {
        const int64_t k = static_cast<int64_t>(f) * g.levels + l;  // time outer, level inner
        const float* x = source + k * nodes;
        const float m = mean[static_cast<size_t>(l)], s = stddev[static_cast<size_t>(l)];
        float* out = stacked.data() + g.first_channel + k;
        for (int64_t n = 0; n < nodes; ++n) out[n * channels] = (x[n] - m) / s;
      }
  }
  return stacked;
}

Predictions Predictor::rollout(const ForecastInputs& inputs, const ForecastForcings& forcings, int steps,
                               const std::function<void(int)>& on_step) const {
  if (steps < 1) throw UsageError("--steps must be at least 1");
  if (steps > forcings.steps())
    throw UsageError("--steps " + std::to_string(steps) + ": the forcings cover " + std::to_string(forcings.steps()) +
                     " target times");
  if (inputs.grid_nodes() != grid_nodes_) throw UsageError("the inputs' grid is not the geometry's");
  const bool real = device_ != Device::meta;
  const int64_t nodes = grid_nodes_, channels = net_->config().in_channels - 3, outputs = net_->config().out_channels;
  const std::vector<ChannelGroup> out_groups = output_channel_groups(task_);
  std::map<std::string, std::vector<float>> window = inputs.fields;  // the frames the next step sees
  Predictions predictions;
  for (const ChannelGroup& g : out_groups)
    if (real) predictions[g.variable].resize(static_cast<size_t>(steps) * g.levels * nodes);
  const int frames = task_.input_frames();
  NoGradGuard no_grad;
  // The compute-dtype copies of the weights (bf16, fp16) are made at their first
  // use and kept for every step; they go when the forecast ends, however it ends.
  struct ReleaseComputeCopies {
    ~ReleaseComputeCopies() { release_compute_copies(); }
  } release_at_end;
  for (int step = 0; step < steps; ++step) {
    Tensor x;
    {
      MemoryScope scope(Category::input, "forecast.inputs");
      if (real) {
        const std::vector<float> stacked = stack_inputs(window, forcings, step);
        x = Tensor::from_host(stacked.data(), {nodes, channels}, DType::f32, device_);
      } else {
        x = Tensor::empty({nodes, channels}, DType::f32, device_);
      }
      if (net_->config().compute_dtype != DType::f32) {
        Tensor cast = Tensor::empty(x.shape(), net_->config().compute_dtype, device_);
        kernels::cast(cast, x);
        x = cast;
      }
    }
    Var y = net_->forward(Var(x), device_geometry_);  // [nodes, outputs] f32: normalized residuals
    x = Tensor();
    if (real) {
      std::vector<float> residual(static_cast<size_t>(nodes * outputs));
      device_copy(residual.data(), Device::cpu, y.value().data(), device_, residual.size() * sizeof(float));
      for (const ChannelGroup& g : out_groups) {
        const std::vector<float>& scale = statistics_.diffs_stddev.at(g.variable);
        std::vector<float>& state = window.at(g.variable);  // [frames, levels, nodes]
        float* out = predictions[g.variable].data() + static_cast<size_t>(step) * g.levels * nodes;
        for (int l = 0; l < g.levels; ++l) {
          const float* last = state.data() + (static_cast<int64_t>(frames - 1) * g.levels + l) * nodes;
          const float s = scale[static_cast<size_t>(l)];
          for (int64_t n = 0; n < nodes; ++n)
            out[l * nodes + n] = residual[static_cast<size_t>(n * outputs + g.first_channel + l)] * s + last[n];
        }
        // Feedback: drop the oldest frame, append the prediction.
        const size_t frame = static_cast<size_t>(g.levels * nodes);
        std::copy(state.begin() + static_cast<long>(frame), state.end(), state.begin());
        std::copy(out, out + frame, state.end() - static_cast<long>(frame));
      }
      for (const std::string& v : task_.forcing_variables) {
        auto it = window.find(v);
        if (it == window.end()) continue;  // a forcing the model takes at the target time only
        std::vector<float>& state = it->second;
        const float* next = forcings.fields.at(v).data() + static_cast<size_t>(step) * nodes;
        std::copy(state.begin() + nodes, state.end(), state.begin());
        std::copy(next, next + nodes, state.end() - nodes);
      }
    }
    y = Var();
    if (on_step) on_step(step);
  }
  return predictions;
}

}  // namespace gc::forecast
