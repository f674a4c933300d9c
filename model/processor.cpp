// processor.cpp: the processor blocks' names (model/graphcast.h), on their own
// so that what parses a name (gc_train's options, their fuzz target) needs no
// more of the model.
#include <stdexcept>
#include <string>

#include "model/graphcast.h"

namespace gc::model {

const char* processor_name(Processor processor) {
  switch (processor) {
    case Processor::interaction: return "interaction";
    case Processor::gated: return "gated";
    case Processor::attention: return "attention";
  }
  return "?";
}

Processor processor_from_name(const std::string& name) {
  for (Processor p : {Processor::interaction, Processor::gated, Processor::attention})
    if (name == processor_name(p)) return p;
  throw std::invalid_argument("processor must be interaction, gated or attention, got '" + name + "'");
}

}  // namespace gc::model
