// safetensors.h: checkpoints in the safetensors format, readable by the
// Hugging Face `safetensors` package and anything else that speaks it.
//
// Layout: u64 little-endian header length N, N bytes of JSON header
// {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}},
// then the raw little-endian tensor bytes. Offsets count from the first byte
// after the header; the tensors tile the data region exactly (no gaps, no
// overlaps, nothing after the last). The header is padded with spaces so that
// the data starts on an 8-byte boundary.
//
// Checksums: gc records the CRC32C of each tensor's bytes in the metadata as
// "gc.crc32c.<tensor name>": "<8 lowercase hex digits>" (metadata values must be
// strings; other readers see ordinary metadata). A file carries a checksum for
// every tensor or for none (files of other writers): a bit flipped on disk or
// in transit is then an error naming the tensor instead of a silently wrong
// weight. Checksum keys are the reader's business: load_safetensors verifies
// and removes them, save_safetensors refuses them from the caller.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "runtime/tensor.h"

namespace gc {

// CRC32C (Castagnoli, reflected polynomial 0x82F63B78, as in iSCSI and ext4) of
// `bytes` bytes, continuing from the CRC32C `crc` of the bytes before them:
// crc32c(b, m, crc32c(a, n)) is the CRC32C of a followed by b.
uint32_t crc32c(const void* data, size_t bytes, uint32_t crc = 0);

// Writes atomically (write_file_atomic): the previous file survives any failure.
// Tensors are laid out in the order given; cuda tensors are copied to the host
// one at a time. Throws std::invalid_argument for meta or undefined tensors,
// empty, duplicate or reserved ("__metadata__") names and for metadata keys
// starting with "gc.crc32c." (the checksums are written here, one per tensor);
// std::runtime_error for I/O.
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::vector<std::pair<std::string, std::string>>& metadata = {});

struct SafetensorsFile {
  std::vector<std::pair<std::string, Tensor>> tensors;  // in header order
  std::vector<std::pair<std::string, std::string>> metadata;  // without the checksum keys
};

// Reads a whole file onto `device` (meta: shapes and dtypes only, data not read).
// Tensor bytes go through the device's allocator under the current MemoryScope.
// Anything inconsistent throws std::runtime_error starting with the path and
// saying what is wrong ("truncated", "corrupted header", ...); the header
// length is checked against the file size and a 100 MB cap before any allocation.
// Only regular files are opened for reading (a FIFO or a directory is refused
// without blocking). Tensor bytes are checked against their checksums when the
// file has them ("checksum mismatch in tensor '<name>'"); on meta there are no
// bytes to check.
SafetensorsFile load_safetensors(const std::string& path, Device device = Device::cpu);

}  // namespace gc
