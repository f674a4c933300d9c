// converted_checkpoint.h: a DeepMind checkpoint converted to gc's native format
// (safetensors, `gc_forecast --convert-to OUT.safetensors`), and the one loader
// of the forecaster for either format.
//
// The converted file holds every parameter under its gc name (f32, as
// gc_train's weights.safetensors) and, in the metadata, every other array of the
// DeepMind file under "gc.deepmind.<key>" with its kind: "s:<text>", "i:<int>",
// "f:<double, %.17g>", "b:<0|1>". Loading maps the names back through the same
// table, so a converted checkpoint and its source give bit-identical forecasts.
#pragma once

#include <string>

#include "tools/io/deepmind_checkpoint.h"

namespace gc::forecast {

// Throws UsageError for an unwritable path; std::runtime_error otherwise.
void save_converted_checkpoint(const DeepMindCheckpoint& checkpoint, const std::string& path);

// FILE.npz (DeepMind's format) or FILE.safetensors (converted); UsageError with
// the path's message for anything unreadable or inconsistent.
DeepMindCheckpoint load_forecast_checkpoint(const std::string& path);

}  // namespace gc::forecast
