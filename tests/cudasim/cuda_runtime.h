// tests/cudasim/cuda_runtime.h: the device side of cudasim. With it, gc's
// kernels/cuda sources compile with g++ (after tests/cudasim/translate.pl turns
// each `kernel<<<grid, block>>>(args)` into a call of gcsim::launch) and run on
// the CPU:
//
//   - every thread of a block is a fiber with its own stack; a block's threads run
//     one after another between barriers, forward in even blocks and backward in
//     odd ones, so a missing __syncthreads shows up as a wrong or non-repeatable
//     result;
//   - __syncthreads waits for every live thread of the block, __shfl_xor_sync for
//     every lane of the warp (a lane that has exited is an error, as is a barrier
//     no thread can pass: the launch fails with cudaErrorLaunchFailure and says
//     where the threads wait);
//   - __shared__ variables are function statics (blocks run one at a time),
//     filled with 0xff bytes when a block first reaches them;
//   - integer atomics are plain read-modify-writes (threads never overlap);
//   - launch shapes are checked against the GPU's limits, and every raw pointer
//     parameter must point into device memory (cudaMalloc'd).
//
// It is a test harness: timings, memory bandwidth and float atomics mean nothing
// here, and data races between threads of different blocks cannot show up.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>

#include "cuda_runtime_api.h"

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __launch_bounds__(...)

namespace gcsim {

struct uint3 {
  unsigned x, y, z;
};

// The coordinates of the running thread (aborts outside a kernel).
const uint3& thread_index();
const uint3& block_index();
const dim3& block_shape();
const dim3& grid_shape();

// Fills a __shared__ array with 0xff bytes (NaN, -1) the first time a thread of
// the running block reaches its declaration, as a GPU hands each block garbage
// (translate.pl inserts the call after every __shared__ array).
void fresh_shared(void* address, size_t bytes);

// Barrier of the block.
void sync_block();
// All lanes of the calling warp exchange `bytes` (at most 8) of `value`; returns,
// in `out`, the value of lane `source_lane`.
void warp_exchange(const void* value, void* out, size_t bytes, int source_lane, unsigned mask);
int lane_of_current_thread();

struct Config {
  dim3 grid, block;
  size_t shared_bytes;
  cudaStream_t stream;
  Config(dim3 grid_, dim3 block_, size_t shared_bytes_ = 0, cudaStream_t stream_ = nullptr)
      : grid(grid_), block(block_), shared_bytes(shared_bytes_), stream(stream_) {}
};

// True when `pointer` is null or lies in device memory; otherwise records
// cudaErrorIllegalAddress with a message naming the kernel and parameter.
bool check_kernel_pointer(const char* kernel, int parameter, const void* pointer);

// Runs `thread_body` once per thread of the grid (the launch fails, setting the
// last error, when the shape breaks a limit of the GPU).
void run_grid(const Config& config, const char* kernel, const std::function<void()>& thread_body);

// kernel<<<config>>>(args...): the arguments are copied once, as CUDA copies
// kernel parameters, and handed to every thread.
template <class Call, class... Args>
void launch(const Config& config, const char* kernel, Call&& call, Args&&... args) {
  auto parameters = std::make_tuple(std::decay_t<Args>(std::forward<Args>(args))...);
  bool pointers_ok = true;
  int index = 0;
  std::apply(
      [&](const auto&... parameter) {
        ((pointers_ok = pointers_ok && [&](const auto& p) {
           using P = std::decay_t<decltype(p)>;
           const int this_index = index++;
           if constexpr (std::is_pointer_v<P>)
             return check_kernel_pointer(kernel, this_index, static_cast<const void*>(p));
           else
             return true;
         }(parameter)),
         ...);
      },
      parameters);
  if (!pointers_ok) return;
  run_grid(config, kernel, [&] { std::apply(call, parameters); });
}

}  // namespace gcsim

#define threadIdx (::gcsim::thread_index())
#define blockIdx (::gcsim::block_index())
#define blockDim (::gcsim::block_shape())
#define gridDim (::gcsim::grid_shape())
#define warpSize 32

inline void __syncthreads() { ::gcsim::sync_block(); }

template <class T>
T __shfl_xor_sync(unsigned mask, T value, int lane_mask, int width = 32) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>, "cudasim shuffles values of up to 8 bytes");
  const int lane = ::gcsim::lane_of_current_thread();
  const int source = (lane & ~(width - 1)) | ((lane ^ lane_mask) & (width - 1));
  T out;
  ::gcsim::warp_exchange(&value, &out, sizeof(T), source, mask);
  return out;
}

template <class To, class From>
inline To gcsim_bit_cast(From from) {
  static_assert(sizeof(To) == sizeof(From));
  To to;
  std::memcpy(&to, &from, sizeof(To));
  return to;
}
inline unsigned __float_as_uint(float v) { return gcsim_bit_cast<unsigned>(v); }
inline float __uint_as_float(unsigned v) { return gcsim_bit_cast<float>(v); }
inline long long __double_as_longlong(double v) { return gcsim_bit_cast<long long>(v); }
inline double __longlong_as_double(long long v) { return gcsim_bit_cast<double>(v); }
// f64 -> f32 rounded toward zero.
inline float __double2float_rz(double v) {
  float nearest = static_cast<float>(v);
  if (std::isfinite(v) && std::fabs(static_cast<double>(nearest)) > std::fabs(v)) nearest = std::nextafter(nearest, 0.0f);
  return nearest;
}

// Threads never run at the same time, so atomics are plain updates.
inline unsigned atomicOr(unsigned* address, unsigned value) {
  const unsigned old = *address;
  *address = old | value;
  return old;
}
inline unsigned long long atomicMin(unsigned long long* address, unsigned long long value) {
  const unsigned long long old = *address;
  if (value < old) *address = value;
  return old;
}
inline unsigned atomicMin(unsigned* address, unsigned value) {
  const unsigned old = *address;
  if (value < old) *address = value;
  return old;
}
inline int atomicAdd(int* address, int value) {
  const int old = *address;
  *address = old + value;
  return old;
}

// The device math library's overloads that gc's kernels call unqualified.
using std::isfinite;
using std::isinf;
using std::isnan;
#define GCSIM_MIN_MAX(T)                           \
  inline T min(T a, T b) { return b < a ? b : a; } \
  inline T max(T a, T b) { return a < b ? b : a; }
GCSIM_MIN_MAX(int)
GCSIM_MIN_MAX(unsigned)
GCSIM_MIN_MAX(long)
GCSIM_MIN_MAX(unsigned long)
GCSIM_MIN_MAX(long long)
GCSIM_MIN_MAX(unsigned long long)
GCSIM_MIN_MAX(float)
GCSIM_MIN_MAX(double)
#undef GCSIM_MIN_MAX
