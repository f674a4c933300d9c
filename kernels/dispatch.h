// kernels/dispatch.h: the checks and the device choice that the entry points in
// kernels/*.cpp share (each validates its operands, then hands them to the
// kernels of their device: kernels/cpu or kernels/cuda).
//
// Invariant: an entry point runs every check on every device, meta included,
// before it asks where to run, so a dry run rejects exactly what a real run
// rejects. A rejection is always std::invalid_argument("<op>: <what>").
#pragma once

#include <initializer_list>
#include <stdexcept>
#include <string>
#include <utility>

#include "runtime/tensor.h"

namespace gc::kernels {

[[noreturn]] inline void fail(const char* op, const std::string& what) {
  throw std::invalid_argument(std::string(op) + ": " + what);
}

inline void require(bool condition, const char* op, const std::string& message) {
  if (!condition) fail(op, message);
}

inline void require_defined(const char* op, std::initializer_list<std::pair<const char*, const Tensor*>> tensors) {
  for (auto& [name, t] : tensors) require(t->defined(), op, std::string(name) + " is undefined");
}

// An undefined tensor among `others` (an absent bias) has no device and is skipped.
inline void require_same_device(const char* op, const Tensor& reference,
                                std::initializer_list<const Tensor*> others) {
  for (const Tensor* t : others)
    if (t->defined())
      require(t->device() == reference.device(), op,
              "tensors on different devices: " + reference.describe() + " and " + t->describe());
}

// Where a validated op runs: on the kernels of its tensor's device, and nowhere
// on meta (no data). An empty tensor still runs (a sum of nothing writes 0, an
// index check reads offsets); ops with nothing to do return before asking.
inline bool runs_on_cpu(const Tensor& t) { return t.device() == Device::cpu; }
inline bool runs_on_cuda(const Tensor& t) { return t.device() == Device::cuda; }

}  // namespace gc::kernels
