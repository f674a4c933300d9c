// fuzz_weather_dataset.cpp: libFuzzer target of the weather data reader
// (tools/data/weather_dataset.h: open_weather_dataset, read_frame), fed a
// folder made from the input: the bytes before the first NUL are dataset.json,
// the bytes after it are chunk-00000.bin (the only chunk a description can name
// here and find).
//
// Contract: any folder either opens or throws WeatherDataError starting with
// "weather data <dir>: "; nothing else may escape, crash, hang, leak or trip
// ASan/UBSan. A folder that opens is consistent: latitudes strictly decreasing,
// the chunk holds exactly the header and every frame, and every frame reads
// (finite or not, the values are the file's) without an error.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/fuzz/fuzz_temp_file.h"
#include "tools/data/weather_dataset.h"

namespace {

[[noreturn]] void broken(const std::string& what) {
  std::fprintf(stderr, "fuzz_weather_dataset: %s\n", what.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The scratch file's folder holds the data set's two files.
  const std::string dir = std::filesystem::path(gc::fuzz::temp_file().write(data, 0)).parent_path().string();
  const uint8_t* nul = static_cast<const uint8_t*>(std::memchr(data, 0, size));
  const size_t text_bytes = nul ? static_cast<size_t>(nul - data) : size;
  // A new file each time, never a truncated one (see fuzz_temp_file.h: ext4 flushes those).
  auto write = [&](const std::string& name, const uint8_t* bytes, size_t n) {
    std::remove((dir + "/" + name).c_str());
    std::FILE* f = std::fopen((dir + "/" + name).c_str(), "wb");
    if (!f || (n > 0 && std::fwrite(bytes, 1, n, f) != n) || std::fclose(f) != 0) broken("cannot write " + name);
  };
  write("dataset.json", data, text_bytes);
  if (nul) write("chunk-00000.bin", nul + 1, size - text_bytes - 1);
  else std::remove((dir + "/chunk-00000.bin").c_str());
  gc::data::WeatherDataset d;
  try {
    d = gc::data::open_weather_dataset(dir);
  } catch (const gc::data::WeatherDataError& error) {
    if (std::string(error.what()).rfind("weather data " + dir + ": ", 0) != 0)
      broken(std::string("error does not name the folder: ") + error.what());
    return 0;
  }
  for (size_t i = 1; i < d.latitudes_deg.size(); ++i)
    if (!(d.latitudes_deg[i] < d.latitudes_deg[i - 1])) broken("latitudes not decreasing");
  if (d.chunk_files.size() != 1) broken("more than one chunk opened");
  const int64_t chunk_bytes = gc::data::kWeatherChunkHeaderBytes + d.times * d.frame_values() * (d.bf16 ? 2 : 4);
  if (chunk_bytes != static_cast<int64_t>(size - text_bytes - 1)) broken("the chunk is not header + frames");
  std::vector<float> frame(static_cast<size_t>(d.frame_values()));
  for (int64_t t = 0; t < d.times; ++t) d.read_frame(t, frame.data());
  return 0;
}
