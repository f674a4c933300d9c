// npz.h: reader of NumPy's .npz archives (np.savez): a zip of .npy files, the
// format of DeepMind's GraphCast checkpoints, statistics and example data.
//
// Only what np.savez writes is accepted: stored (uncompressed) zip entries,
// zip64 where the archive needs it, .npy versions 1-3 in C order with the
// little-endian dtypes '<f4' '<f8' '<i4' '<i8' '|b1' and unicode '<U<n>' (how
// np.savez stores a Python str: UTF-32 code units). Anything else is refused
// with a message starting with the path: a compressed archive
// (np.savez_compressed) names the fix, object arrays (pickles) are never
// unpickled, and every size and offset is checked against the file before it is
// used, so a truncated or foreign file is an error, never a crash. Each entry's
// CRC-32 is checked, so a flipped bit is an error naming the entry.
//
// The archive's bytes are host data of the reader (like a file buffer); tensors
// made from an entry (NpyArray::to_tensor) go through the allocator.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/tensor.h"

namespace gc {

enum class NpyKind { f32, f64, i32, i64, boolean, unicode };

struct NpyArray {
  std::string name;            // entry name without ".npy"
  NpyKind kind = NpyKind::f32;
  int64_t item_bytes = 4;      // bytes of one element (4 * characters for unicode)
  std::vector<int64_t> shape;  // C order; empty for a 0-d array
  std::vector<uint8_t> data;   // numel * item_bytes little-endian bytes

  int64_t numel() const;
  // Every element as a double (numeric and boolean kinds; unicode throws).
  std::vector<double> to_doubles() const;
  // A 0-d (or one-element) unicode array as UTF-8 text, trailing NULs dropped.
  std::string to_text() const;
  // A scalar (0-d or one element) numeric value.
  double to_scalar() const;
  // A tensor of `dtype` on `device` (values converted through doubles, exact for
  // f32/f64/i32 and for i64 up to 2^53), under the current MemoryScope.
  Tensor to_tensor(DType dtype, Device device) const;
  std::string describe() const;  // e.g. "'<f4' [3, 4]"
};

struct NpzFile {
  std::string path;
  std::vector<NpyArray> arrays;  // in archive order

  // nullptr when absent.
  const NpyArray* find(const std::string& name) const;
  // Throws std::runtime_error "<path>: no array '<name>'" when absent.
  const NpyArray& at(const std::string& name) const;
};

// Reads the whole archive. Errors throw std::runtime_error starting with "<path>: ".
NpzFile load_npz(const std::string& path);
// The same from bytes in memory; `path` only names them in messages.
NpzFile parse_npz(const std::vector<uint8_t>& bytes, const std::string& path);

// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), the checksum of zip entries.
uint32_t crc32_ieee(const void* data, size_t bytes, uint32_t crc = 0);

}  // namespace gc
