// forecast_options.h: gc_forecast's command line. Bad input throws UsageError
// naming the flag; the program prints it and exits 2.
#pragma once

#include <string>
#include <vector>

#include "runtime/device.h"
#include "runtime/dtype.h"

namespace gc::forecast {

struct PlotRequest {
  std::string variable;
  int level = -1;  // hPa for atmospheric variables (-1: the first level); surface: -1
};

struct ForecastOptions {
  std::string checkpoint;        // DeepMind .npz or converted .safetensors
  std::string stats, inputs, forcings, graphs;
  std::string convert_to;        // --convert-to: write the converted checkpoint and stop
  int steps = 1;
  std::string precision = "fp32";
  Device device = Device::cpu;
  Device meta_target = Device::cuda;
  std::string out = "runs/forecast/forecast.safetensors";
  std::vector<PlotRequest> plots;
  std::string plot_dir;          // "": the folder of --out
  std::string report_path, trace_path, trace_png;
  bool quiet = false;

  DType compute_dtype() const;
};

// Parses argv (without argv[0]). Returns false when --help was asked (text in *help).
bool parse_forecast_options(const std::vector<std::string>& args, ForecastOptions* options, std::string* help);
std::string forecast_usage();

}  // namespace gc::forecast
