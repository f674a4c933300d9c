// fuzz_swe_dataset.cpp: libFuzzer target of the data-cache reader
// (tools/data/swe_dataset.h: load_swe_dataset), fed through a scratch file.
//
// Contract: any file either loads or throws std::runtime_error naming the file
// ("swe cache <path>: ..."); nothing else may escape, crash, hang, leak or trip
// ASan/UBSan, and no corrupted count may cause an allocation beyond the file's
// own size. A file that loads is a consistent data set: its settings validate,
// its grid is the truncation's, and the file is exactly the 112-byte header,
// the values and the 8-byte checksum.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "tests/fuzz/fuzz_temp_file.h"
#include "tools/data/swe_dataset.h"

namespace {

[[noreturn]] void broken(const std::string& what) {
  std::fprintf(stderr, "fuzz_swe_dataset: %s\n", what.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = gc::fuzz::temp_file().write(data, size);
  gc::data::SweDataset dataset;
  try {
    dataset = gc::data::load_swe_dataset(path);
  } catch (const std::runtime_error& error) {
    if (std::string(error.what()).rfind("swe cache " + path + ": ", 0) != 0)
      broken(std::string("error does not name the file: ") + error.what());
    return 0;
  }
  try {
    dataset.config.validate();
  } catch (const std::invalid_argument& error) {
    broken(std::string("loaded settings do not validate: ") + error.what());
  }
  const size_t expected_values =
      static_cast<size_t>(dataset.trajectories()) * dataset.frames() * dataset.frame_elements();
  if (dataset.values.size() != expected_values) broken("values do not match the settings");
  if (112 + dataset.values.size() * sizeof(float) + 8 != size) broken("file size is not header + values + checksum");
  if (dataset.latitudes_deg.size() != static_cast<size_t>(dataset.nlat) ||
      dataset.longitudes_deg.size() != static_cast<size_t>(dataset.nlon) ||
      dataset.gauss_weights.size() != static_cast<size_t>(dataset.nlat))
    broken("grid coordinates do not match the grid");
  if (!(dataset.time_step_s > 0) || !(dataset.time_step_s < 1e9)) broken("the time step is not a positive duration");
  const int last_trajectory = dataset.trajectories() - 1, last_frame = dataset.frames() - 1;
  if (dataset.frame(last_trajectory, last_frame) + dataset.frame_elements() != dataset.values.data() + dataset.values.size())
    broken("the last frame does not end the values");
  return 0;
}
