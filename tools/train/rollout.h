// rollout.h: the autoregressive roll-out, the one recurrence behind the
// training loss, the evaluation and the forecasts (the convention is that of
// tools/data/normalization.h).
//
// From a batch's frame t, step k (0-based) asks predict(k, input) for the
// normalized 6-hour change y, updates the state S += y, and hands S to
// visit(k, S); every step but the last feeds S back as the next input:
// [previous frame, S * diff_std / std] in the compute dtype, followed, for weather
// data, by the step's forcings and static fields (batch.extra_inputs[k]). The state update,
// visit and feed-back are labelled "loss" in the memory figures.
#pragma once

#include <functional>

#include "autograd/ops.h"
#include "tools/data/batch.h"

namespace gc {

// Weather data with target-only variables (weather_task.h): keep_state [B * grid, C]
// f32 is 1 for the residual channels and 0 for those predicted directly (S = y there),
// and only the first fed_back columns of S are fed back; without them every channel
// is a residual and fed back.
void roll_out(const data::Batch& batch, int steps,
              const Tensor& state_to_input,  // [B * grid, C or fed_back] f32: diff_std / std per channel
              DType compute_dtype, const std::function<Var(int k, const Var& input)>& predict,
              const std::function<void(int k, const Var& state)>& visit, const Tensor* keep_state = nullptr,
              int64_t fed_back = 0);

}  // namespace gc
