// host_tensor.h: device tensors whose values are computed on the host (batches,
// normalization factors, loss weights). On the cpu the values are written in
// place; on other devices they are staged through a cpu tensor, so every byte,
// staging included, goes through an allocator and the device's allocator sees
// exactly one request, as on meta (where nothing is written).
#pragma once

#include <cstring>
#include <stdexcept>

#include "runtime/dtype.h"
#include "runtime/tensor.h"

namespace gc::data {

// Element writes into a host tensor, each double rounded once into its dtype.
class HostValues {
 public:
  explicit HostValues(Tensor& t) : data_(static_cast<unsigned char*>(t.data())), dtype_(t.dtype()), size_(t.numel()) {}
  class Ref {
   public:
    Ref(unsigned char* p, DType d) : p_(p), d_(d) {}
    Ref& operator=(double v) {
      switch (d_) {
        case DType::f32: { float x = static_cast<float>(v); std::memcpy(p_, &x, 4); break; }
        case DType::f64: std::memcpy(p_, &v, 8); break;
        case DType::bf16: { uint16_t x = f64_to_bf16(v); std::memcpy(p_, &x, 2); break; }
        case DType::f16: { uint16_t x = f64_to_f16(v); std::memcpy(p_, &x, 2); break; }
        default: throw std::logic_error("host_filled: float dtypes only");
      }
      return *this;
    }
   private:
    unsigned char* p_;
    DType d_;
  };
  Ref operator[](size_t i) { return Ref(data_ + i * dtype_size(dtype_), dtype_); }
  size_t size() const { return static_cast<size_t>(size_); }

 private:
  unsigned char* data_;
  DType dtype_;
  int64_t size_;
};

// A tensor of `shape` on `device` whose values fill(HostValues&) writes.
template <class Fill>
Tensor host_filled(const Shape& shape, DType dtype, Device device, Fill fill) {
  Tensor t = Tensor::empty(shape, dtype, device);
  if (device == Device::meta) return t;
  Tensor staging = device == Device::cpu ? t : Tensor::empty(shape, dtype, Device::cpu);
  HostValues values(staging);
  fill(values);
  if (device != Device::cpu) t.copy_from(staging);
  return t;
}

}  // namespace gc::data
