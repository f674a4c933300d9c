// tests/cudasim/sim_counters.h: what the simulated device was asked to do, for
// tests that check the cost model of kernels/traffic.h against the backend.
//
// Counted as the CUDA runtime would see the calls: every kernel launch, cuBLAS
// GEMM, memcpy (1-D or 2-D, blocking or async) and memset is one operation on the
// stream; a host synchronization is a blocking cudaMemcpy with host memory on
// one side (the host waits for the stream to drain and the copy to finish), a
// cudaDeviceSynchronize or a cudaEventSynchronize.
#pragma once

#include <cstdint>

namespace gcsim {

struct Counters {
  uint64_t kernels = 0, gemms = 0, copies = 0, memsets = 0, host_syncs = 0;
  uint64_t launches() const { return kernels + gemms + copies + memsets; }
};

Counters counters();
void reset_counters();
// Kernel launches since the last reset whose name, as written at the launch
// (template arguments included, e.g. "sum_groups_kernel<kSame, S, D>"), contains
// `part`: which of a kernel's variants ran.
uint64_t kernel_launches_named(const char* part);

}  // namespace gcsim
