// memory_scope.h: memory categories and the RAII scopes that label allocations.
//
// Every allocation carries the category and label current on its thread when it
// is made. Scopes nest: the innermost category wins; label components join with
// '.' ("processor" > "7" > "edge_mlp" gives "processor.7.edge_mlp").
#pragma once

#include <string>
#include <string_view>

namespace gc {

enum class Category : unsigned char {
  parameter,
  gradient,
  optimizer_state,
  input,
  activation,
  temporary,
  workspace,
  communication,  // buffers of collectives between ranks (runtime/communicator.h)
};
constexpr int kNumCategories = 8;

const char* category_name(Category category);

// Optional listener told when a named scope opens and closes (the trace uses it
// to draw module spans); called with the full label. Not thread-aware: set it
// from the main thread only.
using ScopeListener = void (*)(bool enter, const std::string& label);
void set_scope_listener(ScopeListener listener);

class MemoryScope {
 public:
  explicit MemoryScope(Category category);           // category only
  explicit MemoryScope(std::string_view name);        // appends a label component
  MemoryScope(Category category, std::string_view name);
  ~MemoryScope();
  MemoryScope(const MemoryScope&) = delete;
  MemoryScope& operator=(const MemoryScope&) = delete;

  static Category current_category();
  static const std::string& current_label();

 private:
  Category saved_category_;
  size_t saved_label_length_;
  bool named_ = false;
};

// Replaces the whole label (not appended) for the scope's lifetime; used when
// work recorded under one label runs later (backward, recompute).
class LabelOverride {
 public:
  explicit LabelOverride(const std::string& label);
  ~LabelOverride();
  LabelOverride(const LabelOverride&) = delete;
  LabelOverride& operator=(const LabelOverride&) = delete;

 private:
  std::string saved_label_;
};

}  // namespace gc
