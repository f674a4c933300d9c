// kernels/cpu/parallel.h: when a loop of the cpu kernels runs on OpenMP threads.
//
// Any value here gives the same bits. Every parallel loop in kernels/cpu computes
// each output (an element, a row, a column tile, a fixed chunk of a sum) by the
// same expression in the same order whatever the team, and the team only decides
// who computes it; a loop below the threshold runs that same code on the calling
// thread. So the figure trades thread start-up against work and nothing else
// (each op family's determinism test compares 1, 2 and 3 threads bitwise). The
// GEMM decides alone, by multiply-adds (parallel_worth_it in gemm.cpp).
#pragma once

#include <cstdint>

namespace gc::kernels::cpu {

// Loops over fewer elements stay on the calling thread: starting a team would cost more than it saves.
constexpr int64_t kParallelMinElements = int64_t(1) << 15;

}  // namespace gc::kernels::cpu
