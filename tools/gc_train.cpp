// gc_train: trains GraphCast (see --help). Exit codes: 0 done, 1 error,
// 2 bad usage, 3 out of memory (with an explanation and the smallest limit that
// would have passed, found by dry runs on the meta device), 130 interrupted
// (after saving a checkpoint).

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "runtime/allocator.h"           // allocator_for, OutOfMemory
#include "runtime/communicator.h"        // mpirun: data parallel
#include "tools/io/atomic_file.h"        // write_file_atomic
#include "tools/memory/memory_report.h"  // oom_explanation
#include "tools/train/cpu_share.h"       // threads on a shared machine
#include "tools/train/grow.h"            // --grow-from: a bigger model from a trained smaller one
#include "tools/train/interrupt.h"       // Ctrl-C and SIGTERM: finish the step, save, exit 130
#include "tools/train/options.h"         // TrainOptions, parse_train_options
#include "tools/train/outputs.h"         // output checks, metrics, summary, checkpoint, pictures, report, trace
#include "tools/train/predict.h"         // dry runs: the smallest limit that passes
#include "tools/train/trainer.h"         // prepare_run, Trainer

using namespace gc;

namespace {
int run(const TrainOptions& options);
int run_ranks_dry(const TrainOptions& options);

// At exit every byte must be back: report any block still allocated. (The cuda
// allocator of a machine without a GPU cannot even be asked: nothing to report.)
void check_outstanding(Device device) {
  try {
    const std::string leaks = allocator_for(device).leak_report();
    if (!leaks.empty()) std::fprintf(stderr, "gc_train: bytes still allocated at exit: %s", leaks.c_str());
  } catch (const std::exception&) {
  }
}

// Stops the trace and writes it; a failure is returned, not thrown, so that it
// never costs the run's checkpoint, metrics or pictures.
std::string finish_trace(Trainer& trainer) {
  try {
    finish_trace_if_asked(trainer);
    return std::string();
  } catch (const std::exception& e) {
    return e.what();
  }
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
  // Launched by mpirun with several ranks: data parallel, each rank its share of
  // --batch; rank 0 alone prints and writes (checkpoint, metrics, report, trace).
  try {
    Communicator& world = world_communicator();
    if (world.size() > 1) {
      if (options.ranks > 1)
        throw UsageError("--ranks is the dry run of P ranks in one process; under mpirun the ranks are mpirun's");
      if (options.device == Device::meta)
        throw UsageError("--device meta under mpirun: a dry run needs one process (--ranks " +
                         std::to_string(world.size()) + " predicts every rank)");
      options.ranks = world.size();
      options.rank = world.rank();
      if (world.size() % options.model_parallel != 0)
        throw UsageError("mpirun -np " + std::to_string(world.size()) + " is not a multiple of --model-parallel " +
                         std::to_string(options.model_parallel) + ": the ranks are replicas of " +
                         std::to_string(options.model_parallel) + " shards each");
      if (options.rank != 0) {
        options.quiet = true;
        options.report_path.clear();
        options.trace_path.clear();
        options.trace_png.clear();
      }
    }
  } catch (const UsageError& e) {
    if (options.rank == 0) std::fprintf(stderr, "gc_train: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gc_train: %s\n", e.what());
    return 1;
  }
  install_interrupt_handlers();
  const int status = options.ranks > 1 && options.device == Device::meta ? run_ranks_dry(options) : run(options);
  check_outstanding(options.device);
  return status;
}

namespace {
int run(const TrainOptions& options) {
  std::unique_ptr<RunSetup> setup;
  std::unique_ptr<Communicator> device_comm;  // cuda ranks: NCCL, one GPU each
  std::unique_ptr<Trainer> trainer;
  std::unique_ptr<MetricsLog> metrics;
  try {
    check_outputs(options);                                    // before any work
    if (options.ranks > 1) device_comm = make_device_communicator(options.device, world_communicator());
    setup = std::make_unique<RunSetup>(prepare_run(options));  // data, graphs, the remat plan
    if (options.ranks > 1) setup->comm = device_comm ? device_comm.get() : &world_communicator();
    std::unique_ptr<GrowSource> grow;
    if (!options.grow_from.empty())                            // checked before the model is allocated
      grow = std::make_unique<GrowSource>(load_grow_source(options.grow_from, setup->options));
    trainer = std::make_unique<Trainer>(*setup);               // model, optimizer, fixed inputs
    if (!options.resume_path.empty()) trainer->load_checkpoint(options.resume_path);
    if (grow) {
      grow_parameters(trainer->net(), *grow, options.seed);
      if (!options.quiet)
        std::fprintf(stderr, "gc_train: grown from %s (latent %lld x %d layers)\n", grow->path.c_str(),
                     static_cast<long long>(grow->latent), grow->layers);
      grow.reset();
      allocator_for(Device::cpu).empty_cache();  // the small model's bytes leave no cached segment behind
    }
    print_setup_summary(*trainer);
    if (options.device != Device::meta && options.rank == 0) {
      tidy_out_folder(options.out_dir);
      trainer->checkpoint_every(options.out_dir, options.checkpoint_every, options.checkpoint_every_minutes);
      metrics = std::make_unique<MetricsLog>(options.out_dir, metrics_history_source(options),
                                             trainer->completed_steps());
      trainer->on_step([&metrics](const StepRecord& r) {
        metrics->append(r);
        share_cores_every_few_steps(r.step);
      });
    }
    start_trace_if_asked(*trainer);
    trainer->train();
    const std::string trace_error = finish_trace(*trainer);
    if (options.rank != 0) return 0;  // rank 0 evaluates and writes
    EvalResult eval;
    if (!options.no_eval) eval = trainer->evaluate();
    if (metrics) metrics->append_eval(*trainer, eval);
    write_outputs(*trainer, options.no_eval ? nullptr : &eval);
    if (!trace_error.empty()) {
      std::fprintf(stderr, "gc_train: error: the trace was not written: %s (everything else was)\n",
                   trace_error.c_str());
      return 1;
    }
  } catch (const Interrupted& e) {
    if (trainer) finish_trace(*trainer);
    if (options.rank == 0) std::fprintf(stderr, "gc_train: %s\n", e.what());  // rank 0 saved
    return 130;
  } catch (const OutOfMemory& oom) {
    std::fprintf(stderr, "\n");
    // The trace first (the dry runs below must not land in it); its own failure
    // must not hide the explanation.
    const std::string trace_error = trainer ? finish_trace(*trainer) : std::string();
    trainer.reset();  // its bytes are not the dry runs'
    int64_t smallest = 0;
    try {
      if (setup) smallest = smallest_passing_limit(dry_runner(*setup), setup->plan);
    } catch (const std::exception&) {
      smallest = 0;
    }
    std::fprintf(stderr, "gc_train: %s", oom_explanation(oom, smallest).c_str());
    if (!trace_error.empty()) std::fprintf(stderr, "gc_train: the trace was not written: %s\n", trace_error.c_str());
    return 3;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "\ngc_train: out of host memory while setting up or running this configuration; "
                         "it is too large for this machine (see --device meta for its device memory)\n");
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

// --device meta --ranks P: every rank's dry run in turn, each from an empty
// allocator, as each rank's process starts; prints every rank's peaks.
int run_ranks_dry(const TrainOptions& options) {
  try {
    check_outputs(options);
    std::vector<RankSummary> ranks;
    json::Value report;
    CachingAllocator& alloc = allocator_for(Device::meta);
    std::unique_ptr<RunSetup> first;  // rank 0's data and graphs, lent to the others
    for (int r = 0; r < options.ranks; ++r) {
      TrainOptions o = options;
      o.rank = r;
      o.quiet = o.quiet || r > 0;
      std::unique_ptr<Communicator> comm = make_meta_communicator(r, o.ranks);
      alloc.empty_cache();
      RunSetup setup = prepare_run(o, first.get());
      if (!first) first = std::make_unique<RunSetup>(setup);
      setup.comm = comm.get();
      Trainer trainer(setup);
      if (r == 0) print_setup_summary(trainer);
      trainer.train();
      RankSummary s;
      s.rank = r;
      s.replica = o.replica();
      s.shard = o.shard();
      s.batch = trainer.options().batch;
      s.peak_allocated = trainer.memory().stats.peak_allocated;
      s.peak_reserved = trainer.memory().stats.peak_reserved;
      s.bytes_sent = trainer.memory().ranks.empty() ? 0 : trainer.memory().ranks[static_cast<size_t>(r)].bytes_sent;
      ranks.push_back(s);
      if (r == 0 && !o.report_path.empty()) report = trainer.report(nullptr);
    }
    alloc.empty_cache();
    if (!options.quiet) {
      if (options.model_parallel > 1)
        std::fprintf(stderr, "gc_train: dry run of %d ranks: %d replica(s) (each its share of --batch %d) of %d shards:\n",
                     options.ranks, options.replicas(), options.batch, options.model_parallel);
      else
        std::fprintf(stderr, "gc_train: dry run of %d data-parallel ranks (each its share of --batch %d):\n",
                     options.ranks, options.batch);
      std::fprintf(stderr, "  rank  replica  shard  batch  peak allocated   peak reserved   sent per run\n");
      for (const RankSummary& s : ranks)
        std::fprintf(stderr, "  %4d  %7d  %5d  %5d  %14lld  %14lld  %13lld B\n", s.rank, s.replica, s.shard, s.batch,
                     static_cast<long long>(s.peak_allocated), static_cast<long long>(s.peak_reserved),
                     static_cast<long long>(s.bytes_sent));
    }
    for (const RankSummary& s : ranks)
      std::printf("rank %d: peak %lld B allocated, %lld B reserved\n", s.rank, static_cast<long long>(s.peak_allocated),
                  static_cast<long long>(s.peak_reserved));
    if (!options.report_path.empty()) {
      json::Value list = json::Value::array();
      for (const RankSummary& s : ranks) {
        json::Value v = json::Value::object();
        v["rank"] = s.rank;
        v["replica"] = s.replica;
        v["shard"] = s.shard;
        v["batch"] = s.batch;
        v["peak_allocated"] = s.peak_allocated;
        v["peak_reserved"] = s.peak_reserved;
        v["bytes_sent"] = s.bytes_sent;
        list.push_back(v);
      }
      report["memory"]["ranks"] = list;
      write_file_atomic(options.report_path, report.dump(2) + "\n");
    }
  } catch (const OutOfMemory& oom) {
    std::fprintf(stderr, "gc_train: %s", oom_explanation(oom, 0).c_str());
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
