// fit.cpp: the studies' shared dry runs, budgets and parameter formula (fit.h).
#include "tools/study/fit.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <stdexcept>

#include <sys/stat.h>
#include <unistd.h>

#include "autograd/ops.h"
#include "runtime/allocator.h"
#include "tools/memory/remat_policy.h"
#include "tools/train/predict.h"
#include "tools/usage_error.h"

namespace gc::study {

int64_t parameter_formula(int64_t latent, int layers, int64_t in_channels, int64_t out_channels) {
  const int64_t L = latent, N = layers;
  return (7 * N + 24) * L * L + (8 * N + 57) * L + 2 * in_channels * L + out_channels * L + out_channels;
}

int64_t built_parameter_count(const TrainOptions& options) {
  model::GraphCastNet net(graphcast_config(options, 1), Device::meta, options.seed);
  const int64_t total = net.parameter_counts().total();
  return total;
}

std::string flag_value(int argc, char** argv, int* i, const std::string& flag, const std::string& command) {
  if (*i + 1 >= argc) throw UsageError(flag + " needs a value (see gc_study " + command + " --help)");
  return argv[++*i];
}

int64_t parse_int_flag(const std::string& flag, const std::string& text, int64_t min_value, int64_t max_value) {
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno != 0) throw UsageError(flag + " expects an integer, got '" + text + "'");
  if (v < min_value || v > max_value)
    throw UsageError(flag + " must be " + std::to_string(min_value) + ".." + std::to_string(max_value) + ", got " + text);
  return v;
}

void check_output_file(const std::string& flag, const std::string& path) {
  const size_t slash = path.rfind('/');
  const std::string folder = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  struct stat st;
  if (path.empty() || path.back() == '/') throw UsageError(flag + " needs a file name, got '" + path + "'");
  if (::stat(folder.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    throw UsageError(flag + " " + path + ": the folder " + folder + " does not exist");
  if (::access(folder.c_str(), W_OK) != 0) throw UsageError(flag + " " + path + ": cannot write in " + folder);
}

std::vector<int64_t> parse_int_list(const std::string& flag, const std::string& text, int64_t min_value,
                                    int64_t max_value) {
  std::vector<int64_t> values;
  std::set<int64_t> seen;
  size_t start = 0;
  while (true) {
    const size_t comma = text.find(',', start);
    const std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || errno != 0)
      throw UsageError(flag + " expects comma-separated integers (e.g. 32,64,128), got '" + text + "'");
    if (v < min_value || v > max_value)
      throw UsageError(flag + ": each value must be " + std::to_string(min_value) + ".." + std::to_string(max_value) +
                       ", got " + item);
    if (!seen.insert(v).second) throw UsageError(flag + ": " + item + " is given twice");
    values.push_back(v);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return values;
}

MemoryBudget card_budget(const Card& card) {
  return MemoryBudget{card.name, card.memory_bytes, kCudaContextMargin};
}

MemoryBudget card_bytes_budget(int64_t card_bytes) {
  if (card_bytes <= kCudaContextMargin)
    throw UsageError("--card-bytes " + std::to_string(card_bytes) + " leaves nothing after the CUDA context margin of " +
                     std::to_string(kCudaContextMargin) + " B");
  return MemoryBudget{"card of " + format_bytes(card_bytes), card_bytes, kCudaContextMargin};
}

MemoryBudget plain_budget(int64_t bytes) { return MemoryBudget{format_bytes(bytes), bytes, 0}; }

MemoryBudget parse_card_flag(const std::string& name) {
  const Card* card = find_card(name);
  if (!card) throw UsageError("--card: unknown card '" + name + "' (known: " + card_names() + ")");
  return card_budget(*card);
}

MemoryBudget parse_budget_flag(const std::string& flag, const std::string& size) {
  int64_t bytes = 0;
  try {
    bytes = parse_bytes(size);
  } catch (const std::invalid_argument& e) {
    throw UsageError(flag + ": " + e.what());
  }
  if (bytes <= 0) throw UsageError(flag + " must be a positive size (e.g. 32GB, 24GiB), got '" + size + "'");
  return plain_budget(bytes);
}

RunSetup prepare_dry_runs(const std::vector<std::string>& train_flags) {
  TrainOptions options;
  std::vector<std::string> flags = train_flags;
  for (const char* f : {"--device", "meta", "--quiet"}) flags.push_back(f);
  std::string help;
  parse_train_options(flags, &options, &help);
  options.remat = "none";
  options.mem_budget = 0;
  options.edge_chunks = 1;
  return prepare_run(options);
}

RunSetup with_configuration(const RunSetup& prepared, const Configuration& c) {
  RunSetup s = prepared;
  TrainOptions& o = s.options;
  o.latent = c.latent;
  o.layers = c.layers;
  o.precision = c.precision;
  o.compute_dtype();  // validates
  o.remat = c.remat;
  o.mem_budget = c.budget;
  o.edge_chunks = c.edge_chunks;
  o.batch = c.batch;
  o.accum = c.accum;
  return s;
}

PeakResult dry_run_peak(const RunSetup& prepared, const Configuration& c) {
  RunSetup s = with_configuration(prepared, c);
  PeakResult result;
  RematPlan plan;
  try {
    plan = resolve_remat_plan(s);
  } catch (const UsageError& e) {
    if (c.remat != "auto") throw;
    result.why_not = e.what();
    return result;
  }
  // The steps gc_train --device meta runs (dry_run runs at most 2).
  const int steps = std::max(1, std::min(s.options.steps, 2));
  const double flops_before = linear_flops();
  const DryRunResult dr = dry_run(s, 0, plan);
  result.flops_per_step = (linear_flops() - flops_before) / steps;
  if (!dr.fits) throw std::runtime_error("a dry run without a memory limit ran out of memory");
  result.planned = true;
  result.peak_allocated = dr.stats.peak_allocated;
  result.peak_reserved = dr.stats.peak_reserved;
  result.edge_chunks = plan.edge_chunks;
  result.plan = plan.description;
  result.recompute_overhead = plan.predicted_overhead;
  return result;
}

std::string gib(int64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f GiB", static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0));
  return text;
}

}  // namespace gc::study
