// kernels/accumulation.h: the dtype that sums and statistics accumulate in, for
// an input of a given dtype: f64 for f64, f32 for everything else, so a 16-bit
// input never accumulates in 16 bits. It is the DType twin of compute_t<T>
// (runtime/dtype.h), and it is also the dtype of every output that carries an
// accumulator out of a kernel: reductions, the loss, LayerNorm's statistics and
// parameter gradients, weight gradients.
#pragma once

#include "runtime/dtype.h"

namespace gc::kernels {

constexpr DType accumulation_dtype(DType input) { return input == DType::f64 ? DType::f64 : DType::f32; }

}  // namespace gc::kernels
