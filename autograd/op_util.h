// op_util.h: what the differentiable ops' definitions share (ops.cpp,
// graph_ops.cpp): the node of an op, labelled with the current module, and the
// check that turns a bad argument into std::invalid_argument. Internal to autograd/.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>

#include "autograd/tape.h"
#include "runtime/memory_scope.h"

namespace gc::op_util {

inline std::unique_ptr<Node> make_node(const char* op) {
  return std::make_unique<Node>(op, MemoryScope::current_label());
}

inline void require(bool ok, const std::string& message) {
  if (!ok) throw std::invalid_argument(message);
}

inline std::string shapes(const Var& a, const Var& b) { return a.value().describe() + " and " + b.value().describe(); }

}  // namespace gc::op_util
