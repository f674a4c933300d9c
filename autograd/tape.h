// tape.h: the tape-based autograd engine.
//
// A Var is a value tensor plus a gradient slot. Ops record a Node on the
// current tape in forward order; backward() walks the tape in reverse.
// Invariants that the memory figures rely on:
//   - a Node never holds its inputs' values, only what it saves explicitly
//     (Node::save), and saved tensors are recategorized `activation` under the
//     op's label; they are released as soon as that node's backward has run;
//   - gradients of intermediate values are released as soon as their producer's
//     backward has consumed them; leaf (parameter) gradients are f32 (f64 for
//     f64 parameters), categorized `gradient`, and accumulate with += across
//     uses and across backward calls until zero_grad();
//   - backward() consumes the tape: calling it again on the same graph throws.
// A checkpointed segment records one node that keeps only the segment's inputs
// and re-runs the segment, recording, inside backward (checkpoint()).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "runtime/tensor.h"

namespace gc {

struct GradSlot {
  Tensor grad;
  bool requires_grad = false;
  bool is_leaf = true;
  std::string name;   // parameter name (label of its gradient)
  // What the value looks like (the slot never holds the value itself).
  Shape shape;
  DType dtype = DType::f32;
  Device device = Device::cpu;
};

class Var {
 public:
  Var() = default;
  // A leaf. requires_grad=true makes it a parameter-like leaf whose gradient persists.
  explicit Var(Tensor value, bool requires_grad = false, std::string name = std::string());

  bool defined() const { return impl_ != nullptr; }
  const Tensor& value() const { return impl_->value; }
  Tensor& mutable_value() { return impl_->value; }
  const Tensor& grad() const { return impl_->slot->grad; }
  bool requires_grad() const { return impl_ && impl_->slot->requires_grad; }
  bool is_leaf() const { return impl_->slot->is_leaf; }
  const std::string& name() const { return impl_->slot->name; }
  const std::shared_ptr<GradSlot>& slot() const { return impl_->slot; }
  void zero_grad() { impl_->slot->grad = Tensor(); }

  const Shape& shape() const { return value().shape(); }
  DType dtype() const { return value().dtype(); }
  Device device() const { return value().device(); }

  // An op output: value with a fresh non-leaf slot.
  static Var make_output(Tensor value, bool requires_grad);
  // A value bound to an existing gradient slot (a checkpoint's recomputation
  // sends its input gradients straight into the inputs' own slots).
  static Var with_slot(Tensor value, std::shared_ptr<GradSlot> slot);

 private:
  struct Impl {
    Tensor value;
    std::shared_ptr<GradSlot> slot;
  };
  std::shared_ptr<Impl> impl_;
};

class Node;
// Passed to a node's backward: output gradients in, input gradients out.
class BackwardContext {
 public:
  BackwardContext(Node& node, std::vector<Tensor> grad_outputs);
  const Tensor& grad_output(size_t i = 0) const { return grad_outputs_[i]; }
  bool needs_grad(size_t input) const;
  // Adds g to input i's gradient (assigns when it has none yet).
  void add_grad(size_t input, const Tensor& g);
  // The gradient a non-leaf input holds so far (undefined if none, or for a leaf):
  // for ops that fold their contribution into it in one pass, then replace_grad
  // with the sum. The tensor may be shared with another slot: read it, never write.
  Tensor pending_grad(size_t input) const;
  void replace_grad(size_t input, const Tensor& g);
  // The gradient a non-leaf input holds so far when no other slot or tensor
  // shares its storage and it has this dtype: an op may add its contribution into
  // it in place (a product with beta = 1). Undefined otherwise (then add_grad).
  Tensor owned_grad(size_t input, DType dtype) const;
  // Adds g [U, C] to rows `rows` [U] (distinct, i32) of input i's [N, C]
  // gradient, created as zeros if absent: a gradient that touches few rows never
  // needs a full-size temporary (kernels::index_add_rows).
  void add_grad_rows(size_t input, const Tensor& g, const Tensor& rows);
  // The persistent gradient buffer of input i, created as zeros if absent, for
  // kernels that accumulate in place (grad_W += x^T dy). f32 for parameters.
  Tensor& grad_buffer(size_t input);
  const Tensor& saved(size_t i) const;
  const std::shared_ptr<GradSlot>& input_slot(size_t input) const;

 private:
  Node& node_;
  std::vector<Tensor> grad_outputs_;
};

using BackwardFn = std::function<void(BackwardContext&)>;

class Node {
 public:
  Node(std::string op, std::string label) : op_(std::move(op)), label_(std::move(label)) {}
  // Records input i (only its gradient slot; never its value).
  void add_input(const Var& v) { inputs_.push_back(v.slot()); }
  void add_output(const Var& v) { outputs_.push_back(v.slot()); }
  // Keeps t alive until this node's backward ran; recategorized `activation`
  // unless it is a parameter or input tensor.
  void save(const Tensor& t);
  void set_backward(BackwardFn fn) { backward_ = std::move(fn); }

  const std::string& op() const { return op_; }
  const std::string& label() const { return label_; }
  void run_backward();
  void release() { saved_.clear(); }

 private:
  friend class BackwardContext;
  std::string op_, label_;
  std::vector<std::shared_ptr<GradSlot>> inputs_, outputs_;
  std::vector<Tensor> saved_;
  BackwardFn backward_;
};

// Observer of forward/backward work, for traces (tools/ installs one).
struct TapeObserver {
  virtual ~TapeObserver() = default;
  virtual void begin(const std::string& phase, const std::string& label) = 0;  // phase: backward, recompute
  virtual void end() = 0;
};
void set_tape_observer(TapeObserver* observer);
TapeObserver* tape_observer();

class Tape {
 public:
  void record(std::unique_ptr<Node> node) { nodes_.push_back(std::move(node)); }
  size_t size() const { return nodes_.size(); }
  void clear() { nodes_.clear(); }
  // Runs every node in reverse; seeds are (slot, gradient) pairs.
  void run_backward(const std::vector<std::pair<std::shared_ptr<GradSlot>, Tensor>>& seeds);

 private:
  std::vector<std::unique_ptr<Node>> nodes_;
};

// The tape ops record on (a stack: checkpoint recomputation pushes its own).
Tape& current_tape();
bool grad_enabled();

class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool saved_;
};

// True when an op with these inputs must record a node.
bool should_record(std::initializer_list<const Var*> inputs);
// Records a node built by an op (no-op when nothing requires grad).
void record_node(std::unique_ptr<Node> node);

// Backpropagates from a scalar loss (gradient 1) or with the given seed
// gradient. Consumes the tape; a second call without a new forward throws.
void backward(const Var& loss);
void backward(const Var& output, const Tensor& seed_grad);

// Runs fn(inputs) without keeping its intermediates; records one node keeping
// only the inputs; re-runs fn with recording inside backward. fn must be
// deterministic and use only the inputs and captured parameters.
using SegmentFn = std::function<std::vector<Var>(const std::vector<Var>&)>;
std::vector<Var> checkpoint(const std::string& label, const SegmentFn& fn, const std::vector<Var>& inputs);

}  // namespace gc
