// outputs.h: what gc_train prints and writes around the training job: the
// set-up summary, metrics.jsonl, the evaluation table, the memory table, the
// report, the final checkpoint, pictures and the trace.
#pragma once

#include <cstdio>
#include <string>

#include "tools/train/trainer.h"

namespace gc {

// Before any work: --out exists and takes files (cpu/cuda runs), and holds no
// other run's checkpoint unless --overwrite or it is the run resumed; the
// folders of --trace, --trace-png and --report exist and take files. Throws
// UsageError naming the flag.
void check_outputs(const TrainOptions& options);

// What a run killed before may have left in --out: temporaries of dead
// writers, and checkpoint folders that `latest` does not name.
void tidy_out_folder(const std::string& out_dir);

// <out>/metrics.jsonl, one JSON object a step, appended and flushed as the run
// goes, so a crash loses at most the step in flight. A resumed run's file holds
// the whole history once: the records of steps 1..start_step of the run it
// resumes, then its own.
class MetricsLog {
 public:
  MetricsLog(const std::string& out_dir, const std::string& history_source, int start_step);
  ~MetricsLog();
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;
  void append(const StepRecord& record);
  // One line {"step": N, "eval": {...}} with the report's evaluation (scores by lead).
  void append_eval(const Trainer& trainer, const EvalResult& eval);

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
};
// The metrics.jsonl of the run that --resume continues ("" for a new run).
std::string metrics_history_source(const TrainOptions& options);

void print_setup_summary(const Trainer& trainer);
std::string evaluation_table(const EvalResult& eval);
void write_outputs(Trainer& trainer, const EvalResult* eval);
void start_trace_if_asked(Trainer& trainer);
void finish_trace_if_asked(Trainer& trainer);

}  // namespace gc
