// usage_error.h: the error for input a user must change (a flag, a file name, a
// configuration that cannot fit a budget), as opposed to a failure of the run.
// Every room of tools/ throws it; the programs print its message and exit 2.
#pragma once

#include <stdexcept>

namespace gc {

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace gc
