// precision.h: compute-dtype copies of f32 master weights for mixed precision.
// A parameter used by an op whose input is bf16/f16 is read through one copy per
// step in that dtype (category `parameter`, label "<name>.<dtype>"), made on first
// use and held until release_compute_copies() (the trainer calls it after each
// optimizer step, when the master weights change).
#pragma once

#include "autograd/tape.h"

namespace gc {

// The value of `param` in `dtype`: the value itself when the dtypes match.
Tensor compute_copy(const Var& param, DType dtype);
void release_compute_copies();

}  // namespace gc
