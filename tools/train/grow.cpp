// grow.cpp: load_grow_source and grow_parameters (see grow.h).
#include "tools/train/grow.h"

#include <sys/stat.h>

#include <cmath>
#include <fstream>
#include <map>
#include <sstream>

#include "runtime/random.h"
#include "tools/io/safetensors.h"

namespace gc {

namespace {

bool is_directory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// The checkpoint directory: `path` itself, or the one its `latest` names.
std::string checkpoint_directory(const std::string& path) {
  std::ifstream latest(path + "/latest");
  std::string name;
  if (latest >> name) return path + "/" + name;
  return path;
}

// "key=value" fields of a checkpoint's config string.
std::map<std::string, std::string> fields(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  std::string item;
  while (in >> item) {
    const size_t eq = item.find('=');
    if (eq != std::string::npos) out[item.substr(0, eq)] = item.substr(eq + 1);
  }
  return out;
}

const std::string* metadata(const SafetensorsFile& file, const std::string& key) {
  for (const auto& [k, v] : file.metadata)
    if (k == key) return &v;
  return nullptr;
}

// The demo data's resolution of a run identity ("swe T21 trajectories ..."): its first two words.
std::string resolution_of(const std::string& data) {
  std::istringstream in(data);
  std::string a, b;
  in >> a >> b;
  return a + " " + b;
}

// The new channel j of a latent dimension of `parts` blocks of width
// `new_width`, as the old channel it copies (blocks of `old_width`); heads keep
// their channels.
int64_t old_channel(int64_t j, int64_t new_width, int64_t old_width, int64_t heads) {
  const int64_t part = j / new_width, t = j % new_width;
  const int64_t new_head = new_width / heads, old_head = old_width / heads;
  const int64_t head = t / new_head, within = (t % new_head) % old_head;
  return part * old_width + head * old_head + within;
}

}  // namespace

GrowSource load_grow_source(const std::string& checkpoint, const TrainOptions& o) {
  if (o.device == Device::meta)
    throw UsageError("--grow-from needs a device with values (cpu or cuda): a dry run on meta has no weights to grow");
  if (!is_directory(checkpoint)) throw UsageError("--grow-from: '" + checkpoint + "' is not a checkpoint directory");
  const std::string dir = checkpoint_directory(checkpoint);
  GrowSource source;
  source.path = dir + "/weights.safetensors";
  SafetensorsFile weights, state;
  try {
    MemoryScope scope(Category::temporary, "grow_from");
    weights = load_safetensors(source.path, Device::cpu);
    state = load_safetensors(dir + "/train_state.safetensors", Device::cpu);
  } catch (const std::exception& e) {
    throw UsageError(std::string("--grow-from: ") + e.what());
  }
  const std::string* config = metadata(weights, "config");
  if (!config) throw UsageError("--grow-from: " + source.path + " has no 'config' metadata: not a gc checkpoint");
  auto f = fields(*config);
  const std::string processor = f.count("processor") ? f["processor"] : "interaction";
  const std::string expected = "preset=" + o.preset + " mesh=" + std::to_string(o.mesh_level) +
                               " in=" + std::to_string(o.in_channels) + " out=" + std::to_string(o.out_channels);
  const std::string found = "preset=" + f["preset"] + " mesh=" + f["mesh"] + " in=" + f["in"] + " out=" + f["out"];
  if (found != expected)
    throw UsageError("--grow-from: " + dir + " is a model of " + found + "; this run is " + expected +
                     ": a model grows in latent width and layers only, on the same data, mesh and channels");
  if (processor != o.processor)
    throw UsageError("--grow-from: " + dir + " is a --processor " + processor + " model; this run is --processor " +
                     o.processor + ": a model grows within its block");
  if (const std::string* data = metadata(state, "data")) {
    const std::string now = o.has_data() ? "swe T" + std::to_string(o.data_truncation) : std::string("random inputs");
    if (resolution_of(*data) != resolution_of(now + " "))
      throw UsageError("--grow-from: " + dir + " was trained on " + *data + "; this run's data is " + now +
                       ": the grid must stay the same");
  }
  try {
    source.latent = std::stoll(f.at("latent"));
    source.layers = std::stoi(f.at("layers"));
  } catch (const std::exception&) {
    throw UsageError("--grow-from: " + source.path + ": unreadable config '" + *config + "'");
  }
  source.processor = processor;
  const std::string from = std::to_string(source.latent) + " x " + std::to_string(source.layers);
  const std::string to = std::to_string(o.latent) + " x " + std::to_string(o.layers);
  if (o.latent < source.latent || o.layers < source.layers)
    throw UsageError("--grow-from: cannot grow " + from + " (latent x layers) into the smaller " + to +
                     ": a grown model is at least as wide and as deep");
  if (o.latent % source.latent != 0)
    throw UsageError("--grow-from: --latent " + std::to_string(o.latent) + " is not a whole multiple of the old " +
                     std::to_string(source.latent) +
                     ": the function-preserving widening repeats each channel the same number of times (LayerNorm "
                     "keeps its statistics only then)");
  if (o.latent == source.latent && o.layers == source.layers)
    throw UsageError("--grow-from: the model is already " + to + ": nothing to grow (continue it with --resume)");
  source.weights = std::move(weights.tensors);
  return source;
}

void grow_parameters(model::GraphCastNet& net, const GrowSource& source, uint64_t seed, double noise_scale) {
  const model::GraphCastConfig& c = net.config();
  const int64_t new_latent = c.latent, old_latent = source.latent;
  const int64_t ratio = new_latent / old_latent;
  const int64_t heads = c.processor == model::Processor::attention ? model::kAttentionHeads : 1;
  std::map<std::string, const Tensor*> old;
  for (const auto& [name, t] : source.weights) old[name] = &t;
  size_t used = 0;
  uint64_t noise_state = seed * 2654435761ull + 12345;
  MemoryScope scope(Category::temporary, "grow_from");  // the host copies of the grown values
  for (Var& p : net.parameters()) {
    const std::string& name = p.name();
    Tensor& value = p.mutable_value();
    const Shape& shape = value.shape();
    auto found = old.find(name);
    if (found == old.end()) {
      // A new processor layer: identity through the residual (last linear layer zero).
      int layer = -1;
      if (name.rfind("processor.", 0) == 0) layer = std::atoi(name.c_str() + 10);
      if (layer < source.layers || name.find("mesh_edge_embed") != std::string::npos)
        throw std::runtime_error("--grow-from: " + source.path + " has no tensor '" + name + "'");
      if (name.find(".linear1.") != std::string::npos || name.find("layernorm.beta") != std::string::npos) {
        std::vector<double> zeros(static_cast<size_t>(value.numel()), 0.0);
        value.copy_from(Tensor::from_doubles(zeros, shape, value.dtype()));
      }
      continue;
    }
    ++used;
    const Tensor& before = *found->second;
    const Shape& old_shape = before.shape();
    if (old_shape.size() != shape.size())
      throw std::runtime_error("--grow-from: '" + name + "' is " + before.describe() + ", this model's is " +
                               value.describe());
    // Each dimension: kept (same size) or latent (ratio times the old size, in whole latent blocks).
    std::vector<bool> latent(shape.size());
    for (size_t d = 0; d < shape.size(); ++d) {
      latent[d] = shape[d] != old_shape[d];
      if (latent[d] && (shape[d] != ratio * old_shape[d] || old_shape[d] % old_latent != 0))
        throw std::runtime_error("--grow-from: '" + name + "' is " + before.describe() + ", this model's is " +
                                 value.describe() + ": not a widening of the latent");
    }
    const std::vector<double> w = before.to_doubles();
    std::vector<double> grown(static_cast<size_t>(value.numel()));
    auto map = [&](size_t d, int64_t j) {
      return latent[d] ? old_channel(j, new_latent, old_latent, heads) : j;
    };
    if (shape.size() == 1) {
      for (int64_t j = 0; j < shape[0]; ++j) grown[static_cast<size_t>(j)] = w[static_cast<size_t>(map(0, j))];
    } else {
      const int64_t rows = shape[0], cols = shape[1], old_cols = old_shape[1];
      const bool split_rows = latent[0] && ratio > 1;
      double rms = 0;
      for (double v : w) rms += v * v;
      rms = w.empty() ? 0.0 : std::sqrt(rms / static_cast<double>(w.size()));
      const double sigma = noise_scale * rms / static_cast<double>(ratio);
      for (int64_t i = 0; i < rows; ++i)
        for (int64_t j = 0; j < cols; ++j)
          grown[static_cast<size_t>(i * cols + j)] =
              w[static_cast<size_t>(map(0, i) * old_cols + map(1, j))] / (split_rows ? static_cast<double>(ratio) : 1.0);
      if (split_rows && sigma > 0) {
        // Noise over the ratio copies of each old row, minus its mean: the copies still sum to the old row.
        std::map<int64_t, std::vector<int64_t>> copies;
        for (int64_t i = 0; i < rows; ++i) copies[map(0, i)].push_back(i);
        for (const auto& [old_row, new_rows] : copies)
          for (int64_t j = 0; j < cols; ++j) {
            std::vector<double> n(new_rows.size());
            double mean = 0;
            for (double& v : n) mean += (v = sigma * next_normal(noise_state));
            mean /= static_cast<double>(n.size());
            for (size_t k = 0; k < n.size(); ++k) grown[static_cast<size_t>(new_rows[k] * cols + j)] += n[k] - mean;
          }
      }
    }
    value.copy_from(Tensor::from_doubles(grown, shape, value.dtype()));
  }
  if (used != source.weights.size())
    throw std::runtime_error("--grow-from: " + source.path + " holds " + std::to_string(source.weights.size()) +
                             " tensors, of which this model has " + std::to_string(used) + ": another kind of model");
}

}  // namespace gc
