// tensor.cpp: storage ownership, views, copies and host-side element access.
#include "runtime/tensor.h"

#include <cstring>
#include <stdexcept>

#include "runtime/profile.h"

namespace gc {

std::string shape_string(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

Storage::Storage(Device device, size_t bytes) : device_(device), bytes_(bytes) {
  if (bytes > 0) block_ = allocator_for(device).allocate(bytes);
}

Storage::~Storage() {
  if (block_) allocator_for(device_).free(block_);
}

void* Storage::data() const {
  if (device_ == Device::meta)
    throw std::logic_error("meta tensors have no data (label '" + (block_ ? block_->label : std::string()) +
                           "'): this code path must not read values in a dry run");
  return block_ ? reinterpret_cast<void*>(block_->address) : nullptr;
}

namespace {
void check_shape(const Shape& shape) {
  if (shape.size() > 4) throw std::invalid_argument("tensors have at most 4 dims, got " + shape_string(shape));
  for (int64_t d : shape)
    if (d < 0) throw std::invalid_argument("negative dimension in shape " + shape_string(shape));
}
}  // namespace

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  check_shape(shape);
  Tensor t;
  t.shape_ = shape;
  t.dtype_ = dtype;
  t.device_ = device;
  t.storage_ = std::make_shared<Storage>(device, static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype));
  if (Block* b = t.storage_->block()) b->shape = std::string(dtype_name(dtype)) + shape_string(shape);
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  t.zero_();
  return t;
}

Tensor Tensor::from_host(const void* data, const Shape& shape, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  if (device == Device::meta) {  // the copy a real run makes, in the modelled cost
    const OpScope scope(OpFamily::copy_cast, "copy", device,
                        copy_cost(device, Device::cpu, static_cast<double>(t.nbytes())));
  } else if (t.nbytes() > 0) {
    device_copy(t.data(), device, data, Device::cpu, t.nbytes());
  }
  return t;
}

Tensor Tensor::from_doubles(const std::vector<double>& values, const Shape& shape, DType dtype, Device device) {
  if (static_cast<int64_t>(values.size()) != shape_numel(shape))
    throw std::invalid_argument("from_doubles: " + std::to_string(values.size()) + " values for shape " +
                                shape_string(shape));
  std::vector<unsigned char> host(values.size() * dtype_size(dtype));
  for (size_t i = 0; i < values.size(); ++i) {
    unsigned char* p = host.data() + i * dtype_size(dtype);
    switch (dtype) {
      case DType::f32: { float v = static_cast<float>(values[i]); std::memcpy(p, &v, 4); break; }
      case DType::f64: std::memcpy(p, &values[i], 8); break;
      case DType::bf16: { uint16_t v = f64_to_bf16(values[i]); std::memcpy(p, &v, 2); break; }
      case DType::f16: { uint16_t v = f64_to_f16(values[i]); std::memcpy(p, &v, 2); break; }
      case DType::i32: { int32_t v = static_cast<int32_t>(values[i]); std::memcpy(p, &v, 4); break; }
      case DType::i64: { int64_t v = static_cast<int64_t>(values[i]); std::memcpy(p, &v, 8); break; }
    }
  }
  return from_host(host.data(), shape, dtype, device);
}

int64_t Tensor::size(int64_t d) const {
  if (d < 0) d += dim();
  if (d < 0 || d >= dim()) throw std::out_of_range("dim " + std::to_string(d) + " of " + describe());
  return shape_[static_cast<size_t>(d)];
}

void* Tensor::data() const {
  if (!storage_) throw std::logic_error("data() of an undefined tensor");
  auto* base = static_cast<unsigned char*>(storage_->data());
  return base + offset_ * static_cast<int64_t>(dtype_size(dtype_));
}

Tensor Tensor::reshape(const Shape& shape) const {
  Shape s = shape;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      if (infer >= 0) throw std::invalid_argument("reshape: more than one -1 in " + shape_string(shape));
      infer = static_cast<int64_t>(i);
    } else {
      known *= s[i];
    }
  }
  if (infer >= 0 && known > 0) s[static_cast<size_t>(infer)] = numel() / known;
  check_shape(s);
  if (shape_numel(s) != numel())
    throw std::invalid_argument("reshape " + describe() + " to " + shape_string(shape) + ": element counts differ");
  Tensor t = *this;
  t.shape_ = s;
  return t;
}

Tensor Tensor::slice_rows(int64_t start, int64_t count) const {
  if (dim() < 1 || start < 0 || count < 0 || start + count > shape_[0])
    throw std::out_of_range("slice_rows(" + std::to_string(start) + ", " + std::to_string(count) + ") of " +
                            describe());
  Tensor t = *this;
  t.shape_[0] = count;
  t.offset_ = offset_ + start * cols();
  return t;
}

Tensor Tensor::to(Device device) const {
  Tensor t = empty(shape_, dtype_, device);
  t.copy_from(*this);
  return t;
}

Tensor Tensor::clone() const { return to(device_); }

void Tensor::copy_from(const Tensor& source) {
  if (source.shape_ != shape_ || source.dtype_ != dtype_)
    throw std::invalid_argument("copy_from: " + source.describe() + " into " + describe());
  if (device_ == Device::meta || source.device_ == Device::meta) {
    if (device_ != source.device_)
      throw std::logic_error("copy between meta and " +
                             std::string(device_name(device_ == Device::meta ? source.device_ : device_)) +
                             ": meta tensors have no data");
    const OpScope scope(OpFamily::copy_cast, "copy", device_,
                        copy_cost(device_, device_, static_cast<double>(nbytes())));
    return;
  }
  if (nbytes() > 0) device_copy(data(), device_, source.data(), source.device_, nbytes());
}

void Tensor::zero_() {
  if (nbytes() == 0) return;
  if (device_ == Device::meta) {
    const OpScope scope(OpFamily::copy_cast, "zero", device_, zero_fill_cost(static_cast<double>(nbytes())));
    return;
  }
  device_memset_zero(data(), device_, nbytes());
}

std::vector<double> Tensor::to_doubles() const {
  if (device_ == Device::meta) throw std::logic_error("to_doubles of " + describe() + ": meta tensors have no data");
  std::vector<unsigned char> host(nbytes());
  if (!host.empty()) device_copy(host.data(), Device::cpu, data(), device_, nbytes());
  std::vector<double> out(static_cast<size_t>(numel()));
  for (size_t i = 0; i < out.size(); ++i) {
    const unsigned char* p = host.data() + i * dtype_size(dtype_);
    switch (dtype_) {
      case DType::f32: { float v; std::memcpy(&v, p, 4); out[i] = v; break; }
      case DType::f64: std::memcpy(&out[i], p, 8); break;
      case DType::bf16: { uint16_t v; std::memcpy(&v, p, 2); out[i] = bf16_to_f32(v); break; }
      case DType::f16: { uint16_t v; std::memcpy(&v, p, 2); out[i] = f16_to_f32(v); break; }
      case DType::i32: { int32_t v; std::memcpy(&v, p, 4); out[i] = v; break; }
      case DType::i64: { int64_t v; std::memcpy(&v, p, 8); out[i] = static_cast<double>(v); break; }
    }
  }
  return out;
}

double Tensor::item(int64_t flat_index) const {
  if (flat_index < 0 || flat_index >= numel()) throw std::out_of_range("item " + std::to_string(flat_index) + " of " + describe());
  if (device_ == Device::meta) throw std::logic_error("item of " + describe() + ": meta tensors have no data");
  const size_t es = dtype_size(dtype_);
  unsigned char buf[8];
  device_copy(buf, Device::cpu, static_cast<const unsigned char*>(data()) + flat_index * static_cast<int64_t>(es),
              device_, es);
  switch (dtype_) {
    case DType::f32: { float v; std::memcpy(&v, buf, 4); return v; }
    case DType::f64: { double v; std::memcpy(&v, buf, 8); return v; }
    case DType::bf16: { uint16_t v; std::memcpy(&v, buf, 2); return bf16_to_f32(v); }
    case DType::f16: { uint16_t v; std::memcpy(&v, buf, 2); return f16_to_f32(v); }
    case DType::i32: { int32_t v; std::memcpy(&v, buf, 4); return v; }
    case DType::i64: { int64_t v; std::memcpy(&v, buf, 8); return static_cast<double>(v); }
  }
  return 0;
}

void Tensor::recategorize(Category category, const std::string& label) const {
  if (storage_ && storage_->block()) allocator_for(device_).recategorize(storage_->block(), category, label);
}

std::string Tensor::describe() const {
  if (!defined()) return "undefined tensor";
  return std::string(dtype_name(dtype_)) + shape_string(shape_) + " on " + device_name(device_);
}

}  // namespace gc
