// interrupt.h: Ctrl-C and SIGTERM during training. The first signal asks the
// run to stop after the current step (the trainer then saves a checkpoint and
// the program exits 130); a second one exits at once, saving nothing more.
// Only a flag is touched in the handler, so a step is never cut in the middle.
#pragma once

#include <stdexcept>

namespace gc {

void install_interrupt_handlers();
bool interrupt_requested();
void request_interrupt();  // as if a signal came (tests)
void clear_interrupt();

// Thrown by Trainer::train once the step in flight is done and saved.
class Interrupted : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace gc
