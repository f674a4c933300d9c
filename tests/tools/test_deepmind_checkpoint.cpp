// test_deepmind_checkpoint.cpp: DeepMind's checkpoint format read into gc
// (tools/io/deepmind_checkpoint.h): the configuration from the file, the
// channel layout of the three published tasks (474/227, 186/83, 184/83), every
// parameter landing in its gc parameter (names and counts both ways), and clear
// failures for compressed, truncated, foreign and inconsistent checkpoints.
// tests/data/deepmind_like/tiny.npz is written by make_checkpoint.py there.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "tests/test_util.h"
#include "tools/io/deepmind_checkpoint.h"

namespace gc {
namespace {

const std::string kTiny = "tests/data/deepmind_like/tiny.npz";

std::string load_error(const std::string& path) {
  try {
    load_deepmind_checkpoint(path);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

std::string parse_error(NpzFile file) {
  try {
    DeepMindCheckpoint c = parse_deepmind_checkpoint(std::move(file));
    model::GraphCastNet net(c.graphcast_config(), Device::meta, 0);
    c.parameters_for(net, Device::meta);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

TEST(DeepMindCheckpoint, ConfigurationComesFromTheFile) {
  const DeepMindCheckpoint c = load_deepmind_checkpoint(kTiny);
  EXPECT_EQ(c.model.resolution, 30.0);
  EXPECT_EQ(c.model.mesh_size, 1);
  EXPECT_EQ(c.model.latent_size, 4);
  EXPECT_EQ(c.model.gnn_msg_steps, 2);
  EXPECT_EQ(c.model.hidden_layers, 1);
  EXPECT_EQ(c.model.radius_query_fraction_edge_length, 0.6);
  ASSERT_TRUE(c.model.mesh2grid_edge_normalization_factor.has_value());
  EXPECT_EQ(*c.model.mesh2grid_edge_normalization_factor, 0.6180338738074472);
  EXPECT_EQ(c.task.target_variables, (std::vector<std::string>{"2m_temperature", "temperature"}));
  EXPECT_EQ(c.task.input_variables.size(), 5u);
  EXPECT_EQ(c.task.pressure_levels, (std::vector<int>{500, 850}));
  EXPECT_EQ(c.task.input_frames(), 2);
  EXPECT_EQ(c.description, "a tiny GraphCast for gc's tests");
  const model::GraphCastConfig config = c.graphcast_config();
  EXPECT_EQ(config.latent, 4);
  EXPECT_EQ(config.layers, 2);
  EXPECT_EQ(config.mesh_level, 1);
  EXPECT_EQ(config.in_channels, 16);
  EXPECT_EQ(config.out_channels, 3);
  EXPECT_EQ(c.geometry_options().radius_fraction, 0.6);
  EXPECT_EQ(c.geometry_options().m2g_edge_normalization, 0.6180338738074472);
  const DeepMindCheckpoint no_factor = load_deepmind_checkpoint("tests/data/deepmind_like/tiny_no_m2g_factor.npz");
  EXPECT_FALSE(no_factor.model.mesh2grid_edge_normalization_factor.has_value());
  EXPECT_EQ(no_factor.geometry_options().m2g_edge_normalization, 0.0);
}

TEST(DeepMindCheckpoint, ChannelLayoutFollowsDatasetToStacked) {
  const DeepMindCheckpoint c = load_deepmind_checkpoint(kTiny);
  const std::vector<ChannelGroup> in = input_channel_groups(c.task);
  // Sorted by name; time outer, level inner; then the target time's forcings.
  ASSERT_EQ(in.size(), 7u);
  const char* names[] = {"2m_temperature", "land_sea_mask", "temperature", "toa_incident_solar_radiation",
                         "year_progress_sin", "toa_incident_solar_radiation", "year_progress_sin"};
  const int64_t first[] = {0, 2, 3, 7, 9, 11, 12};
  const ChannelGroup::Role roles[] = {ChannelGroup::state,   ChannelGroup::static_field,  ChannelGroup::state,
                                      ChannelGroup::forcing, ChannelGroup::forcing,       ChannelGroup::target_forcing,
                                      ChannelGroup::target_forcing};
  for (size_t i = 0; i < in.size(); ++i) {
    EXPECT_EQ(in[i].variable, names[i]);
    EXPECT_EQ(in[i].first_channel, first[i]) << names[i];
    EXPECT_EQ(in[i].role, roles[i]) << names[i];
  }
  EXPECT_EQ(in[2].frames, 2);
  EXPECT_EQ(in[2].levels, 2);
  const std::vector<ChannelGroup> out = output_channel_groups(c.task);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1].first_channel, 1);
  EXPECT_EQ(out[1].channels(), 2);
}

// The widths of DeepMind's three published models (GRAPHCAST.md section 3).
TEST(DeepMindCheckpoint, PublishedTasksHaveThePublishedWidths) {
  const std::vector<std::string> surface = {"2m_temperature", "mean_sea_level_pressure", "10m_v_component_of_wind",
                                            "10m_u_component_of_wind", "total_precipitation_6hr"};
  const std::vector<std::string> atmospheric = {"temperature",         "geopotential",      "u_component_of_wind",
                                                "v_component_of_wind", "vertical_velocity", "specific_humidity"};
  const std::vector<std::string> forcings = {"toa_incident_solar_radiation", "year_progress_sin", "year_progress_cos",
                                             "day_progress_sin", "day_progress_cos"};
  auto widths = [&](int levels, bool precipitation_input) {
    DeepMindTaskConfig t;
    t.target_variables = surface;
    t.target_variables.insert(t.target_variables.end(), atmospheric.begin(), atmospheric.end());
    for (const std::string& v : t.target_variables)
      if (precipitation_input || v != "total_precipitation_6hr") t.input_variables.push_back(v);
    t.input_variables.insert(t.input_variables.end(), forcings.begin(), forcings.end());
    t.input_variables.push_back("geopotential_at_surface");
    t.input_variables.push_back("land_sea_mask");
    t.forcing_variables = forcings;
    t.pressure_levels.assign(static_cast<size_t>(levels), 1000);
    t.input_duration = "12h";
    int64_t in = 3, out = 0;
    for (const ChannelGroup& g : input_channel_groups(t)) in += g.channels();
    for (const ChannelGroup& g : output_channel_groups(t)) out += g.channels();
    return std::make_pair(in, out);
  };
  EXPECT_EQ(widths(37, true), std::make_pair(int64_t{474}, int64_t{227}));
  EXPECT_EQ(widths(13, true), std::make_pair(int64_t{186}, int64_t{83}));
  EXPECT_EQ(widths(13, false), std::make_pair(int64_t{184}, int64_t{83}));
}

TEST(DeepMindCheckpoint, EveryParameterLandsInItsGcParameter) {
  const DeepMindCheckpoint c = load_deepmind_checkpoint(kTiny);
  model::GraphCastNet net(c.graphcast_config(), Device::cpu, 7);
  load_deepmind_parameters(c, net);
  const auto table = deepmind_parameter_table(2);
  const std::vector<Var> params = net.parameters();
  ASSERT_EQ(params.size(), 94u);
  ASSERT_EQ(table.size(), params.size());
  int64_t values = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    EXPECT_EQ(params[i].name(), table[i].first);
    const std::vector<double> expected = c.file.at(table[i].second).to_doubles();
    EXPECT_EQ(params[i].value().to_doubles(), expected) << table[i].first;
    values += params[i].value().numel();
  }
  EXPECT_EQ(values, 1043);
  EXPECT_EQ(net.parameter_counts().total(), 1043);
  EXPECT_EQ(table[0].second, "params:grid2mesh_gnn/~_networks_builder/encoder_nodes_grid_nodes_mlp/~/linear_0:w");
  EXPECT_EQ(table.back().second, "params:mesh2grid_gnn/~_networks_builder/decoder_nodes_grid_nodes_mlp/~/linear_1:b");

  // On meta: validated, nothing with data.
  model::GraphCastNet meta(c.graphcast_config(), Device::meta, 7);
  EXPECT_NO_THROW(load_deepmind_parameters(c, meta));
}

TEST(DeepMindCheckpoint, BadFilesFailClearly) {
  EXPECT_NE(load_error("tests/data/deepmind_like/tiny_compressed.npz").find("np.savez_compressed"), std::string::npos);
  EXPECT_NE(load_error("tests/data/npz/basic.npz").find("not a DeepMind GraphCast checkpoint"), std::string::npos);
  const std::string whole = test::read_file(kTiny);
  const std::vector<uint8_t> cut(whole.begin(), whole.begin() + static_cast<long>(whole.size() / 2));
  EXPECT_THROW(parse_npz(cut, "cut.npz"), std::runtime_error);

  const NpzFile good = load_npz(kTiny);
  EXPECT_EQ(parse_error(good), "");
  auto without = [&](const std::string& name) {
    NpzFile f = good;
    for (size_t i = 0; i < f.arrays.size(); ++i)
      if (f.arrays[i].name == name) f.arrays.erase(f.arrays.begin() + static_cast<long>(i));
    return f;
  };
  const std::string missing =
      parse_error(without("params:mesh_gnn/~_networks_builder/processor_edges_1_mesh_mlp/~/linear_1:w"));
  EXPECT_NE(missing.find("no parameter 'params:mesh_gnn/~_networks_builder/processor_edges_1_mesh_mlp/~/linear_1:w' "
                         "(gc's processor.1.edge_mlp.linear1.weight)"),
            std::string::npos)
      << missing;
  EXPECT_NE(parse_error(without("model_config:latent_size")).find("no 'model_config:latent_size'"), std::string::npos);

  NpzFile extra = good;
  extra.arrays.push_back(good.at("params:mesh_gnn/~_networks_builder/encoder_edges_mesh_layer_norm:scale"));
  extra.arrays.back().name = "params:mesh_gnn/~_networks_builder/processor_edges_2_mesh_layer_norm:scale";
  EXPECT_NE(parse_error(extra).find("has no place in gc's GraphCast"), std::string::npos);

  auto with_value = [&](const std::string& name, const NpyArray& value) {
    NpzFile f = good;
    for (NpyArray& a : f.arrays)
      if (a.name == name) a = value, a.name = name;
    return f;
  };
  NpyArray two = good.at("model_config:mesh_size");
  two.data.assign(8, 0);
  two.data[0] = 2;
  EXPECT_NE(parse_error(with_value("model_config:hidden_layers", two)).find("exactly one hidden layer"),
            std::string::npos);
  // mesh 2 with mesh-1 weights: shapes still agree (they do not depend on the mesh); latent 2 does not.
  EXPECT_NE(parse_error(with_value("model_config:latent_size", two)).find("the configuration and the weights disagree"),
            std::string::npos);
  EXPECT_NE(parse_error(with_value("task_config:input_duration", good.at("description"))).find("input_duration"),
            std::string::npos);
  EXPECT_NE(parse_error(with_value("model_config:mesh_size", good.at("description"))).find("not a number"),
            std::string::npos);
}

}  // namespace
}  // namespace gc
