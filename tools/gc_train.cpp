// gc_train: trains GraphCast (see --help). Exit codes: 0 done, 1 error,
// 2 bad usage, 3 out of memory (with an explanation and the smallest limit that
// would have passed, found by dry runs on the meta device).
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "runtime/allocator.h"           // allocator_for, OutOfMemory
#include "tools/memory/memory_report.h"  // oom_explanation
#include "tools/train/options.h"         // TrainOptions, parse_train_options
#include "tools/train/outputs.h"         // summary, metrics, checkpoint, pictures, report, trace
#include "tools/train/predict.h"         // dry runs: the smallest limit that passes
#include "tools/train/trainer.h"         // prepare_run, Trainer

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
  std::unique_ptr<RunSetup> setup;
  std::unique_ptr<Trainer> trainer;
  try {
    setup = std::make_unique<RunSetup>(prepare_run(options));  // data, graphs, the remat plan
    trainer = std::make_unique<Trainer>(*setup);               // model, optimizer, fixed inputs
    if (!options.resume_path.empty()) trainer->load_checkpoint(options.resume_path);
    print_setup_summary(*trainer);
    if (options.device != Device::meta) trainer->checkpoint_every(options.out_dir, std::max(100, options.steps / 4));
    start_trace_if_asked(*trainer);
    trainer->train();
    finish_trace_if_asked(*trainer);
    EvalResult eval;
    if (!options.no_eval) eval = trainer->evaluate();
    write_outputs(*trainer, options.no_eval ? nullptr : &eval);
  } catch (const OutOfMemory& oom) {
    std::fprintf(stderr, "\n");
    if (trainer) finish_trace_if_asked(*trainer);  // before the dry runs below, which must not land in the trace
    trainer.reset();                                // its bytes are not the dry runs'
    int64_t smallest = 0;
    try {
      if (setup) smallest = smallest_passing_limit(dry_runner(*setup), setup->plan);
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
