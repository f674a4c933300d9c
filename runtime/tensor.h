// tensor.h: contiguous row-major tensors (up to 4 dims) over refcounted storage.
//
// A Tensor is a cheap handle: copying it shares the storage. Views (reshape,
// row ranges) share storage with an element offset. Storage bytes always come
// from the device's CachingAllocator under the MemoryScope current at creation;
// a meta tensor has a block (so its bytes are accounted) but no data, and any
// read of its data throws.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "runtime/allocator.h"
#include "runtime/dtype.h"

namespace gc {

using Shape = std::vector<int64_t>;
std::string shape_string(const Shape& shape);  // "[3, 4]"
int64_t shape_numel(const Shape& shape);

class Storage {
 public:
  Storage(Device device, size_t bytes);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  Device device() const { return device_; }
  size_t bytes() const { return bytes_; }
  Block* block() const { return block_; }
  // Raw pointer (device pointer on cuda); throws on meta.
  void* data() const;

  // What kernels::check_graph_index / check_graph_offsets verified of the
  // values, once (graph tensors, never written after their upload): the graph
  // ops then skip their per-call checks (and the read-back each costs on cuda).
  // index_bound >= 0: every i32 value is in [0, index_bound). offsets_edges >= 0:
  // the i32 elements [offsets_start, offsets_start + offsets_count) run from 0 to
  // offsets_edges, non-decreasing.
  struct Checked {
    int64_t index_bound = -1;
    int64_t offsets_start = -1, offsets_count = -1, offsets_edges = -1;
  };
  Checked& checked() const { return checked_; }

 private:
  Device device_;
  size_t bytes_;
  Block* block_ = nullptr;  // null for zero bytes
  mutable Checked checked_;
};

class Tensor {
 public:
  Tensor() = default;

  static Tensor empty(const Shape& shape, DType dtype, Device device = Device::cpu);
  static Tensor zeros(const Shape& shape, DType dtype, Device device = Device::cpu);
  // Copies host data given in `dtype`'s storage format.
  static Tensor from_host(const void* data, const Shape& shape, DType dtype, Device device = Device::cpu);
  // Converts doubles to `dtype` (rounding to nearest for the 16-bit floats).
  static Tensor from_doubles(const std::vector<double>& values, const Shape& shape, DType dtype,
                             Device device = Device::cpu);

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  int64_t dim() const { return static_cast<int64_t>(shape_.size()); }
  int64_t size(int64_t d) const;  // negative d counts from the end
  int64_t numel() const { return shape_numel(shape_); }
  int64_t rows() const { return shape_.empty() ? 1 : shape_[0]; }
  int64_t cols() const {  // product of the trailing dims
    int64_t n = 1;
    for (size_t i = 1; i < shape_.size(); ++i) n *= shape_[i];
    return n;
  }
  DType dtype() const { return dtype_; }
  Device device() const { return device_; }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }
  bool is_meta() const { return device_ == Device::meta; }
  const std::shared_ptr<Storage>& storage() const { return storage_; }
  int64_t offset() const { return offset_; }

  // Data pointer at the tensor's offset; throws on meta ("meta tensors have no data").
  void* data() const;
  template <class T>
  T* data_as() const {
    return static_cast<T*>(data());
  }

  // Same storage, new shape with the same number of elements (-1 infers one dim).
  Tensor reshape(const Shape& shape) const;
  // Rows [start, start + count) along dim 0, sharing storage.
  Tensor slice_rows(int64_t start, int64_t count) const;

  // New tensors (allocated under the current MemoryScope).
  Tensor to(Device device) const;
  Tensor clone() const;
  void copy_from(const Tensor& source);  // same shape and dtype, any devices
  void zero_();

  // Element access through doubles, for tests and small host-side work.
  std::vector<double> to_doubles() const;  // copies through the host if needed
  double item(int64_t flat_index = 0) const;

  // Moves the storage block to another category and label (e.g. saved for backward).
  void recategorize(Category category, const std::string& label) const;

  std::string describe() const;  // "f32[3, 4] on cpu"

 private:
  std::shared_ptr<Storage> storage_;
  int64_t offset_ = 0;  // elements
  Shape shape_;
  DType dtype_ = DType::f32;
  Device device_ = Device::cpu;
};

}  // namespace gc
