// fuzz_options.cpp: libFuzzer target of gc_train's option parser
// (tools/train/options.h: parse_train_options).
//
// The input is split into argv strings at every '\n' and NUL (a real argv
// string holds neither), so corpus files read as one flag or value a line.
// Contract: any argv either parses, asks for --help, or throws UsageError;
// nothing else may escape, crash, hang or trip ASan/UBSan. Options that parse
// must be ones the rest of gc_train can use: each field inside the range its
// flag documents (the checks below mirror --help and options.h).
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "tools/train/options.h"

namespace {

[[noreturn]] void broken(const std::string& what, const std::vector<std::string>& args) {
  std::fprintf(stderr, "fuzz_options: %s\n  argv:", what.c_str());
  for (const std::string& arg : args) std::fprintf(stderr, " '%s'", arg.c_str());
  std::fprintf(stderr, "\n");
  std::abort();
}

void check_parsed(const gc::TrainOptions& o, const std::vector<std::string>& args) {
  auto require = [&](bool ok, const char* what) {
    if (!ok) broken(std::string("parsed, but ") + what, args);
  };
  try {
    o.compute_dtype();
  } catch (const gc::UsageError&) {
    broken("parsed, but the precision is not one of fp32, bf16, fp16", args);
  }
  require(o.preset == "demo" || o.preset == "era5-demo" || o.preset == "graphcast" || o.preset == "graphcast-small" ||
              o.preset == "graphcast-operational", "an unknown preset");
  require(o.preset != "era5-demo" || o.has_weather_data(), "era5-demo without --data");
  require(!o.has_weather_data() || o.preset == "demo" || o.preset == "era5-demo", "--data with a random-input preset");
  require(o.has_weather_data() || (o.train_years.empty() && o.valid_years.empty()), "--train-years without --data");
  require(o.prefetch_slots >= 2 && o.prefetch_slots <= 64, "--prefetch outside 2..64");
  require(o.init_from.empty() || !o.has_weather_data(), "--init-from with --data");
  if (o.grid_deg != 0) {
    // make_equiangular_grid builds 180 / grid_deg intervals as an integer count.
    const double intervals = 180.0 / o.grid_deg;
    require(o.grid_deg > 0 && o.grid_deg <= 30, "--grid outside (0, 30]");
    require(intervals <= 2147483647.0 && std::fabs(intervals - std::round(intervals)) <= 1e-9,
            "--grid does not divide 180 degrees into a countable number of rows");
  }
  require(o.mesh_level >= 0 && o.mesh_level <= 7, "--mesh outside 0..7");
  require(o.latent >= 1 && o.latent <= (1 << 20), "--latent outside 1..2^20");
  require(o.layers >= 1, "--layers < 1");
  require(o.in_channels == 0 || (o.in_channels >= 4 && o.in_channels <= (1 << 20)), "--in-channels outside 4..2^20");
  require(o.out_channels == 0 || (o.out_channels >= 1 && o.out_channels <= (1 << 20)), "--out-channels outside 1..2^20");
  require(o.steps >= 1 && o.batch >= 1 && o.accum >= 1 && o.rollout >= 1, "a count below 1");
  require(o.warmup_steps >= 0, "--warmup < 0");
  require(std::isfinite(o.lr), "--lr not finite");
  require(o.weight_decay >= 0 && o.adam_beta1 >= 0 && o.adam_beta1 < 1 && o.adam_beta2 >= 0 && o.adam_beta2 < 1 &&
              o.adam_eps >= 0 && o.adam_eps < 1 && o.clip_norm >= 0 && std::isfinite(o.clip_norm),
          "an AdamW setting outside its range");
  require(o.mem_budget >= 0 && o.mem_limit >= 0, "a negative --mem-budget or --mem-limit");
  require(o.remat != "auto" || o.mem_budget > 0, "--remat auto without a budget");
  require(o.edge_chunks >= 1 && o.edge_chunks <= 32, "--edge-chunks outside 1..32");
  require(o.data_truncation == 21 || o.data_truncation == 42, "--data-truncation not 21 or 42");
  require(o.data_trajectories >= 0 && (o.data_frames == 0 || o.data_frames >= 4), "a data-set size out of range");
  require(!o.out_dir.empty(), "no output directory");
  require(o.meta_target != gc::Device::meta, "--meta-target meta");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::string> args;
  std::string current;
  for (size_t i = 0; i < size; ++i) {
    const char c = static_cast<char>(data[i]);
    if (c == '\n' || c == '\0') {
      args.push_back(current);
      current.clear();
    } else {
      current += c;
    }
  }
  if (!current.empty()) args.push_back(current);

  gc::TrainOptions options;
  std::string help;
  try {
    if (!gc::parse_train_options(args, &options, &help)) {
      if (help.empty()) broken("--help without its text", args);
      return 0;
    }
  } catch (const gc::UsageError&) {
    return 0;
  }
  check_parsed(options, args);
  return 0;
}
