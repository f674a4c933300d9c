// blocks_training.cpp: see blocks_training.h.
#include "tools/study/blocks_training.h"

#include <omp.h>

#include <cstdlib>
#include <sstream>

#include "tools/train/cpu_share.h"

namespace gc::study {

TrainOptions blocks_train_options(const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"--preset", "demo", "--rollout", "1", "--quiet", "--checkpoint-every-minutes", "0"};
  args.insert(args.end(), extra.begin(), extra.end());
  TrainOptions o;
  parse_train_options(args, &o, nullptr);
  return o;
}

LeadSkill lead_skill(const EvalResult& eval, int lead_hours) {
  LeadSkill s;
  s.lead_hours = lead_hours;
  size_t k = 0;
  while (k < eval.lead_hours.size() && eval.lead_hours[k] != lead_hours) ++k;
  if (k == eval.lead_hours.size())
    throw std::runtime_error("the evaluation has no lead of " + std::to_string(lead_hours) + " h");
  double relative = 0;
  for (size_t v = 0; v < eval.variables.size(); ++v) {
    s.rmse.push_back(eval.rmse_model[v][k]);
    relative += eval.rmse_model[v][k] / eval.rmse_climatology[v][k];
  }
  s.relative = relative / static_cast<double>(eval.variables.size());
  return s;
}

void share_cores(Trainer& trainer) {
  if (std::getenv("OMP_NUM_THREADS") != nullptr) return;
  static const int cores = omp_get_num_procs();
  omp_set_num_threads(threads_for_shared_cores(cores));
  trainer.on_step([](const StepRecord& r) {
    if (r.step % 10 == 0) omp_set_num_threads(threads_for_shared_cores(cores));
  });
}

double flops_so_far(const Trainer& trainer) {
  double total = 0;
  for (const StepRecord& r : trainer.history()) total += r.flops;
  return total;
}

std::vector<int> parse_int_list(const std::string& flag, const std::string& text, int min_value, int max_value) {
  std::vector<int> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    char* end = nullptr;
    const long v = std::strtol(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || v < min_value || v > max_value)
      throw UsageError(flag + " takes a comma-separated list of integers " + std::to_string(min_value) + ".." +
                       std::to_string(max_value) + ", got '" + text + "'");
    out.push_back(static_cast<int>(v));
  }
  if (out.empty()) throw UsageError(flag + " needs at least one value");
  return out;
}

std::pair<int64_t, int> parse_shape(const std::string& flag, const std::string& text) {
  const size_t x = text.find('x');
  char* end1 = nullptr;
  char* end2 = nullptr;
  const std::string a = x == std::string::npos ? "" : text.substr(0, x), b = x == std::string::npos ? "" : text.substr(x + 1);
  const long latent = std::strtol(a.c_str(), &end1, 10), layers = std::strtol(b.c_str(), &end2, 10);
  if (a.empty() || b.empty() || *end1 != '\0' || *end2 != '\0' || latent < 4 || latent > 4096 || layers < 1 ||
      layers > 64)
    throw UsageError(flag + " takes LATENTxLAYERS (latent 4..4096, layers 1..64), e.g. 32x2; got '" + text + "'");
  return {latent, static_cast<int>(layers)};
}

}  // namespace gc::study
