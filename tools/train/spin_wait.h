// spin_wait.h: how long idle OpenMP threads spin before they sleep.
//
// libgomp's default lets a thread that waits for work spin for about 300,000
// iterations. On a machine of its own that hides the wake-up latency; beside
// another busy process the spinning threads take the cores the others need,
// and a step gets many times slower (README "On a shared machine"). gc_train
// therefore bounds the spin unless the user chose a policy (OMP_WAIT_POLICY or
// GOMP_SPINCOUNT in the environment). libgomp reads these once, when it loads,
// so the program sets the variable and executes itself again. Results do not
// depend on it: only which thread waits how.
#pragma once

namespace gc {

// The spin count gc_train uses unless told otherwise.
constexpr long kDefaultSpinCount = 10000;

// Call first in main(). Returns only when nothing had to change (or the
// re-execution failed, which leaves libgomp's default).
void bound_openmp_spinning(char** argv);

}  // namespace gc
