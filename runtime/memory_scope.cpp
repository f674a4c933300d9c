// memory_scope.cpp: thread-local current category and label.
#include "runtime/memory_scope.h"

namespace gc {

namespace {
thread_local Category t_category = Category::temporary;
thread_local std::string t_label;
ScopeListener g_listener = nullptr;
}  // namespace

void set_scope_listener(ScopeListener listener) { g_listener = listener; }

const char* category_name(Category category) {
  switch (category) {
    case Category::parameter: return "parameter";
    case Category::gradient: return "gradient";
    case Category::optimizer_state: return "optimizer_state";
    case Category::input: return "input";
    case Category::activation: return "activation";
    case Category::temporary: return "temporary";
    case Category::workspace: return "workspace";
    case Category::communication: return "communication";
  }
  return "?";
}

MemoryScope::MemoryScope(Category category)
    : saved_category_(t_category), saved_label_length_(t_label.size()) {
  t_category = category;
}

MemoryScope::MemoryScope(std::string_view name)
    : saved_category_(t_category), saved_label_length_(t_label.size()) {
  if (!name.empty()) {
    if (!t_label.empty()) t_label += '.';
    t_label += name;
    named_ = true;
    if (g_listener) g_listener(true, t_label);
  }
}

MemoryScope::MemoryScope(Category category, std::string_view name) : MemoryScope(name) {
  t_category = category;
}

MemoryScope::~MemoryScope() {
  if (named_ && g_listener) g_listener(false, t_label);
  t_category = saved_category_;
  t_label.resize(saved_label_length_);
}

Category MemoryScope::current_category() { return t_category; }
const std::string& MemoryScope::current_label() { return t_label; }

LabelOverride::LabelOverride(const std::string& label) : saved_label_(t_label) { t_label = label; }
LabelOverride::~LabelOverride() { t_label = saved_label_; }

}  // namespace gc
