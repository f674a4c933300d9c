// rollout.cpp: see rollout.h.
#include "tools/train/rollout.h"

#include "runtime/memory_scope.h"

namespace gc {

void roll_out(const data::Batch& batch, int steps, const Tensor& state_to_input, DType compute_dtype,
              const std::function<Var(int k, const Var& input)>& predict,
              const std::function<void(int k, const Var& state)>& visit, const Tensor* keep_state,
              int64_t fed_back) {
  Var state(batch.state);
  Var previous(batch.previous_input);
  Var input(batch.input);
  for (int k = 0; k < steps; ++k) {
    Var y = predict(k, input);
    MemoryScope scope("loss");
    state = keep_state ? add(mul(state, Var(*keep_state)), y) : add(state, y);
    visit(k, state);
    if (k + 1 < steps) {
      const int64_t columns = state.shape()[1];
      Var fed = fed_back > 0 && fed_back < columns ? split_cols(state, {fed_back, columns - fed_back})[0] : state;
      Var next = mul(fed, Var(state_to_input));
      if (next.dtype() != compute_dtype) next = cast(next, compute_dtype);
      input = batch.extra_inputs.empty()
                  ? concat_cols({previous, next})
                  : concat_cols({previous, next, Var(batch.extra_inputs[static_cast<size_t>(k)])});
      previous = next;
    }
  }
}

}  // namespace gc
