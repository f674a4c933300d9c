// collectives.cpp: reductions over ranks composed of the communicator's
// exchanges and gc's own kernels (kernels/collectives.h).
#include "kernels/collectives.h"

#include <string>

#include "kernels/dispatch.h"
#include "kernels/elementwise.h"
#include "kernels/reduce.h"
#include "runtime/dtype.h"
#include "runtime/memory_scope.h"
#include "runtime/profile.h"

namespace gc::kernels {
namespace {

void check_float(const char* op, const Tensor& t) {
  if (!t.defined()) fail(op, "undefined tensor");
  if (!dtype_is_floating(t.dtype())) fail(op, "needs a float tensor, got " + t.describe());
}

}  // namespace

std::vector<int64_t> balanced_counts(int64_t n, int ranks) {
  if (ranks < 1 || n < 0) fail("balanced_counts", std::to_string(n) + " rows over " + std::to_string(ranks) + " ranks");
  std::vector<int64_t> counts(static_cast<size_t>(ranks), n / ranks);
  for (int64_t r = 0; r < n % ranks; ++r) counts[static_cast<size_t>(r)] += 1;
  return counts;
}

void reduce_scatter_sum(Communicator& comm, const Tensor& t, Tensor& out) {
  check_float("reduce_scatter_sum", t);
  const int p = comm.size();
  const std::vector<int64_t> counts = balanced_counts(t.numel(), p);
  const int64_t mine = counts[static_cast<size_t>(comm.rank())];
  check_float("reduce_scatter_sum", out);
  if (out.numel() != mine || out.dtype() != t.dtype() || out.device() != t.device())
    fail("reduce_scatter_sum", "out is " + out.describe() + ", this rank's chunk of " + t.describe() + " needs " +
                                   std::to_string(mine) + " elements of the same dtype and device");
  MemoryScope scope(Category::communication, "reduce_scatter");
  Tensor received = Tensor::empty({p * mine, 1}, t.dtype(), t.device());
  {
    const OpScope scope(OpFamily::communication, "all_to_all", t.device());
    comm.all_to_all(t.reshape({t.numel(), 1}), counts, received, std::vector<int64_t>(static_cast<size_t>(p), mine));
  }
  const DType acc = accumulation_dtype(t.dtype());
  if (acc == t.dtype()) {
    Tensor sum = out.reshape({mine});
    sum_rows(sum, received.reshape({p, mine}), false);
    return;
  }
  Tensor sum = Tensor::empty({mine}, acc, t.device());
  sum_rows(sum, received.reshape({p, mine}), false);
  Tensor rounded = out.reshape({mine});
  cast(rounded, sum);
}

void all_gather_chunks(Communicator& comm, const Tensor& chunk, Tensor& t) {
  check_float("all_gather_chunks", t);
  check_float("all_gather_chunks", chunk);
  const std::vector<int64_t> counts = balanced_counts(t.numel(), comm.size());
  Tensor whole = t.reshape({t.numel(), 1});
  const OpScope scope(OpFamily::communication, "all_gather", t.device());
  comm.all_gather(chunk.reshape({chunk.numel(), 1}), whole, counts);
}

void all_reduce_sum(Communicator& comm, Tensor& t) {
  check_float("all_reduce_sum", t);
  if (comm.size() == 1) return;
  const std::vector<int64_t> counts = balanced_counts(t.numel(), comm.size());
  MemoryScope scope(Category::communication, "all_reduce");
  Tensor chunk = Tensor::empty({counts[static_cast<size_t>(comm.rank())]}, t.dtype(), t.device());
  reduce_scatter_sum(comm, t, chunk);
  all_gather_chunks(comm, chunk, t);
}

}  // namespace gc::kernels
