// safetensors.h: checkpoints in the safetensors format, readable by the
// Hugging Face `safetensors` package and anything else that speaks it.
//
// Layout: u64 little-endian header length N, N bytes of JSON header
// {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}},
// then the raw little-endian tensor bytes. Offsets count from the first byte
// after the header; the tensors tile the data region exactly (no gaps, no
// overlaps, nothing after the last). The header is padded with spaces so that
// the data starts on an 8-byte boundary.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "runtime/tensor.h"

namespace gc {

// Writes atomically (write_file_atomic): the previous file survives any failure.
// Tensors are laid out in the order given; cuda tensors are copied to the host
// one at a time. Throws std::invalid_argument for meta or undefined tensors,
// empty, duplicate or reserved ("__metadata__") names; std::runtime_error for I/O.
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::vector<std::pair<std::string, std::string>>& metadata = {});

struct SafetensorsFile {
  std::vector<std::pair<std::string, Tensor>> tensors;  // in header order
  std::vector<std::pair<std::string, std::string>> metadata;
};

// Reads a whole file onto `device` (meta: shapes and dtypes only, data not read).
// Tensor bytes go through the device's allocator under the current MemoryScope.
// Anything inconsistent throws std::runtime_error starting with the path and
// saying what is wrong ("truncated", "corrupted header", ...); the header
// length is checked against the file size and a 100 MB cap before any allocation.
SafetensorsFile load_safetensors(const std::string& path, Device device = Device::cpu);

}  // namespace gc
