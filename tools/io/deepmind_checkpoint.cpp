// deepmind_checkpoint.cpp: the flattened-dataclass keys, the channel layout of
// DeepMind's predictor and the one table of parameter names.
#include "tools/io/deepmind_checkpoint.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <stdexcept>

#include "runtime/memory_scope.h"

namespace gc {

namespace {

const char* const kAtmosphericVariables[] = {
    "potential_vorticity", "specific_rain_water_content", "specific_snow_water_content", "geopotential",
    "temperature", "u_component_of_wind", "v_component_of_wind", "specific_humidity", "vertical_velocity",
    "vorticity", "divergence", "relative_humidity", "ozone_mass_mixing_ratio",
    "specific_cloud_liquid_water_content", "specific_cloud_ice_water_content", "fraction_of_cloud_cover"};

class ConfigReader {
 public:
  explicit ConfigReader(const NpzFile& file) : file_(file) {}

  [[noreturn]] void fail(const std::string& what) const { throw std::runtime_error(file_.path + ": " + what); }

  const NpyArray& need(const std::string& key) const {
    const NpyArray* a = file_.find(key);
    if (a == nullptr) fail("not a DeepMind GraphCast checkpoint: no '" + key + "'");
    return *a;
  }
  double number(const std::string& key) const {
    const NpyArray& a = need(key);
    if (a.kind == NpyKind::unicode || a.numel() != 1) fail("'" + key + "' is " + a.describe() + ", not a number");
    return a.to_scalar();
  }
  int64_t integer(const std::string& key, int64_t low, int64_t high) const {
    const double v = number(key);
    if (v != std::floor(v) || v < static_cast<double>(low) || v > static_cast<double>(high))
      fail("'" + key + "' is " + std::to_string(v) + ", expected an integer in " + std::to_string(low) + ".." +
           std::to_string(high));
    return static_cast<int64_t>(v);
  }
  std::string text(const std::string& key) const {
    const NpyArray& a = need(key);
    if (a.kind != NpyKind::unicode || a.numel() != 1) fail("'" + key + "' is " + a.describe() + ", not a string");
    return a.to_text();
  }
  // A flattened tuple: key:0, key:1, ... (none for an empty tuple).
  std::vector<const NpyArray*> tuple(const std::string& key) const {
    std::map<int64_t, const NpyArray*> items;
    const std::string prefix = key + ":";
    for (const NpyArray& a : file_.arrays) {
      if (a.name.compare(0, prefix.size(), prefix) != 0) continue;
      const std::string index = a.name.substr(prefix.size());
      if (index.empty() || index.size() > 6 || index.find_first_not_of("0123456789") != std::string::npos)
        fail("'" + a.name + "' is not an item of the tuple '" + key + "'");
      items[std::stoll(index)] = &a;
    }
    std::vector<const NpyArray*> out;
    for (const auto& [index, array] : items) {
      if (index != static_cast<int64_t>(out.size())) fail("the tuple '" + key + "' misses item " + std::to_string(out.size()));
      out.push_back(array);
    }
    return out;
  }
  std::vector<std::string> texts(const std::string& key) const {
    std::vector<std::string> out;
    for (const NpyArray* a : tuple(key)) out.push_back(text(a->name));
    return out;
  }

 private:
  const NpzFile& file_;
};

void add_mlp(std::vector<std::pair<std::string, std::string>>* table, const std::string& gc_name,
             const std::string& module, bool layernorm) {
  const std::string prefix = "params:" + module;
  table->push_back({gc_name + ".linear0.weight", prefix + "_mlp/~/linear_0:w"});
  table->push_back({gc_name + ".linear0.bias", prefix + "_mlp/~/linear_0:b"});
  table->push_back({gc_name + ".linear1.weight", prefix + "_mlp/~/linear_1:w"});
  table->push_back({gc_name + ".linear1.bias", prefix + "_mlp/~/linear_1:b"});
  if (layernorm) {
    table->push_back({gc_name + ".layernorm.gamma", prefix + "_layer_norm:scale"});
    table->push_back({gc_name + ".layernorm.beta", prefix + "_layer_norm:offset"});
  }
}

}  // namespace

bool is_atmospheric_variable(const std::string& name) {
  for (const char* v : kAtmosphericVariables)
    if (name == v) return true;
  return false;
}

int DeepMindTaskConfig::input_frames() const {
  size_t digits = 0;
  while (digits < input_duration.size() && std::isdigit(static_cast<unsigned char>(input_duration[digits]))) ++digits;
  if (digits == 0 || digits > 4 || input_duration.substr(digits) != "h")
    throw std::invalid_argument("input_duration '" + input_duration + "' is not '<hours>h'");
  const int hours = std::stoi(input_duration.substr(0, digits));
  if (hours % 6 != 0 || hours == 0)
    throw std::invalid_argument("input_duration '" + input_duration + "' is not a positive multiple of DeepMind's 6 h step");
  return hours / 6;
}

std::vector<ChannelGroup> input_channel_groups(const DeepMindTaskConfig& task) {
  const std::set<std::string> targets(task.target_variables.begin(), task.target_variables.end());
  const std::set<std::string> forcings(task.forcing_variables.begin(), task.forcing_variables.end());
  std::vector<std::string> inputs = task.input_variables;
  std::sort(inputs.begin(), inputs.end());
  std::vector<ChannelGroup> groups;
  int64_t channel = 0;
  const int frames = task.input_frames();
  const int levels = static_cast<int>(task.pressure_levels.size());
  for (const std::string& v : inputs) {
    ChannelGroup g;
    g.variable = v;
    if (forcings.count(v)) {
      g.role = ChannelGroup::forcing;
      g.frames = frames;
    } else if (targets.count(v)) {
      g.role = ChannelGroup::state;
      g.frames = frames;
      g.levels = is_atmospheric_variable(v) ? levels : 1;
    } else {
      g.role = ChannelGroup::static_field;
    }
    g.first_channel = channel;
    channel += g.channels();
    groups.push_back(g);
  }
  std::vector<std::string> target_forcings = task.forcing_variables;
  std::sort(target_forcings.begin(), target_forcings.end());
  for (const std::string& v : target_forcings) {
    ChannelGroup g;
    g.variable = v;
    g.role = ChannelGroup::target_forcing;
    g.first_channel = channel++;
    groups.push_back(g);
  }
  return groups;
}

std::vector<ChannelGroup> output_channel_groups(const DeepMindTaskConfig& task) {
  std::vector<std::string> targets = task.target_variables;
  std::sort(targets.begin(), targets.end());
  std::vector<ChannelGroup> groups;
  int64_t channel = 0;
  for (const std::string& v : targets) {
    ChannelGroup g;
    g.variable = v;
    g.levels = is_atmospheric_variable(v) ? static_cast<int>(task.pressure_levels.size()) : 1;
    g.first_channel = channel;
    channel += g.channels();
    groups.push_back(g);
  }
  return groups;
}

std::vector<std::pair<std::string, std::string>> deepmind_parameter_table(int layers) {
  std::vector<std::pair<std::string, std::string>> t;
  const std::string g2m = "grid2mesh_gnn/~_networks_builder/", mesh = "mesh_gnn/~_networks_builder/",
                    m2g = "mesh2grid_gnn/~_networks_builder/";
  add_mlp(&t, "encoder.grid_embed", g2m + "encoder_nodes_grid_nodes", true);
  add_mlp(&t, "encoder.mesh_embed", g2m + "encoder_nodes_mesh_nodes", true);
  add_mlp(&t, "encoder.g2m_edge_embed", g2m + "encoder_edges_grid2mesh", true);
  add_mlp(&t, "encoder.g2m_edge_mlp", g2m + "processor_edges_0_grid2mesh", true);
  add_mlp(&t, "encoder.mesh_node_mlp", g2m + "processor_nodes_0_mesh_nodes", true);
  add_mlp(&t, "encoder.grid_node_mlp", g2m + "processor_nodes_0_grid_nodes", true);
  add_mlp(&t, "processor.mesh_edge_embed", mesh + "encoder_edges_mesh", true);
  for (int l = 0; l < layers; ++l) {
    add_mlp(&t, "processor." + std::to_string(l) + ".edge_mlp", mesh + "processor_edges_" + std::to_string(l) + "_mesh",
            true);
    add_mlp(&t, "processor." + std::to_string(l) + ".node_mlp",
            mesh + "processor_nodes_" + std::to_string(l) + "_mesh_nodes", true);
  }
  add_mlp(&t, "decoder.m2g_edge_embed", m2g + "encoder_edges_mesh2grid", true);
  add_mlp(&t, "decoder.m2g_edge_mlp", m2g + "processor_edges_0_mesh2grid", true);
  add_mlp(&t, "decoder.grid_node_mlp", m2g + "processor_nodes_0_grid_nodes", true);
  add_mlp(&t, "decoder.mesh_node_mlp", m2g + "processor_nodes_0_mesh_nodes", true);
  add_mlp(&t, "decoder.output_mlp", m2g + "decoder_nodes_grid_nodes", false);
  return t;
}

DeepMindCheckpoint load_deepmind_checkpoint(const std::string& path) { return parse_deepmind_checkpoint(load_npz(path)); }

DeepMindCheckpoint parse_deepmind_checkpoint(NpzFile file) {
  DeepMindCheckpoint c;
  c.path = file.path;
  c.file = std::move(file);
  const ConfigReader r(c.file);
  DeepMindModelConfig& m = c.model;
  m.resolution = r.number("model_config:resolution");
  m.mesh_size = static_cast<int>(r.integer("model_config:mesh_size", 0, 7));
  m.latent_size = r.integer("model_config:latent_size", 1, 1 << 16);
  m.gnn_msg_steps = static_cast<int>(r.integer("model_config:gnn_msg_steps", 1, 1024));
  m.hidden_layers = static_cast<int>(r.integer("model_config:hidden_layers", 0, 64));
  m.radius_query_fraction_edge_length = r.number("model_config:radius_query_fraction_edge_length");
  if (c.file.find("model_config:mesh2grid_edge_normalization_factor"))
    m.mesh2grid_edge_normalization_factor = r.number("model_config:mesh2grid_edge_normalization_factor");
  if (m.hidden_layers != 1)
    r.fail("model_config:hidden_layers is " + std::to_string(m.hidden_layers) +
           "; gc's MLPs have exactly one hidden layer (as every published GraphCast)");
  if (!(m.radius_query_fraction_edge_length > 0) || !(m.resolution > 0))
    r.fail("model_config: resolution and radius_query_fraction_edge_length must be positive");
  if (m.mesh2grid_edge_normalization_factor && !(*m.mesh2grid_edge_normalization_factor > 0))
    r.fail("model_config:mesh2grid_edge_normalization_factor must be positive");
  DeepMindTaskConfig& t = c.task;
  t.input_variables = r.texts("task_config:input_variables");
  t.target_variables = r.texts("task_config:target_variables");
  t.forcing_variables = r.texts("task_config:forcing_variables");
  for (const NpyArray* a : r.tuple("task_config:pressure_levels"))
    t.pressure_levels.push_back(static_cast<int>(r.integer(a->name, 0, 100000)));
  t.input_duration = r.text("task_config:input_duration");
  try {
    (void)t.input_frames();
  } catch (const std::invalid_argument& e) {
    r.fail(std::string("task_config:") + e.what());
  }
  if (t.target_variables.empty()) r.fail("task_config:target_variables is empty");
  const std::set<std::string> inputs(t.input_variables.begin(), t.input_variables.end());
  for (const std::string& v : t.target_variables)
    if (!inputs.count(v))
      r.fail("target variable '" + v + "' is not an input: gc's predictor feeds every target back as an input");
  c.description = c.file.find("description") ? r.text("description") : "";
  c.license = c.file.find("license") ? r.text("license") : "";
  return c;
}

model::GraphCastConfig DeepMindCheckpoint::graphcast_config() const {
  model::GraphCastConfig config;
  config.latent = model.latent_size;
  config.layers = model.gnn_msg_steps;
  config.mesh_level = model.mesh_size;
  int64_t inputs = 0, outputs = 0;
  for (const ChannelGroup& g : input_channel_groups(task)) inputs += g.channels();
  for (const ChannelGroup& g : output_channel_groups(task)) outputs += g.channels();
  config.in_channels = inputs + 3;
  config.out_channels = outputs;
  return config;
}

model::GeometryOptions DeepMindCheckpoint::geometry_options() const {
  model::GeometryOptions options;
  options.radius_fraction = model.radius_query_fraction_edge_length;
  options.m2g_edge_normalization = model.mesh2grid_edge_normalization_factor.value_or(0.0);
  return options;
}

std::vector<const NpyArray*> DeepMindCheckpoint::matched_parameters(const model::GraphCastNet& net) const {
  const auto table = deepmind_parameter_table(net.config().layers);
  const std::vector<Var> params = net.parameters();
  auto fail = [this](const std::string& what) -> void { throw std::runtime_error(path + ": " + what); };
  if (table.size() != params.size())
    fail("gc's network has " + std::to_string(params.size()) + " parameters, the name table " +
         std::to_string(table.size()));
  std::set<std::string> used;
  std::vector<const NpyArray*> out;
  for (size_t i = 0; i < params.size(); ++i) {
    const auto& [gc_name, dm_name] = table[i];
    if (params[i].name() != gc_name) fail("the name table says '" + gc_name + "', the network '" + params[i].name() + "'");
    const NpyArray* a = file.find(dm_name);
    if (a == nullptr) fail("no parameter '" + dm_name + "' (gc's " + gc_name + ")");
    if (a->kind != NpyKind::f32 && a->kind != NpyKind::f64)
      fail("parameter '" + dm_name + "' is " + a->describe() + ", not floating point");
    if (Shape(a->shape.begin(), a->shape.end()) != params[i].shape())
      fail("parameter '" + dm_name + "' is " + a->describe() + ", gc's " + gc_name + " needs " +
           shape_string(params[i].shape()) + " (the configuration and the weights disagree)");
    used.insert(dm_name);
    out.push_back(a);
  }
  for (const NpyArray& a : file.arrays)
    if (a.name.compare(0, 7, "params:") == 0 && !used.count(a.name))
      fail("parameter '" + a.name + "' has no place in gc's GraphCast (another architecture?)");
  return out;
}

std::vector<std::pair<std::string, Tensor>> DeepMindCheckpoint::parameters_for(const model::GraphCastNet& net,
                                                                              Device device) const {
  const std::vector<const NpyArray*> arrays = matched_parameters(net);
  const std::vector<Var> params = net.parameters();
  std::vector<std::pair<std::string, Tensor>> out;
  for (size_t i = 0; i < arrays.size(); ++i) {
    MemoryScope scope(Category::parameter, params[i].name());
    out.emplace_back(params[i].name(), arrays[i]->to_tensor(DType::f32, device));
  }
  return out;
}

void load_deepmind_parameters(const DeepMindCheckpoint& checkpoint, model::GraphCastNet& net) {
  const std::vector<const NpyArray*> arrays = checkpoint.matched_parameters(net);
  std::vector<Var> params = net.parameters();
  for (size_t i = 0; i < params.size(); ++i) {
    Tensor& value = params[i].mutable_value();
    if (value.dtype() != DType::f32)
      throw std::runtime_error(checkpoint.path + ": parameters load into an f32 network only");
    if (value.device() == Device::meta) continue;
    std::vector<float> converted;
    const void* source = arrays[i]->data.data();
    if (arrays[i]->kind == NpyKind::f64) {
      for (double v : arrays[i]->to_doubles()) converted.push_back(static_cast<float>(v));
      source = converted.data();
    }
    device_copy(value.data(), value.device(), source, Device::cpu, static_cast<size_t>(value.numel()) * sizeof(float));
  }
}

}  // namespace gc
