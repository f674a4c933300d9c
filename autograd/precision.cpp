// precision.cpp: the per-step cache of compute-dtype weight copies.
#include "autograd/precision.h"

#include <map>
#include <utility>

#include "kernels/elementwise.h"

namespace gc {

namespace {
// Each entry holds its parameter's slot alive, so the key's address cannot be
// reused by another parameter while the entry exists.
struct CachedCopy {
  std::shared_ptr<GradSlot> slot;
  Tensor copy;
};
std::map<std::pair<const GradSlot*, DType>, CachedCopy>& cache() {
  static std::map<std::pair<const GradSlot*, DType>, CachedCopy> instance;
  return instance;
}
}  // namespace

Tensor compute_copy(const Var& param, DType dtype) {
  if (param.dtype() == dtype) return param.value();
  auto key = std::make_pair(param.slot().get(), dtype);
  auto it = cache().find(key);
  if (it != cache().end()) return it->second.copy;
  MemoryScope category(Category::parameter);
  LabelOverride label((param.name().empty() ? std::string("weight") : param.name()) + "." + dtype_name(dtype));
  Tensor copy = Tensor::empty(param.shape(), dtype, param.device());
  kernels::cast(copy, param.value());
  cache().emplace(key, CachedCopy{param.slot(), copy});
  return copy;
}

void release_compute_copies() { cache().clear(); }

}  // namespace gc
