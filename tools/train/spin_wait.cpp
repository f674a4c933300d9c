// spin_wait.cpp: see spin_wait.h.
#include "tools/train/spin_wait.h"

#include <cstdlib>
#include <string>
#include <unistd.h>

namespace gc {

void bound_openmp_spinning(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT")) return;
  const std::string count = std::to_string(kDefaultSpinCount);
  if (::setenv("GOMP_SPINCOUNT", count.c_str(), 1) != 0) return;
  ::execv("/proc/self/exe", argv);
  ::unsetenv("GOMP_SPINCOUNT");  // execv failed: carry on with the default
}

}  // namespace gc
