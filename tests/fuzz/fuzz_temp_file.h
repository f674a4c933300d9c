// fuzz_temp_file.h: the one scratch file of a fuzz process, for readers that
// take a path. It lives in a private directory (mkdtemp under $TMPDIR) that is
// removed with everything in it when the process exits normally; a crashing
// input leaves it behind, next to libFuzzer's own crash file.
#pragma once

#include <stdlib.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <string>

namespace gc::fuzz {

class TempFile {
 public:
  TempFile() {
    std::string pattern = (std::filesystem::temp_directory_path() / "gc_fuzz_XXXXXX").string();
    if (!::mkdtemp(pattern.data())) throw std::runtime_error("fuzz: mkdtemp failed for " + pattern);
    directory_ = pattern;
    path_ = directory_ + "/input";
  }
  ~TempFile() {
    std::error_code ignored;
    std::filesystem::remove_all(directory_, ignored);
  }

  // Replaces the file with one of exactly these bytes and returns its path.
  // A new file each time rather than a truncated one: ext4 flushes a file that
  // was truncated and rewritten when it is closed, which made every input wait
  // for the disk (300 inputs/s instead of thousands).
  const std::string& write(const uint8_t* data, size_t size) {
    std::remove(path_.c_str());
    std::FILE* file = std::fopen(path_.c_str(), "wb");
    if (!file) throw std::runtime_error("fuzz: cannot write " + path_);
    const bool ok = (size == 0 || std::fwrite(data, 1, size, file) == size);
    if (std::fclose(file) != 0 || !ok) throw std::runtime_error("fuzz: short write to " + path_);
    return path_;
  }

 private:
  std::string directory_, path_;
};

// A function-local static: created on the first input, destroyed at exit().
inline TempFile& temp_file() {
  static TempFile file;
  return file;
}

}  // namespace gc::fuzz
