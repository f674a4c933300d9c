// fuzz_npz.cpp: libFuzzer target of the .npz reader (tools/io/npz.h: parse_npz).
//
// Contract: any bytes either parse or throw std::runtime_error whose message
// starts with the name given; nothing else may escape, crash, hang, leak or trip
// ASan/UBSan. An archive that parses holds arrays whose data size is exactly
// numel x item size, and whose every value converts (numbers to doubles, unicode
// scalars to UTF-8 text).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "tools/io/npz.h"

namespace {

[[noreturn]] void broken(const std::string& what) {
  std::fprintf(stderr, "fuzz_npz: %s\n", what.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::vector<uint8_t> bytes(data, data + size);
  gc::NpzFile file;
  try {
    file = gc::parse_npz(bytes, "input.npz");
  } catch (const std::runtime_error& error) {
    if (std::strncmp(error.what(), "input.npz: ", 11) != 0)
      broken(std::string("error does not start with the name: ") + error.what());
    return 0;
  }
  for (const gc::NpyArray& array : file.arrays) {
    if (static_cast<int64_t>(array.data.size()) != array.numel() * array.item_bytes)
      broken("array '" + array.name + "' holds " + std::to_string(array.data.size()) + " bytes, its header says " +
             array.describe());
    if (array.kind == gc::NpyKind::unicode) {
      if (array.numel() == 1) {
        try {
          (void)array.to_text();
        } catch (const std::runtime_error&) {  // an invalid code point is a clear error
        }
      }
    } else if (array.to_doubles().size() != static_cast<size_t>(array.numel())) {
      broken("array '" + array.name + "' converts to the wrong number of values");
    }
  }
  return 0;
}
