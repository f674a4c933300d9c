// deepmind_checkpoint.h: DeepMind's published GraphCast checkpoints
// (graphcast.checkpoint.dump of CheckPoint(params, model_config, task_config,
// description, license)), read into gc's model configuration and parameters.
//
// The format is np.savez of the flattened dataclass: "params:<haiku module>:<w|b|
// scale|offset>", "model_config:<field>", "task_config:<field>" with tuples
// flattened to "...:<field>:<index>" (an empty tuple leaves no key, a None field
// none either), strings as 0-d unicode arrays, ints '<i8', floats '<f8'.
//
// The model and the task come from the file, never from flags: mesh size,
// latent, message-passing steps, hidden layers (gc's MLPs have exactly one),
// radius fraction, the explicit mesh2grid normalization factor when set,
// variables, levels, input duration. One table (deepmind_parameter_table)
// names each gc parameter's DeepMind array; loading checks every name, shape
// and the count both ways, so a checkpoint of another architecture fails clearly.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "model/graphcast.h"
#include "runtime/tensor.h"
#include "tools/io/npz.h"

namespace gc {

struct DeepMindModelConfig {
  double resolution = 0;
  int mesh_size = 0;
  int64_t latent_size = 0;
  int gnn_msg_steps = 0;
  int hidden_layers = 0;
  double radius_query_fraction_edge_length = 0;
  std::optional<double> mesh2grid_edge_normalization_factor;
};

struct DeepMindTaskConfig {
  std::vector<std::string> input_variables, target_variables, forcing_variables;
  std::vector<int> pressure_levels;
  std::string input_duration;  // e.g. "12h"
  int input_frames() const;    // input_duration / 6 h (DeepMind's time step)
};

// DeepMind's atmospheric variables (graphcast.py ALL_ATMOSPHERIC_VARS): those
// with a pressure-level axis; every other variable is a surface field.
bool is_atmospheric_variable(const std::string& name);

// One channel group of the network's input or output, in DeepMind's stacking
// order (model_utils.dataset_to_stacked: variables sorted by name; within one,
// time outer, level inner).
struct ChannelGroup {
  std::string variable;
  enum Role { state, forcing, static_field, target_forcing } role = state;  // inputs; outputs are all `state`
  int frames = 1;   // time frames stacked (1 for static fields, target forcings and outputs)
  int levels = 1;   // pressure levels (1 for surface fields)
  int64_t first_channel = 0;
  int64_t channels() const { return static_cast<int64_t>(frames) * levels; }
};

// The grid input without the 3 structural features, and the outputs.
std::vector<ChannelGroup> input_channel_groups(const DeepMindTaskConfig& task);
std::vector<ChannelGroup> output_channel_groups(const DeepMindTaskConfig& task);

struct DeepMindCheckpoint {
  std::string path;
  DeepMindModelConfig model;
  DeepMindTaskConfig task;
  std::string description, license;
  NpzFile file;  // the arrays, "params:..." among them

  // gc's network configuration (in/out channels from the task), f32 compute.
  model::GraphCastConfig graphcast_config() const;
  // Geometry options of the model (radius fraction, mesh2grid factor).
  model::GeometryOptions geometry_options() const;
  // The DeepMind array of each of the network's parameters, in its order; every
  // name, shape and the count checked against `net` (std::runtime_error
  // starting with the path, naming the parameter).
  std::vector<const NpyArray*> matched_parameters(const model::GraphCastNet& net) const;
  // gc's parameters by gc name, f32 on `device` (through its allocator).
  std::vector<std::pair<std::string, Tensor>> parameters_for(const model::GraphCastNet& net, Device device) const;
};

// Reads and validates the configuration (std::runtime_error starting with the
// path for a file that is not such a checkpoint or describes a network gc
// cannot run, e.g. hidden_layers != 1).
DeepMindCheckpoint load_deepmind_checkpoint(const std::string& path);
// The same from an archive already read (file.path names it in messages).
DeepMindCheckpoint parse_deepmind_checkpoint(NpzFile file);

// gc parameter name -> DeepMind array name ("params:..."), for a network of
// `layers` processor layers, in gc's parameter order.
std::vector<std::pair<std::string, std::string>> deepmind_parameter_table(int layers);

// Copies the checkpoint's parameters into `net` (same configuration) straight
// from the file's bytes: no allocation, so a run and its dry run (which only
// validates) make the same requests.
void load_deepmind_parameters(const DeepMindCheckpoint& checkpoint, model::GraphCastNet& net);

}  // namespace gc
