// test_file_util.h: reading back the files a test made its code write.
#pragma once

#include <fstream>
#include <sstream>
#include <string>

namespace gc::test {

// The whole file as bytes; empty when it cannot be opened.
inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Whether the file starts with the 8-byte PNG signature and has more after it.
inline bool has_png_signature(const std::string& path) {
  static const std::string kPngSignature("\x89PNG\r\n\x1a\n", 8);
  const std::string bytes = read_file(path);
  return bytes.size() > kPngSignature.size() && bytes.compare(0, kPngSignature.size(), kPngSignature) == 0;
}

}  // namespace gc::test
