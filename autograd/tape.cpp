// tape.cpp: recording, backward, gradient slots and checkpointed segments.
#include "autograd/tape.h"

#include <stdexcept>

#include "kernels/elementwise.h"
#include "kernels/index.h"
#include "runtime/profile.h"

namespace gc {

// ---- Var ----------------------------------------------------------------------

namespace {
std::shared_ptr<GradSlot> make_slot(const Tensor& value, bool requires_grad, bool is_leaf, std::string name) {
  auto slot = std::make_shared<GradSlot>();
  slot->requires_grad = requires_grad;
  slot->is_leaf = is_leaf;
  slot->name = std::move(name);
  if (value.defined()) {
    slot->shape = value.shape();
    slot->dtype = value.dtype();
    slot->device = value.device();
  }
  return slot;
}
}  // namespace

Var::Var(Tensor value, bool requires_grad, std::string name) : impl_(std::make_shared<Impl>()) {
  impl_->slot = make_slot(value, requires_grad, true, std::move(name));
  impl_->value = std::move(value);
}

Var Var::make_output(Tensor value, bool requires_grad) {
  Var v;
  v.impl_ = std::make_shared<Impl>();
  v.impl_->slot = make_slot(value, requires_grad, false, std::string());
  v.impl_->value = std::move(value);
  return v;
}

Var Var::with_slot(Tensor value, std::shared_ptr<GradSlot> slot) {
  Var v;
  v.impl_ = std::make_shared<Impl>();
  v.impl_->slot = std::move(slot);
  v.impl_->value = std::move(value);
  return v;
}

// ---- gradient accumulation ----------------------------------------------------

namespace {

// The slot's gradient as a buffer that may be written in place.
Tensor& writable_grad(GradSlot& slot) {
  if (!slot.grad.defined()) {
    if (slot.is_leaf) {
      MemoryScope category(Category::gradient);
      LabelOverride label(slot.name.empty() ? std::string("grad") : slot.name + ".grad");
      slot.grad = Tensor::zeros(slot.shape, accumulation_dtype(slot.dtype), slot.device);
    } else {
      slot.grad = Tensor::zeros(slot.shape, slot.dtype, slot.device);
    }
  } else if (slot.grad.storage().use_count() > 1) {
    slot.grad = slot.grad.clone();  // shared with another slot: never write through an alias
  }
  return slot.grad;
}

void add_to_slot(GradSlot& slot, const Tensor& g) {
  if (!slot.requires_grad) return;
  if (g.shape() != slot.shape)
    throw std::logic_error("gradient of shape " + shape_string(g.shape()) + " for a value of shape " +
                           shape_string(slot.shape) + (slot.name.empty() ? "" : " ('" + slot.name + "')"));
  if (!slot.is_leaf && !slot.grad.defined()) {
    slot.grad = g;  // first contribution: assign (no copy)
    return;
  }
  if (!slot.is_leaf && slot.grad.storage().use_count() > 1 && slot.grad.dtype() == g.dtype()) {
    // Shared with another slot (an add's backward gives both inputs one tensor):
    // the sum into a new tensor, one pass, rather than a copy and then an add.
    Tensor sum = Tensor::empty(slot.shape, g.dtype(), g.device());
    kernels::add_forward(sum, slot.grad, g);
    slot.grad = sum;
    return;
  }
  Tensor& acc = writable_grad(slot);
  kernels::accumulate(acc, g);
}

}  // namespace

BackwardContext::BackwardContext(Node& node, std::vector<Tensor> grad_outputs)
    : node_(node), grad_outputs_(std::move(grad_outputs)) {}

bool BackwardContext::needs_grad(size_t input) const { return node_.inputs_.at(input)->requires_grad; }

void BackwardContext::add_grad(size_t input, const Tensor& g) { add_to_slot(*node_.inputs_.at(input), g); }

Tensor BackwardContext::pending_grad(size_t input) const {
  const GradSlot& slot = *node_.inputs_.at(input);
  return slot.requires_grad && !slot.is_leaf ? slot.grad : Tensor();
}

Tensor BackwardContext::owned_grad(size_t input, DType dtype) const {
  const GradSlot& slot = *node_.inputs_.at(input);
  if (!slot.requires_grad || slot.is_leaf || !slot.grad.defined() || slot.grad.dtype() != dtype) return Tensor();
  if (slot.grad.storage().use_count() > 1) return Tensor();  // shared: never write through an alias
  return slot.grad;
}

void BackwardContext::replace_grad(size_t input, const Tensor& g) {
  GradSlot& slot = *node_.inputs_.at(input);
  if (!slot.requires_grad) return;
  if (slot.is_leaf || g.shape() != slot.shape)
    throw std::logic_error("replace_grad: a leaf, or a gradient of shape " + shape_string(g.shape()) +
                           " for a value of shape " + shape_string(slot.shape));
  slot.grad = g;
}

void BackwardContext::add_grad_rows(size_t input, const Tensor& g, const Tensor& rows) {
  GradSlot& slot = *node_.inputs_.at(input);
  if (!slot.requires_grad) return;
  if (slot.shape.size() != 2 || g.dim() != 2 || g.shape()[1] != slot.shape[1] || g.shape()[0] != rows.numel())
    throw std::logic_error("row gradient of shape " + shape_string(g.shape()) + " for " + std::to_string(rows.numel()) +
                           " rows of a value of shape " + shape_string(slot.shape) +
                           (slot.name.empty() ? "" : " ('" + slot.name + "')"));
  Tensor& acc = writable_grad(slot);
  if (acc.dtype() == g.dtype()) {
    kernels::index_add_rows(acc, g, rows);
    return;
  }
  Tensor widened = Tensor::empty(g.shape(), acc.dtype(), g.device());  // a parameter's f32 gradient
  kernels::cast(widened, g);
  kernels::index_add_rows(acc, widened, rows);
}

Tensor& BackwardContext::grad_buffer(size_t input) { return writable_grad(*node_.inputs_.at(input)); }

const Tensor& BackwardContext::saved(size_t i) const { return node_.saved_.at(i); }

const std::shared_ptr<GradSlot>& BackwardContext::input_slot(size_t input) const { return node_.inputs_.at(input); }

// ---- nodes and tapes ------------------------------------------------------------

namespace {
TapeObserver* g_observer = nullptr;
thread_local bool t_grad_enabled = true;
thread_local std::vector<Tape*> t_tape_stack;
Tape& root_tape() {
  thread_local Tape tape;
  return tape;
}

// A span of backward or recompute work: told to the observer, and the module
// the profiler counts its ops under.
struct ObserverSpan {
  explicit ObserverSpan(const char* phase, const std::string& label)
      : profile_phase(std::string(phase) == "recompute" ? Phase::recompute : Phase::backward) {
    if (g_observer) g_observer->begin(phase, label);
  }
  ProfilePhase profile_phase;
  ~ObserverSpan() {
    if (g_observer) g_observer->end();
  }
};
}  // namespace

void set_tape_observer(TapeObserver* observer) { g_observer = observer; }
TapeObserver* tape_observer() { return g_observer; }

void Node::save(const Tensor& t) {
  if (t.defined() && t.storage() && t.storage()->block()) {
    Category c = t.storage()->block()->category;
    if (c == Category::temporary || c == Category::activation) t.recategorize(Category::activation, label_);
  }
  saved_.push_back(t);
}

void Node::run_backward() {
  bool any = false;
  std::vector<Tensor> grads;
  for (auto& out : outputs_) {
    grads.push_back(out->grad);
    any = any || out->grad.defined();
  }
  if (any && backward_) {
    ObserverSpan span("backward", label_.empty() ? op_ : label_ + "." + op_);
    LabelOverride label(label_);
    MemoryScope category(Category::temporary);
    for (size_t i = 0; i < outputs_.size(); ++i)
      if (!grads[i].defined()) grads[i] = Tensor::zeros(outputs_[i]->shape, outputs_[i]->dtype, outputs_[i]->device);
    BackwardContext ctx(*this, std::move(grads));
    backward_(ctx);
  }
  // The output gradients are consumed: free them now (leaves keep theirs).
  for (auto& out : outputs_)
    if (!out->is_leaf) out->grad = Tensor();
  saved_.clear();
}

void Tape::run_backward(const std::vector<std::pair<std::shared_ptr<GradSlot>, Tensor>>& seeds) {
  try {
    for (const auto& [slot, g] : seeds) add_to_slot(*slot, g);
    for (size_t i = nodes_.size(); i-- > 0;) {
      nodes_[i]->run_backward();
      nodes_[i].reset();
    }
  } catch (...) {
    nodes_.clear();  // an interrupted backward (out of memory) leaves no half-consumed tape behind
    throw;
  }
  nodes_.clear();
}

Tape& current_tape() { return t_tape_stack.empty() ? root_tape() : *t_tape_stack.back(); }
bool grad_enabled() { return t_grad_enabled; }

NoGradGuard::NoGradGuard() : saved_(t_grad_enabled) { t_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { t_grad_enabled = saved_; }

bool should_record(std::initializer_list<const Var*> inputs) {
  if (!t_grad_enabled) return false;
  for (const Var* v : inputs)
    if (v && v->defined() && v->requires_grad()) return true;
  return false;
}

void record_node(std::unique_ptr<Node> node) { current_tape().record(std::move(node)); }

void backward(const Var& output, const Tensor& seed_grad) {
  Tape& tape = current_tape();
  if (!output.defined() || !output.requires_grad())
    throw std::logic_error("backward: the output does not require grad (nothing to differentiate)");
  if (tape.size() == 0)
    throw std::logic_error(
        "backward: the tape is empty: backward was already called on this graph (it consumes the tape), "
        "or no op was recorded since the last backward; run the forward again first");
  tape.run_backward({{output.slot(), seed_grad}});
}

void backward(const Var& loss) {
  if (loss.defined() && loss.value().numel() != 1)
    throw std::invalid_argument("backward(loss): the loss must have one element, got " + loss.value().describe() +
                                "; pass a seed gradient for other outputs");
  Tensor one;
  {
    MemoryScope category(Category::temporary);
    one = Tensor::empty(loss.shape(), loss.dtype(), loss.device());
    kernels::fill(one, 1.0);
  }
  backward(loss, one);
}

// ---- checkpointed segments ------------------------------------------------------------

std::vector<Var> checkpoint(const std::string& label, const SegmentFn& fn, const std::vector<Var>& inputs) {
  if (!grad_enabled()) return fn(inputs);
  std::vector<Var> outputs;
  {
    NoGradGuard no_grad;
    outputs = fn(inputs);
  }
  const std::string full_label = MemoryScope::current_label().empty()
                                     ? label
                                     : (label.empty() ? MemoryScope::current_label()
                                                      : MemoryScope::current_label() + "." + label);
  auto node = std::make_unique<Node>("checkpoint", full_label);
  std::vector<Var> recorded;
  for (const Var& in : inputs) {
    node->add_input(in);
    node->save(in.value());
  }
  for (Var& out : outputs) {
    Var v = Var::make_output(out.value(), true);
    node->add_output(v);
    recorded.push_back(v);
  }
  const std::string scope_label = MemoryScope::current_label();
  node->set_backward([fn, scope_label, full_label, n = inputs.size()](BackwardContext& ctx) {
    // The recomputation's inputs share the outer inputs' gradient slots, so every
    // contribution lands there in the order the plain tape would add it: gradients
    // are bitwise those of the run without this checkpoint.
    std::vector<Var> fresh_inputs;
    for (size_t i = 0; i < n; ++i) fresh_inputs.push_back(Var::with_slot(ctx.saved(i), ctx.input_slot(i)));
    Tape sub;
    std::vector<Var> outs;
    {
      ObserverSpan span("recompute", full_label);
      LabelOverride label(scope_label);
      t_tape_stack.push_back(&sub);
      try {
        outs = fn(fresh_inputs);
      } catch (...) {
        t_tape_stack.pop_back();
        throw;
      }
      t_tape_stack.pop_back();
    }
    std::vector<std::pair<std::shared_ptr<GradSlot>, Tensor>> seeds;
    for (size_t j = 0; j < outs.size(); ++j)
      if (outs[j].requires_grad()) seeds.push_back({outs[j].slot(), ctx.grad_output(j)});
    outs.clear();  // the recomputed outputs' values are not needed for backward
    {
      LabelOverride label(scope_label);
      sub.run_backward(seeds);
    }
  });
  record_node(std::move(node));
  return recorded;
}

}  // namespace gc
