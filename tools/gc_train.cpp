// gc_train: trains GraphCast (see --help). Exit codes: 0 done, 1 error,
// 2 bad usage, 3 out of memory (with an explanation and the smallest limit that
// would have passed, found by dry runs on the meta device).
#include <cstdio>
#include <string>
#include <vector>

#include "runtime/allocator.h"
#include "tools/io/json.h"
#include "tools/memory/dry_run.h"
#include "tools/memory/memory_report.h"
#include "tools/train/options.h"
#include "tools/train/outputs.h"
#include "tools/train/trainer.h"

using namespace gc;


namespace {
int run(const TrainOptions& options);

// At exit every byte must be back: report any block still allocated.
void check_outstanding(Device device) {
  const std::string leaks = allocator_for(device).leak_report();
  if (!leaks.empty()) std::fprintf(stderr, "gc_train: bytes still allocated at exit: %s", leaks.c_str());
}
}  // namespace

int main(int argc, char** argv) {
  TrainOptions options;
  std::vector<std::string> args(argv + 1, argv + argc);
  try {
    std::string help;
    if (!parse_train_options(args, &options, &help)) {
      std::printf("%s", help.c_str());
      return 0;
    }
  } catch (const UsageError& e) {
    std::fprintf(stderr, "gc_train: %s\n", e.what());
    return 2;
  }
  const int status = run(options);
  check_outstanding(options.device);
  return status;
}

namespace {
int run(const TrainOptions& options) {
  Trainer trainer(options);
  try {
    trainer.setup();
    if (!options.resume_path.empty()) trainer.load_checkpoint(options.resume_path);
    print_setup_summary(trainer);
    if (options.device != Device::meta) trainer.checkpoint_every(options.out_dir, std::max(100, options.steps / 4));
    start_trace_if_asked(trainer);
    trainer.train();
    finish_trace_if_asked(trainer);
    EvalResult eval;
    if (!options.no_eval) eval = trainer.evaluate();
    write_outputs(trainer, options.no_eval ? nullptr : &eval);
  } catch (const OutOfMemory& oom) {
    std::fprintf(stderr, "\n");
    finish_trace_if_asked(trainer);  // before the dry runs below, which must not land in the trace
    int64_t smallest = 0;
    try {
      smallest = smallest_passing_limit(trainer.options(), trainer.geometry());
    } catch (const std::exception&) {
      smallest = 0;
    }
    std::fprintf(stderr, "gc_train: %s", oom_explanation(oom, smallest).c_str());
    return 3;
  } catch (const UsageError& e) {
    std::fprintf(stderr, "gc_train: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "\ngc_train: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
}  // namespace
