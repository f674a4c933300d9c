// interrupt.cpp: see interrupt.h. The handler is async-signal-safe: it sets a
// flag or calls write(2) and _exit(2), nothing else.
#include "tools/train/interrupt.h"

#include <csignal>
#include <unistd.h>

namespace gc {

namespace {

volatile std::sig_atomic_t signals_seen = 0;

void on_signal(int) {
  if (signals_seen > 0) {
    static const char kNow[] = "\ngc_train: interrupted again: exiting now\n";
    (void)!::write(2, kNow, sizeof kNow - 1);
    ::_exit(130);
  }
  signals_seen = 1;
  static const char kSoon[] = "\ngc_train: interrupt: finishing this step, then saving (again to exit now)\n";
  (void)!::write(2, kSoon, sizeof kSoon - 1);
}

}  // namespace

void install_interrupt_handlers() {
  struct sigaction action {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

bool interrupt_requested() { return signals_seen != 0; }
void request_interrupt() { signals_seen = 1; }
void clear_interrupt() { signals_seen = 0; }

}  // namespace gc
