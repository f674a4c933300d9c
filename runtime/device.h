// device.h: the three devices. cpu holds real data in host memory; cuda holds
// real data in GPU memory (when built with CUDA and a GPU is present); meta holds
// shapes only, on a simulated address space, so a dry run makes exactly the
// allocator requests of a real run without touching memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace gc {

enum class Device : unsigned char { cpu, cuda, meta };

const char* device_name(Device device);
// Throws std::invalid_argument naming the accepted names.
Device device_from_name(const std::string& name);

// True when the cuda device can be used; otherwise *why_not says why
// ("built without CUDA", "no CUDA driver", "no GPU found", ...).
bool cuda_available(std::string* why_not = nullptr);

// Makes GPU `index` modulo the GPU count the current device of this process
// (before anything else touches CUDA); returns the chosen GPU. Throws without one.
int cuda_select_device(int index);

// The device whose allocation behaviour a meta dry run reproduces: library
// workspaces differ (the cpu GEMM's packing buffers vs cuBLAS's fixed workspace),
// everything else is the same policy. cpu or cuda; default cpu.
void set_meta_target(Device target);
Device meta_target();

// The GPU's memory in use as the driver reports it (total - free: gc's reserved
// segments, the CUDA context, cuBLAS's handle and any other process on the GPU)
// and its total. False, leaving both untouched, without a usable cuda device.
bool cuda_memory_in_use(int64_t* used_bytes, int64_t* total_bytes);

// The cuda device's name (cudaGetDeviceProperties; "cudasim" on the simulator),
// or "" without a usable cuda device.
std::string cuda_device_name();

// Raw copies between devices (sizes in bytes). meta on either side is an error.
void device_copy(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes);
void device_memset_zero(void* dst, Device device, size_t bytes);

}  // namespace gc
