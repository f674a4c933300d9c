// gemm.h: our own CPU GEMM (no BLAS) of a GemmProblem (kernels/gemm_problem.h:
// C = alpha op(A) op(B) + beta C + bias on raw row-major buffers).
//
// A and B may each be f32, bf16 or f16 (widened to f32 while packing), C f32, bf16
// or f16; products accumulate in f32 and are rounded to C's dtype once, at the
// end. When all of A, B, C (and bias) are f64 a simple all-f64 path runs instead
// (for tests and references).
//
// Invariants callers rely on:
//   - deterministic: every output element sums its k products in an order fixed by
//     (m, n, k) alone, never by the thread count, so 1 and 2 threads agree bitwise;
//   - no allocation: packing buffers live in the caller's workspace of at least
//     gemm_cpu_workspace_bytes(m, n, k) bytes (any alignment). That figure depends
//     only on (m, n, k) and gemm_cpu_workspace_threads(), is a few MiB at most, and
//     does not grow with k (a long reduction such as x^T grad_y needs no more than a
//     short one);
//   - beta == 0 never reads C (it may hold garbage or NaN).
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/gemm_problem.h"

namespace gc::kernels::cpu {

// The team the workspace is sized for: the most threads this process started
// with (OMP_NUM_THREADS, else the processor count), or more when the process has
// since asked for more. A process that gives cores back to a busy machine
// (tools/train/cpu_share.h: fewer threads when others run) keeps the same
// workspace, so its memory figures do not depend on the machine's load; they
// equal a dry run's, which sizes it the same way.
int gemm_cpu_workspace_threads();

// Workspace the f32-accumulating path needs for any dtypes and transposes of an
// [m, k] x [k, n] product with gemm_cpu_workspace_threads() threads (the f64 path
// needs none, but the figure does not depend on dtypes); _for: with `threads`.
size_t gemm_cpu_workspace_bytes(int64_t m, int64_t n, int64_t k);
size_t gemm_cpu_workspace_bytes_for(int64_t m, int64_t n, int64_t k, int threads);

// Throws std::invalid_argument on bad shapes, strides, dtypes, null pointers or a
// workspace smaller than the problem needs (with fewer threads than
// omp_get_max_threads() when only a smaller team's buffers fit; the result is
// the same either way).
void gemm_cpu(const GemmProblem& problem, void* workspace, size_t workspace_bytes);

// Micro-tile of the compiled path, for tests that want sizes straddling it.
int gemm_cpu_micro_rows();
int gemm_cpu_micro_cols();

}  // namespace gc::kernels::cpu
