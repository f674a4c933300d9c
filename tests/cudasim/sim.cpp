// tests/cudasim/sim.cpp: cudasim's runtime: device memory, copies and kernel
// launches on fibers (see cuda_runtime.h for the model); cuBLAS and cuBLASLt are
// in sim_blas.cpp.
//
// Invariant: the simulator never lets a wrong call pass silently. Every failure
// returns the error CUDA or cuBLAS would return and prints one line starting
// "cudasim:" that says what was wrong, so a failing test names the cause.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "cuda_runtime.h"
#include "runtime/dtype.h"
#include "sim_counters.h"
#include "sim_internal.h"

// ---- fibers: a minimal context switch (x86-64 System V) -----------------------------------
//
// gcsim_switch_context(save, load) pushes the callee-saved registers on the
// current stack, stores the stack pointer in *save, loads `load` as the stack
// pointer and pops the registers saved there, returning into that context.
extern "C" void gcsim_switch_context(void** save, void* load);
asm(R"(
  .text
  .globl gcsim_switch_context
  .type gcsim_switch_context, @function
gcsim_switch_context:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size gcsim_switch_context, .-gcsim_switch_context
)");

namespace gcsim {
namespace {

constexpr size_t kPage = 4096;
constexpr size_t kFiberStackBytes = 256 * 1024;  // kernels' frames are small; a guard page catches overflow
constexpr unsigned kMaxThreadsPerBlock = 1024;
constexpr unsigned kMaxBlockZ = 64;
constexpr unsigned kMaxGridYZ = 65535;
constexpr unsigned kMaxGridX = 2147483647u;
constexpr size_t kDeviceAlignment = 256;
constexpr unsigned char kFreshMemoryByte = 0xff;  // NaN in every float type, -1 in ints
constexpr size_t kDefaultDeviceBytes = size_t(8) << 30;

void say(const std::string& message) { std::fprintf(stderr, "cudasim: %s\n", message.c_str()); }

// ---- the last error ---------------------------------------------------------------------------

thread_local cudaError_t last_error = cudaSuccess;

cudaError_t fail(cudaError_t error, const std::string& message) {
  say(message);
  last_error = error;
  return error;
}

// ---- device memory -----------------------------------------------------------------------------

struct Mapping {
  void* base;          // what mmap returned
  size_t mapped;       // bytes mapped, guard page included
  size_t bytes;        // what cudaMalloc was asked for
};

std::mutex memory_mutex;
std::map<uintptr_t, Mapping> allocations;  // device address -> mapping
size_t allocated_bytes = 0;

size_t device_capacity() {
  static const size_t capacity = [] {
    const char* text = std::getenv("GCSIM_DEVICE_BYTES");
    return text ? static_cast<size_t>(std::strtoull(text, nullptr, 10)) : kDefaultDeviceBytes;
  }();
  return capacity;
}

// The allocation holding [p, p + bytes), or nullptr.
const std::pair<const uintptr_t, Mapping>* find_device_range(const void* p, size_t bytes) {
  std::lock_guard<std::mutex> lock(memory_mutex);
  const uintptr_t address = reinterpret_cast<uintptr_t>(p);
  auto it = allocations.upper_bound(address);
  if (it == allocations.begin()) return nullptr;
  --it;
  const uintptr_t begin = it->first, end = begin + it->second.bytes;
  if (address < begin || address > end || bytes > end - address) return nullptr;
  if (bytes == 0 && address == end) return nullptr;  // a pointer must point into the allocation
  return &*it;
}

bool in_device(const void* p, size_t bytes) { return find_device_range(p, bytes) != nullptr; }

// Touches any device byte of [p, p + bytes)? (host memory must not overlap device memory)
bool touches_device(const void* p, size_t bytes) {
  std::lock_guard<std::mutex> lock(memory_mutex);
  const uintptr_t address = reinterpret_cast<uintptr_t>(p);
  auto it = allocations.upper_bound(address + (bytes ? bytes - 1 : 0));
  if (it == allocations.begin()) return false;
  --it;
  return address < it->first + it->second.bytes && address + std::max<size_t>(bytes, 1) > it->first;
}

std::string pointer_text(const void* p) {
  char text[32];
  std::snprintf(text, sizeof text, "%p", p);
  return text;
}

// Checks one side of a copy: `device` says where `kind` puts it.
bool check_side(const char* call, const char* side, const void* p, size_t extent, bool device) {
  if (device && !in_device(p, extent)) {
    fail(cudaErrorInvalidValue, std::string(call) + ": " + side + " " + pointer_text(p) + " + " +
                                    std::to_string(extent) + " bytes is not inside one device allocation");
    return false;
  }
  if (!device && touches_device(p, extent)) {
    fail(cudaErrorInvalidValue, std::string(call) + ": " + side + " " + pointer_text(p) +
                                    " is device memory, but the copy's kind says host");
    return false;
  }
  return true;
}

bool check_copy(const char* call, void* dst, size_t dst_extent, const void* src, size_t src_extent,
                cudaMemcpyKind kind) {
  bool dst_device = false, src_device = false;
  switch (kind) {
    case cudaMemcpyHostToHost: break;
    case cudaMemcpyHostToDevice: dst_device = true; break;
    case cudaMemcpyDeviceToHost: src_device = true; break;
    case cudaMemcpyDeviceToDevice: dst_device = src_device = true; break;
    case cudaMemcpyDefault: return true;  // unified addressing: either side may be either
    default: fail(cudaErrorInvalidValue, std::string(call) + ": unknown copy kind"); return false;
  }
  return check_side(call, "destination", dst, dst_extent, dst_device) &&
         check_side(call, "source", src, src_extent, src_device);
}

bool check_stream(const char* call, cudaStream_t stream) {
  if (stream == nullptr) return true;
  fail(cudaErrorInvalidResourceHandle, std::string(call) + ": gc uses only the default stream");
  return false;
}

// ---- kernels on fibers ---------------------------------------------------------------------------

enum class Wait { none, block, warp };

struct Fiber {
  char* stack = nullptr;  // lowest usable byte (a guard page lies below)
  void* sp = nullptr;
  uint3 index{};
  bool done = false;
  Wait wait = Wait::none;
};

struct Grid {
  bool active = false;
  const char* kernel = nullptr;
  const std::function<void()>* body = nullptr;
  dim3 grid, block;
  uint3 block_index{};
  std::vector<Fiber> fibers;          // one per thread of the block (stacks kept between launches)
  Fiber* current = nullptr;
  void* scheduler_sp = nullptr;
  std::vector<uint64_t> lane_values;  // warp exchanges: one slot per thread
  std::exception_ptr error;
  uint64_t launches = 0;
  std::vector<void*> fresh_shared;    // __shared__ arrays already filled in this block
};

// One simulated device, driven by one host thread at a time (gc launches every
// kernel from the thread that runs the step); run_grid refuses a second one.
Grid grid_state;
std::atomic<bool> grid_busy{false};

[[noreturn]] void misuse(const char* what) {
  say(std::string(what) + " outside a kernel (a __device__ function called from the host?)");
  std::abort();
}

Fiber& running_fiber() {
  if (!grid_state.active || grid_state.current == nullptr) misuse("a thread coordinate or barrier used");
  return *grid_state.current;
}

void yield_to_scheduler(Wait wait) {
  Fiber& f = running_fiber();
  f.wait = wait;
  gcsim_switch_context(&f.sp, grid_state.scheduler_sp);
}

void fiber_main() {
  Grid& g = grid_state;
  Fiber* f = g.current;
  try {
    (*g.body)();
  } catch (...) {
    if (!g.error) g.error = std::current_exception();
  }
  f->done = true;
  gcsim_switch_context(&f->sp, g.scheduler_sp);
  std::abort();  // a finished fiber is never resumed
}

char* map_stack() {
  void* base = mmap(nullptr, kFiberStackBytes + kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                    -1, 0);
  if (base == MAP_FAILED) {
    say("cannot map a fiber stack");
    std::abort();
  }
  mprotect(base, kPage, PROT_NONE);  // guard page: a stack overflow faults at once
  return static_cast<char*>(base) + kPage;
}

// Sets the fiber up to enter fiber_main on its first switch.
void prepare(Fiber& f) {
  uintptr_t top = reinterpret_cast<uintptr_t>(f.stack + kFiberStackBytes) & ~uintptr_t(15);
  void** sp = reinterpret_cast<void**>(top);
  *--sp = nullptr;                                 // fiber_main's return address: none
  *--sp = reinterpret_cast<void*>(&fiber_main);    // where gcsim_switch_context's ret goes
  for (int reg = 0; reg < 6; ++reg) *--sp = nullptr;  // rbp rbx r12 r13 r14 r15
  f.sp = sp;
  f.done = false;
  f.wait = Wait::none;
}

// Runs the lanes [first, last) of one warp until each live lane waits at
// __syncthreads or has exited, passing the warp's shuffles as all its lanes reach
// them. Returns false (after saying why) on a shuffle that cannot complete.
bool run_warp(size_t warp, size_t count, bool backward) {
  Grid& g = grid_state;
  const size_t first = warp * 32, last = std::min(count, first + 32);
  for (;;) {
    for (size_t k = first; k < last; ++k) {
      Fiber& f = g.fibers[backward ? last - 1 - (k - first) : k];
      if (f.done || f.wait != Wait::none) continue;
      g.current = &f;
      gcsim_switch_context(&g.scheduler_sp, f.sp);
      g.current = nullptr;
    }
    size_t live = 0, at_warp = 0;
    for (size_t i = first; i < last; ++i) {
      live += !g.fibers[i].done;
      at_warp += !g.fibers[i].done && g.fibers[i].wait == Wait::warp;
    }
    if (at_warp == 0) return true;
    const std::string block = std::to_string(g.block_index.x) + "," + std::to_string(g.block_index.y) + "," +
                              std::to_string(g.block_index.z);
    if (at_warp != live) {
      say(std::string(g.kernel) + ": deadlock in warp " + std::to_string(warp) + " of block (" + block + "): " +
          std::to_string(at_warp) + " lanes at a shuffle, " + std::to_string(live - at_warp) +
          " at __syncthreads (a shuffle not every lane reaches?)");
      return false;
    }
    if (live < 32) {
      say(std::string(g.kernel) + ": a full-warp shuffle in warp " + std::to_string(warp) + " of block (" + block +
          ") with " + std::to_string(32 - live) + " lanes exited or missing");
      return false;
    }
    for (size_t i = first; i < last; ++i) g.fibers[i].wait = Wait::none;
  }
}

// Runs one block to completion; returns false (after saying why) on a deadlock.
bool run_block(size_t count, bool backward) {
  Grid& g = grid_state;
  g.fresh_shared.clear();
  for (size_t i = 0; i < count; ++i) {
    Fiber& f = g.fibers[i];
    f.index = uint3{static_cast<unsigned>(i % g.block.x), static_cast<unsigned>((i / g.block.x) % g.block.y),
                    static_cast<unsigned>(i / (static_cast<size_t>(g.block.x) * g.block.y))};
    prepare(f);
  }
  const size_t warps = (count + 31) / 32;
  for (;;) {
    for (size_t k = 0; k < warps; ++k)
      if (!run_warp(backward ? warps - 1 - k : k, count, backward)) return false;
    // Every live thread now waits at __syncthreads.
    bool any_live = false;
    for (size_t i = 0; i < count; ++i) {
      Fiber& f = g.fibers[i];
      if (f.done) continue;
      any_live = true;
      f.wait = Wait::none;
    }
    if (!any_live) return true;
  }
}

}  // namespace

// ---- device-side entry points --------------------------------------------------------------------

const uint3& thread_index() { return running_fiber().index; }
const uint3& block_index() {
  running_fiber();
  return grid_state.block_index;
}
const dim3& block_shape() {
  running_fiber();
  return grid_state.block;
}
const dim3& grid_shape() {
  running_fiber();
  return grid_state.grid;
}

void sync_block() { yield_to_scheduler(Wait::block); }

void fresh_shared(void* address, size_t bytes) {
  running_fiber();
  Grid& g = grid_state;
  if (std::find(g.fresh_shared.begin(), g.fresh_shared.end(), address) != g.fresh_shared.end()) return;
  g.fresh_shared.push_back(address);
  std::memset(address, kFreshMemoryByte, bytes);
}

int lane_of_current_thread() {
  const Fiber& f = running_fiber();
  return static_cast<int>(&f - grid_state.fibers.data()) & 31;
}

void warp_exchange(const void* value, void* out, size_t bytes, int source_lane, unsigned mask) {
  Fiber& f = running_fiber();
  Grid& g = grid_state;
  if (mask != 0xffffffffu) {
    say(std::string(g.kernel) + ": cudasim supports full-warp shuffles only");
    std::abort();
  }
  const size_t self = static_cast<size_t>(&f - g.fibers.data());
  uint64_t slot = 0;
  std::memcpy(&slot, value, bytes);
  g.lane_values[self] = slot;
  yield_to_scheduler(Wait::warp);  // every lane has written its value
  const uint64_t got = g.lane_values[(self & ~size_t(31)) | static_cast<size_t>(source_lane & 31)];
  yield_to_scheduler(Wait::warp);  // every lane has read before any writes again
  std::memcpy(out, &got, bytes);
}

bool check_kernel_pointer(const char* kernel, int parameter, const void* pointer) {
  if (pointer == nullptr || in_device(pointer, 0)) return true;
  fail(cudaErrorIllegalAddress, std::string(kernel) + ": parameter " + std::to_string(parameter) + " (" +
                                    pointer_text(pointer) + ") does not point into device memory");
  return false;
}

Counters stream_counters;
std::map<std::string, uint64_t> launches_by_name;

Counters counters() { return stream_counters; }
void reset_counters() {
  stream_counters = Counters();
  launches_by_name.clear();
}
uint64_t kernel_launches_named(const char* part) {
  uint64_t count = 0;
  for (const auto& [name, launches] : launches_by_name)
    if (name.find(part) != std::string::npos) count += launches;
  return count;
}

// For sim_blas.cpp (sim_internal.h).
void report(const std::string& message) { say(message); }
bool device_memory(const void* p, size_t bytes) { return in_device(p, bytes); }
bool touches_device_memory(const void* p, size_t bytes) { return touches_device(p, bytes); }
void count_gemm() { ++stream_counters.gemms; }

void run_grid(const Config& config, const char* kernel, const std::function<void()>& thread_body) {
  ++stream_counters.kernels;
  ++launches_by_name[kernel];
  Grid& g = grid_state;
  if (g.active && g.current != nullptr) {
    say(std::string(kernel) + ": launched from inside a kernel (dynamic parallelism is not used by gc)");
    std::abort();
  }
  if (grid_busy.exchange(true)) {
    say(std::string(kernel) + ": launched from two host threads at once (gc uses one)");
    std::abort();
  }
  struct Release {
    ~Release() { grid_busy = false; }
  } release_busy;
  const dim3 b = config.block, gr = config.grid;
  const uint64_t threads = static_cast<uint64_t>(b.x) * b.y * b.z;
  if (b.x == 0 || b.y == 0 || b.z == 0 || gr.x == 0 || gr.y == 0 || gr.z == 0 || threads > kMaxThreadsPerBlock ||
      b.z > kMaxBlockZ || gr.x > kMaxGridX || gr.y > kMaxGridYZ || gr.z > kMaxGridYZ) {
    fail(cudaErrorInvalidConfiguration,
         std::string(kernel) + ": launch shape grid (" + std::to_string(gr.x) + "," + std::to_string(gr.y) + "," +
             std::to_string(gr.z) + ") block (" + std::to_string(b.x) + "," + std::to_string(b.y) + "," +
             std::to_string(b.z) + ") breaks a limit of the GPU");
    return;
  }
  if (config.shared_bytes != 0) {
    fail(cudaErrorInvalidValue, std::string(kernel) + ": dynamic shared memory is not simulated");
    return;
  }
  if (!check_stream(kernel, config.stream)) return;

  while (g.fibers.size() < threads) {
    g.fibers.emplace_back();
    g.fibers.back().stack = map_stack();
  }
  g.lane_values.assign(threads, 0);
  g.kernel = kernel;
  g.body = &thread_body;
  g.grid = gr;
  g.block = b;
  g.error = nullptr;
  g.active = true;
  bool ok = true;
  uint64_t block_number = 0;
  for (unsigned z = 0; z < gr.z && ok; ++z)
    for (unsigned y = 0; y < gr.y && ok; ++y)
      for (unsigned x = 0; x < gr.x && ok; ++x, ++block_number) {
        g.block_index = uint3{x, y, z};
        ok = run_block(threads, ((g.launches + block_number) & 1) != 0);
      }
  g.active = false;
  ++g.launches;
  if (g.error) {
    std::string what = "unknown exception";
    try {
      std::rethrow_exception(g.error);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    g.error = nullptr;
    fail(cudaErrorLaunchFailure, std::string(kernel) + ": a thread threw: " + what);
    return;
  }
  if (!ok) fail(cudaErrorLaunchFailure, std::string(kernel) + ": the launch failed");
}

}  // namespace gcsim

// ---- the CUDA runtime API ------------------------------------------------------------------------

using gcsim::check_copy;
using gcsim::fail;

cudaError_t cudaGetDeviceCount(int* count) {
  *count = 1;
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) { return device == 0 ? cudaSuccess : cudaErrorInvalidValue; }

const char* cudaGetErrorString(cudaError_t error) {
  switch (error) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidPitchValue: return "invalid pitch argument";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
  }
  return "unknown error";
}

cudaError_t cudaGetLastError() {
  const cudaError_t error = gcsim::last_error;
  gcsim::last_error = cudaSuccess;
  return error;
}
cudaError_t cudaPeekAtLastError() { return gcsim::last_error; }
cudaError_t cudaDeviceSynchronize() {
  ++gcsim::stream_counters.host_syncs;
  return cudaSuccess;
}

struct CUevent_st {
  double ms = 0;
  bool recorded = false;
};

cudaError_t cudaEventCreate(cudaEvent_t* event) {
  *event = new CUevent_st();
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t event) {
  delete event;
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  if (!event) return fail(cudaErrorInvalidResourceHandle, "cudaEventRecord: no event");
  if (!gcsim::check_stream("cudaEventRecord", stream)) return gcsim::last_error;
  event->ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
  event->recorded = true;
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  if (!event) return fail(cudaErrorInvalidResourceHandle, "cudaEventSynchronize: no event");
  ++gcsim::stream_counters.host_syncs;
  return cudaSuccess;
}
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t stop) {
  if (!start || !stop || !start->recorded || !stop->recorded)
    return fail(cudaErrorInvalidResourceHandle, "cudaEventElapsedTime: an event was never recorded");
  *ms = static_cast<float>(stop->ms - start->ms);
  return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
  std::lock_guard<std::mutex> lock(gcsim::memory_mutex);
  *total_bytes = gcsim::device_capacity();
  *free_bytes = gcsim::device_capacity() - gcsim::allocated_bytes;
  return cudaSuccess;
}

cudaError_t cudaMalloc(void** pointer, size_t bytes) {
  using namespace gcsim;
  *pointer = nullptr;
  if (bytes == 0) return cudaSuccess;
  {
    std::lock_guard<std::mutex> lock(memory_mutex);
    if (bytes > device_capacity() - allocated_bytes)
      return fail(cudaErrorMemoryAllocation, "cudaMalloc: " + std::to_string(bytes) + " bytes with " +
                                                 std::to_string(device_capacity() - allocated_bytes) +
                                                 " of the simulated device free");
  }
  // The allocation ends (rounded up to the alignment) where a guard page begins,
  // so a kernel running off the end of a segment faults at once.
  const size_t rounded = (bytes + kDeviceAlignment - 1) / kDeviceAlignment * kDeviceAlignment;
  const size_t data_pages = (rounded + kPage - 1) / kPage * kPage;
  const size_t mapped = data_pages + kPage;
  void* base = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED) return fail(cudaErrorMemoryAllocation, "cudaMalloc: the host cannot map " + std::to_string(bytes) + " bytes");
  char* guard = static_cast<char*>(base) + data_pages;
  mprotect(guard, kPage, PROT_NONE);
  char* data = guard - rounded;
  std::memset(data, kFreshMemoryByte, rounded);  // what a kernel reads before anyone wrote it
  {
    std::lock_guard<std::mutex> lock(memory_mutex);
    allocations[reinterpret_cast<uintptr_t>(data)] = Mapping{base, mapped, bytes};
    allocated_bytes += bytes;
  }
  *pointer = data;
  return cudaSuccess;
}

cudaError_t cudaFree(void* pointer) {
  using namespace gcsim;
  if (pointer == nullptr) return cudaSuccess;
  Mapping mapping{};
  {
    std::lock_guard<std::mutex> lock(memory_mutex);
    auto it = allocations.find(reinterpret_cast<uintptr_t>(pointer));
    if (it == allocations.end())
      return fail(cudaErrorInvalidDevicePointer, "cudaFree: " + pointer_text(pointer) + " is not an allocation's start");
    mapping = it->second;
    allocated_bytes -= mapping.bytes;
    allocations.erase(it);
  }
  munmap(mapping.base, mapping.mapped);
  return cudaSuccess;
}

namespace gcsim {
namespace {
// One copy on the stream; a blocking one with host memory on a side makes the host wait.
cudaError_t copy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, bool blocking) {
  if (bytes == 0) return cudaSuccess;
  if (!check_copy("cudaMemcpy", dst, bytes, src, bytes, kind)) return last_error;
  ++stream_counters.copies;
  if (blocking && (!in_device(dst, bytes) || !in_device(src, bytes))) ++stream_counters.host_syncs;
  std::memmove(dst, src, bytes);
  return cudaSuccess;
}
}  // namespace
}  // namespace gcsim

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  return gcsim::copy(dst, src, bytes, kind, true);
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t stream) {
  if (!gcsim::check_stream("cudaMemcpyAsync", stream)) return gcsim::last_error;
  return gcsim::copy(dst, src, bytes, kind, false);
}

cudaError_t cudaMemcpy2D(void* dst, size_t dst_pitch, const void* src, size_t src_pitch, size_t width, size_t height,
                         cudaMemcpyKind kind) {
  if (width == 0 || height == 0) return cudaSuccess;
  if (width > dst_pitch || width > src_pitch)
    return fail(cudaErrorInvalidPitchValue, "cudaMemcpy2D: width " + std::to_string(width) + " exceeds a pitch (dst " +
                                                std::to_string(dst_pitch) + ", src " + std::to_string(src_pitch) + ")");
  const size_t dst_extent = dst_pitch * (height - 1) + width, src_extent = src_pitch * (height - 1) + width;
  if (!check_copy("cudaMemcpy2D", dst, dst_extent, src, src_extent, kind)) return gcsim::last_error;
  ++gcsim::stream_counters.copies;
  if (!gcsim::in_device(dst, dst_extent) || !gcsim::in_device(src, src_extent)) ++gcsim::stream_counters.host_syncs;
  for (size_t row = 0; row < height; ++row)
    std::memmove(static_cast<char*>(dst) + row * dst_pitch, static_cast<const char*>(src) + row * src_pitch, width);
  return cudaSuccess;
}

cudaError_t cudaMemcpy2DAsync(void* dst, size_t dst_pitch, const void* src, size_t src_pitch, size_t width,
                              size_t height, cudaMemcpyKind kind, cudaStream_t stream) {
  if (!gcsim::check_stream("cudaMemcpy2DAsync", stream)) return gcsim::last_error;
  return cudaMemcpy2D(dst, dst_pitch, src, src_pitch, width, height, kind);
}

cudaError_t cudaMemset(void* dst, int value, size_t bytes) {
  if (bytes == 0) return cudaSuccess;
  if (!gcsim::in_device(dst, bytes))
    return fail(cudaErrorInvalidValue,
                "cudaMemset: " + gcsim::pointer_text(dst) + " + " + std::to_string(bytes) + " bytes is not device memory");
  ++gcsim::stream_counters.memsets;
  std::memset(dst, value, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t stream) {
  if (!gcsim::check_stream("cudaMemsetAsync", stream)) return gcsim::last_error;
  return cudaMemset(dst, value, bytes);
}
