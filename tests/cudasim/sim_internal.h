// tests/cudasim/sim_internal.h: what sim.cpp (memory, the stream's counters)
// lends sim_blas.cpp (cuBLAS and cuBLASLt).
#pragma once

#include <cstddef>
#include <string>

namespace gcsim {

void report(const std::string& message);                // one "cudasim: ..." line on stderr
bool device_memory(const void* p, size_t bytes);         // [p, p + bytes) inside one device allocation
bool touches_device_memory(const void* p, size_t bytes); // any of [p, p + bytes) in device memory
void count_gemm();                                       // one cuBLAS product on the stream

}  // namespace gcsim
