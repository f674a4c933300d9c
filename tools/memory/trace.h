// trace.h: the memory/time trace of a run, written as Chrome Trace Event JSON
// (object form, microseconds; loads in ui.perfetto.dev and chrome://tracing)
// and drawn as a memory timeline PNG.
//
// While recording: the device allocator logs every event (alloc, free, segment
// alloc/free, oom); named MemoryScopes become nested forward spans (module
// paths), the tape's backward and recompute work becomes spans, and the training
// loop adds spans with TraceSpan (step, forward, backward, optimizer).
#pragma once

#include <string>

#include "runtime/device.h"

namespace gc {

void trace_begin(Device device);
// Stops recording and writes whichever of the two outputs has a path.
void trace_end(Device device, const std::string& json_path, const std::string& png_path);
bool trace_recording();

// An explicit span, e.g. TraceSpan span("optimizer", "adamw"); no-op when not recording.
class TraceSpan {
 public:
  TraceSpan(const char* category, const std::string& name);
  ~TraceSpan();
  TraceSpan(const TraceSpan&) = delete;
  TraceSpan& operator=(const TraceSpan&) = delete;

 private:
  bool active_;
};

}  // namespace gc
