// fuzz_safetensors.cpp: libFuzzer target of the safetensors reader
// (tools/io/safetensors.h: load_safetensors), fed through a scratch file.
//
// Contract: any file either loads or throws std::runtime_error whose message
// starts with the path; nothing else may escape, crash, hang, leak or trip
// ASan/UBSan. A file that loads on the cpu must also load on the meta device
// with the same names, dtypes and shapes, and its tensors must tile the data
// region: the sum of numel x dtype size equals the file size minus the 8-byte
// length and the header.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

#include "runtime/dtype.h"
#include "tests/fuzz/fuzz_temp_file.h"
#include "tools/io/safetensors.h"

namespace {

[[noreturn]] void broken(const std::string& what) {
  std::fprintf(stderr, "fuzz_safetensors: %s\n", what.c_str());
  std::abort();
}

// Loads or returns false; any exception other than a runtime_error naming the path escapes.
bool try_load(const std::string& path, gc::Device device, gc::SafetensorsFile* out) {
  try {
    *out = gc::load_safetensors(path, device);
    return true;
  } catch (const std::runtime_error& error) {
    if (std::strncmp(error.what(), (path + ": ").c_str(), path.size() + 2) != 0)
      broken(std::string("error does not start with the path: ") + error.what());
    return false;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = gc::fuzz::temp_file().write(data, size);
  gc::SafetensorsFile file;
  if (!try_load(path, gc::Device::cpu, &file)) return 0;

  uint64_t header_bytes = 0;
  for (int i = 7; i >= 0; --i) header_bytes = (header_bytes << 8) | data[i];
  uint64_t tensor_bytes = 0;
  for (const auto& [name, tensor] : file.tensors) {
    uint64_t numel = 1;
    for (int64_t dim : tensor.shape()) numel *= static_cast<uint64_t>(dim);
    const uint64_t expected = numel * gc::dtype_size(tensor.dtype());
    if (static_cast<uint64_t>(tensor.nbytes()) != expected)
      broken("tensor '" + name + "' holds " + std::to_string(tensor.nbytes()) + " bytes, its shape and dtype say " +
             std::to_string(expected));
    tensor_bytes += expected;
  }
  if (8 + header_bytes + tensor_bytes != size)
    broken("tensors cover " + std::to_string(tensor_bytes) + " bytes of a " + std::to_string(size) +
           "-byte file with a " + std::to_string(header_bytes) + "-byte header");

  gc::SafetensorsFile meta;
  if (!try_load(path, gc::Device::meta, &meta)) broken("loads on the cpu but not on the meta device");
  if (meta.tensors.size() != file.tensors.size() || meta.metadata != file.metadata) broken("meta load differs");
  for (size_t i = 0; i < file.tensors.size(); ++i) {
    const auto& [name, tensor] = file.tensors[i];
    if (meta.tensors[i].first != name || meta.tensors[i].second.shape() != tensor.shape() ||
        meta.tensors[i].second.dtype() != tensor.dtype())
      broken("meta load differs at tensor '" + name + "'");
  }
  return 0;
}
