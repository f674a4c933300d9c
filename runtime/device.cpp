// device.cpp: device names and the host-side copy/memset; cuda paths are in
// cuda_device.cpp when built with CUDA (GC_CUDA), and refuse clearly otherwise.
#include "runtime/device.h"

#include <cstring>
#include <stdexcept>

#include "runtime/profile.h"

namespace gc {

const char* device_name(Device device) {
  switch (device) {
    case Device::cpu: return "cpu";
    case Device::cuda: return "cuda";
    case Device::meta: return "meta";
  }
  return "?";
}

Device device_from_name(const std::string& name) {
  if (name == "cpu") return Device::cpu;
  if (name == "cuda") return Device::cuda;
  if (name == "meta") return Device::meta;
  throw std::invalid_argument("unknown device '" + name + "' (expected cpu, cuda or meta)");
}

namespace {
Device g_meta_target = Device::cpu;
}

void set_meta_target(Device target) {
  if (target == Device::meta) throw std::invalid_argument("the meta device cannot model itself: cpu or cuda");
  g_meta_target = target;
}
Device meta_target() { return g_meta_target; }

#ifdef GC_CUDA
void cuda_copy(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes);
void cuda_memset_zero(void* dst, size_t bytes);
#endif

void device_copy(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes) {
  if (dst_device == Device::meta || src_device == Device::meta)
    throw std::logic_error("device_copy: meta tensors have no data");
  const OpScope scope(OpFamily::copy_cast, "copy", dst_device == Device::cpu ? src_device : dst_device,
                      copy_cost(dst_device, src_device, static_cast<double>(bytes)));
  if (dst_device == Device::cpu && src_device == Device::cpu) {
    if (bytes) std::memmove(dst, src, bytes);
    return;
  }
#ifdef GC_CUDA
  cuda_copy(dst, dst_device, src, src_device, bytes);
#else
  throw std::runtime_error("cuda device unavailable: built without CUDA");
#endif
}

void device_memset_zero(void* dst, Device device, size_t bytes) {
  if (device == Device::meta) return;
  const OpScope scope(OpFamily::copy_cast, "zero", device, zero_fill_cost(static_cast<double>(bytes)));
  if (device == Device::cpu) {
    std::memset(dst, 0, bytes);
    return;
  }
#ifdef GC_CUDA
  cuda_memset_zero(dst, bytes);
#else
  throw std::runtime_error("cuda device unavailable: built without CUDA");
#endif
}

}  // namespace gc
