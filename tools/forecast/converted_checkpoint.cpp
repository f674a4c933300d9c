// converted_checkpoint.cpp: see converted_checkpoint.h.
#include "tools/forecast/converted_checkpoint.h"

#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "tools/io/safetensors.h"
#include "tools/usage_error.h"

namespace gc::forecast {

namespace {

constexpr const char* kPrefix = "gc.deepmind.";

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

std::string encode(const NpyArray& a) {
  if (a.numel() != 1) throw std::runtime_error("'" + a.name + "' is " + a.describe() + ", not a scalar");
  char text[64];
  switch (a.kind) {
    case NpyKind::unicode: return "s:" + a.to_text();
    case NpyKind::boolean: return a.to_scalar() != 0 ? "b:1" : "b:0";
    case NpyKind::i32:
    case NpyKind::i64: std::snprintf(text, sizeof text, "i:%lld", static_cast<long long>(a.to_scalar())); return text;
    default: std::snprintf(text, sizeof text, "f:%.17g", a.to_scalar()); return text;
  }
}

NpyArray decode(const std::string& name, const std::string& value, const std::string& path) {
  NpyArray a;
  a.name = name;
  if (value.size() < 2 || value[1] != ':') throw UsageError(path + ": metadata '" + name + "' is not a gc.deepmind value");
  const std::string text = value.substr(2);
  auto put = [&a](const void* bytes, size_t n) { a.data.assign(static_cast<const uint8_t*>(bytes), static_cast<const uint8_t*>(bytes) + n); };
  try {
    if (value[0] == 's') {
      a.kind = NpyKind::unicode;
      std::vector<uint32_t> code_points;
      for (size_t i = 0; i < text.size();) {  // UTF-8 -> UTF-32
        const unsigned char c = static_cast<unsigned char>(text[i]);
        const int n = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
        uint32_t cp = n == 1 ? c : c & (0x3F >> (n - 1));
        for (int k = 1; k < n && i + static_cast<size_t>(k) < text.size(); ++k)
          cp = (cp << 6) | (static_cast<unsigned char>(text[i + static_cast<size_t>(k)]) & 0x3F);
        code_points.push_back(cp);
        i += static_cast<size_t>(n);
      }
      if (code_points.empty()) code_points.push_back(0);
      a.item_bytes = static_cast<int64_t>(4 * code_points.size());
      put(code_points.data(), 4 * code_points.size());
    } else if (value[0] == 'i') {
      a.kind = NpyKind::i64;
      a.item_bytes = 8;
      const int64_t v = std::stoll(text);
      put(&v, 8);
    } else if (value[0] == 'f') {
      a.kind = NpyKind::f64;
      a.item_bytes = 8;
      const double v = std::stod(text);
      put(&v, 8);
    } else if (value[0] == 'b') {
      a.kind = NpyKind::boolean;
      a.item_bytes = 1;
      const uint8_t v = text == "1";
      put(&v, 1);
    } else {
      throw std::invalid_argument("kind");
    }
  } catch (const std::logic_error&) {
    throw UsageError(path + ": metadata '" + name + "' has an unreadable value");
  }
  return a;
}

}  // namespace

void save_converted_checkpoint(const DeepMindCheckpoint& checkpoint, const std::string& path) {
  model::GraphCastNet net(checkpoint.graphcast_config(), Device::meta, 0);
  checkpoint.parameters_for(net, Device::meta);  // every name and shape checked first
  const auto table = deepmind_parameter_table(net.config().layers);
  std::vector<std::pair<std::string, Tensor>> tensors;
  {
    MemoryScope scope(Category::parameter, "converted");
    for (const auto& [gc_name, dm_name] : table) tensors.emplace_back(gc_name, checkpoint.file.at(dm_name).to_tensor(DType::f32, Device::cpu));
  }
  std::vector<std::pair<std::string, std::string>> metadata = {{"gc.format", "graphcast-deepmind"}};
  for (const NpyArray& a : checkpoint.file.arrays)
    if (a.name.compare(0, 7, "params:") != 0) metadata.emplace_back(kPrefix + a.name, encode(a));
  save_safetensors(path, tensors, metadata);
}

DeepMindCheckpoint load_forecast_checkpoint(const std::string& path) {
  try {
    if (!ends_with(path, ".safetensors")) return load_deepmind_checkpoint(path);
    const SafetensorsFile file = load_safetensors(path, Device::cpu);
    NpzFile rebuilt;
    rebuilt.path = path;
    bool ours = false;
    for (const auto& [key, value] : file.metadata) {
      if (key == "gc.format" && value == "graphcast-deepmind") ours = true;
      if (key.compare(0, std::strlen(kPrefix), kPrefix) == 0) rebuilt.arrays.push_back(decode(key.substr(std::strlen(kPrefix)), value, path));
    }
    if (!ours) throw UsageError(path + ": not a converted GraphCast checkpoint (no gc.format graphcast-deepmind metadata); "
                                "gc_train's own checkpoints hold no task to forecast with");
    DeepMindCheckpoint config_only = parse_deepmind_checkpoint(rebuilt);
    const auto table = deepmind_parameter_table(config_only.model.gnn_msg_steps);
    for (const auto& [name, tensor] : file.tensors) {
      std::string dm_name;
      for (const auto& [gc_name, deepmind_name] : table)
        if (gc_name == name) dm_name = deepmind_name;
      if (dm_name.empty()) throw UsageError(path + ": tensor '" + name + "' is not a parameter of this GraphCast");
      if (tensor.dtype() != DType::f32) throw UsageError(path + ": tensor '" + name + "' is not f32");
      NpyArray a;
      a.name = dm_name;
      a.kind = NpyKind::f32;
      a.shape.assign(tensor.shape().begin(), tensor.shape().end());
      const auto* bytes = static_cast<const uint8_t*>(tensor.data());
      a.data.assign(bytes, bytes + tensor.nbytes());
      rebuilt.arrays.push_back(std::move(a));
    }
    return parse_deepmind_checkpoint(std::move(rebuilt));
  } catch (const UsageError&) {
    throw;
  } catch (const std::runtime_error& e) {
    throw UsageError(e.what());
  }
}

}  // namespace gc::forecast
