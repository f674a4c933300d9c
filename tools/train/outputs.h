// outputs.h: what gc_train prints and writes around the training job: the
// set-up summary, metrics.jsonl, the evaluation table, the memory table, the
// report, the final checkpoint, pictures and the trace.
#pragma once

#include "tools/train/trainer.h"

namespace gc {

void print_setup_summary(const Trainer& trainer);
std::string evaluation_table(const EvalResult& eval);
void write_outputs(Trainer& trainer, const EvalResult* eval);
void start_trace_if_asked(Trainer& trainer);
void finish_trace_if_asked(Trainer& trainer);

}  // namespace gc
