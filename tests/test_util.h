// test_util.h: what every op test shares: the one tolerance formula with its
// per-dtype table, seeded random tensors that are never all zero, and a
// central finite-difference helper in f64.
//
//   |got - ref| <= atol + eps_dtype * rtol_scale * |ref|
// eps_dtype: f32 FLT_EPSILON, f16 2^-10, bf16 2^-7, f64 DBL_EPSILON (dtype_epsilon()).
//
// Also: reading back files a test made its code write, and the tiny GraphCast
// that the model tests run end to end (model/test_graphcast.cpp on cpu and meta,
// kernels/test_cuda_ops.cpp on cuda against cpu).
#pragma once

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <gtest/gtest.h>
#include <memory>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <unistd.h>

#include "autograd/ops.h"
#include "autograd/precision.h"
#include "model/graphcast.h"
#include "runtime/device.h"
#include "runtime/memory_scope.h"
#include "runtime/tensor.h"

namespace gc::test {

// Tolerance for comparing a result computed in `dtype` storage against an f64
// (or f32) reference. `ops` is a rough count of rounding steps per output (the
// reduction length of a dot product, for instance); error grows like sqrt(ops).
struct Tolerance {
  double atol;
  double rtol;
};
inline Tolerance tolerance_for(DType dtype, double ops = 1.0) {
  const double eps = dtype_epsilon(dtype);
  const double growth = std::sqrt(std::max(1.0, ops));
  // Storage rounding of inputs and output costs ~2 eps; accumulation in f32 adds
  // FLT_EPSILON * growth.
  const double rtol = 4.0 * eps + 4.0 * FLT_EPSILON * growth;
  return {rtol, rtol};
}

namespace detail {
// |got - ref| <= atol + rtol * max(|ref|, term_scale) per element (term_scale: none, or
// one per element); the failure message names the first and the worst element.
inline ::testing::AssertionResult compare(const std::vector<double>& got, const std::vector<double>& ref,
                                          const std::vector<double>* term_scale, Tolerance tol,
                                          const std::string& what) {
  if (got.size() != ref.size() || (term_scale && term_scale->size() != ref.size()))
    return ::testing::AssertionFailure() << what << ": sizes differ " << got.size() << " vs " << ref.size();
  size_t bad = 0, first = 0;
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double err = std::fabs(got[i] - ref[i]);
    const double scale = term_scale ? std::max(std::fabs(ref[i]), (*term_scale)[i]) : std::fabs(ref[i]);
    const double bound = tol.atol + tol.rtol * scale;
    if (!(err <= bound)) {
      if (bad == 0) first = i;
      ++bad;
      worst = std::max(worst, err / bound);
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  auto failure = ::testing::AssertionFailure();
  failure << what << ": " << bad << " of " << got.size() << " elements out of tolerance (atol " << tol.atol
          << ", rtol " << tol.rtol << (term_scale ? ", relative to max(|ref|, term scale)" : "") << "); first at "
          << first << ": got " << got[first] << ", ref " << ref[first];
  if (term_scale) failure << ", term scale " << (*term_scale)[first];
  return failure << "; worst error/bound " << worst;
}
}  // namespace detail

inline ::testing::AssertionResult all_close(const std::vector<double>& got, const std::vector<double>& ref,
                                            Tolerance tol, const std::string& what = "") {
  return detail::compare(got, ref, nullptr, tol, what);
}

// For outputs that are long sums (dot products over many rows): rounding in any
// summation order is proportional to the partial sums, not to the final value,
// which cancellation can make arbitrarily small; so the error of element i is
// bounded relative to max(|ref[i]|, term_scale[i]), term_scale being the
// root-sum-square of the terms summed into that element (the size a partial sum
// typically reaches). Where there is no cancellation, this is all_close.
inline ::testing::AssertionResult all_close_sum(const std::vector<double>& got, const std::vector<double>& ref,
                                                const std::vector<double>& term_scale, Tolerance tol,
                                                const std::string& what = "") {
  return detail::compare(got, ref, &term_scale, tol, what);
}

// Uniform values in [-scale, scale], never all zero, seeded.
inline std::vector<double> random_values(size_t n, uint64_t seed, double scale = 1.0) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> dist(-scale, scale);
  std::vector<double> v(n);
  for (auto& x : v) x = dist(rng);
  if (n > 0) v[0] = scale * 0.75;  // guarantees a non-zero element
  return v;
}

inline Tensor random_tensor(const Shape& shape, DType dtype, uint64_t seed, double scale = 1.0,
                            Device device = Device::cpu) {
  return Tensor::from_doubles(random_values(static_cast<size_t>(shape_numel(shape)), seed, scale), shape, dtype,
                              device);
}

// Values of `values` rounded through `dtype` (what a tensor of that dtype holds).
inline std::vector<double> rounded_through(const std::vector<double>& values, DType dtype) {
  return Tensor::from_doubles(values, {static_cast<int64_t>(values.size())}, dtype).to_doubles();
}

// Central finite difference of a scalar function of one f64 tensor's elements,
// at up to `max_elements` evenly spaced elements. Returns {index, derivative}.
inline std::vector<std::pair<int64_t, double>> finite_difference(Tensor& x, const std::function<double()>& f,
                                                                 int64_t max_elements = 64, double h = 1e-6) {
  std::vector<std::pair<int64_t, double>> out;
  const int64_t n = x.numel();
  const int64_t stride = std::max<int64_t>(1, n / max_elements);
  double* data = x.data_as<double>();
  for (int64_t i = 0; i < n; i += stride) {
    const double saved = data[i];
    data[i] = saved + h;
    const double fp = f();
    data[i] = saved - h;
    const double fm = f();
    data[i] = saved;
    out.push_back({i, (fp - fm) / (2 * h)});
  }
  return out;
}

// Checks an analytic gradient against finite differences in f64.
inline ::testing::AssertionResult gradient_matches(const Tensor& analytic, Tensor& x,
                                                   const std::function<double()>& f, const std::string& what,
                                                   int64_t max_elements = 64) {
  auto fd = finite_difference(x, f, max_elements);
  std::vector<double> a = analytic.to_doubles();
  for (auto& [i, d] : fd) {
    const double err = std::fabs(a[static_cast<size_t>(i)] - d);
    if (err > 1e-6 + 1e-5 * std::fabs(d))
      return ::testing::AssertionFailure() << what << ": gradient at " << i << " is " << a[static_cast<size_t>(i)]
                                           << ", finite difference " << d;
  }
  return ::testing::AssertionSuccess();
}

inline const char* dtype_param_name(DType d) { return dtype_name(d); }

// Restores the meta device's target (what a dry run stands for) whatever a test does.
class MetaTargetGuard {
 public:
  explicit MetaTargetGuard(Device target) : saved_(meta_target()) { set_meta_target(target); }
  ~MetaTargetGuard() { set_meta_target(saved_); }
  MetaTargetGuard(const MetaTargetGuard&) = delete;
  MetaTargetGuard& operator=(const MetaTargetGuard&) = delete;

 private:
  Device saved_;
};

// ---- files --------------------------------------------------------------

// The whole file as bytes; empty when it cannot be opened.
inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Whether the file starts with the 8-byte PNG signature and has more after it.
inline bool has_png_signature(const std::string& path) {
  static const std::string kPngSignature("\x89PNG\r\n\x1a\n", 8);
  const std::string bytes = read_file(path);
  return bytes.size() > kPngSignature.size() && bytes.compare(0, kPngSignature.size(), kPngSignature) == 0;
}

// A folder for a test's files under the system's temporary folder: one root
// per test program run, removed with everything in it when the program exits,
// so a run leaves nothing behind.
inline const std::string& scratch_root() {
  // Never destroyed: the exit handler below runs after the statics are gone.
  static const std::string* root = [] {
    std::string pattern = (std::filesystem::temp_directory_path() / "gc_tests.XXXXXX").string();
    if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp " + pattern + " failed");
    std::atexit([] {
      std::error_code ignored;
      std::filesystem::remove_all(scratch_root(), ignored);
    });
    return new std::string(pattern);
  }();
  return *root;
}

// An empty folder `name` under scratch_root().
inline std::string scratch_folder(const std::string& name) {
  const std::string path = scratch_root() + "/" + name;
  std::error_code ignored;
  std::filesystem::remove_all(path, ignored);
  std::filesystem::create_directories(path);
  return path;
}

// ---- the tiny GraphCast ----------------------------------------------------

// Latent width of the tiny model unless a test asks for another.
constexpr int kTinyLatent = 8;

// 2 processor layers on the level-1 mesh; 5 inputs (2 data channels + the 3
// structural ones) and 2 outputs.
inline model::GraphCastConfig tiny_graphcast_config(DType dtype, int latent = kTinyLatent) {
  model::GraphCastConfig c;
  c.latent = latent;
  c.layers = 2;
  c.mesh_level = 1;
  c.in_channels = 5;
  c.out_channels = 2;
  c.compute_dtype = dtype;
  return c;
}

// The graphs of the tiny model: a 30-degree grid and the level-1 mesh, built once.
inline const model::GraphCastGeometry& tiny_graphcast_geometry() {
  static const model::GraphCastGeometry geometry = model::build_geometry(model::make_equiangular_grid(30.0), 1);
  return geometry;
}

// Seeds of the tiny model's input and probe values.
constexpr uint64_t kTinyInputSeed = 11, kTinyProbeSeed = 12;

// The tiny model on one device with its graphs, input and probe (allocated as
// inputs; on meta they have shapes and no values). Meta stands for whatever
// meta_target() says: set it before building one on meta.
struct TinyGraphCast {
  model::GraphCastConfig config;
  std::unique_ptr<model::GraphCastNet> net;
  model::DeviceGeometry geometry;
  Tensor input, probe;

  TinyGraphCast(const model::GraphCastConfig& c, Device device, uint64_t seed = 3) : config(c) {
    net = std::make_unique<model::GraphCastNet>(c, device, seed);
    geometry = model::upload_geometry(tiny_graphcast_geometry(), c, device);
    const int64_t rows = tiny_graphcast_geometry().num_grid_nodes() * c.batch;
    const Shape input_shape{rows, c.in_channels - 3}, probe_shape{rows, c.out_channels};
    MemoryScope scope(Category::input);
    if (device == Device::meta) {
      input = Tensor::empty(input_shape, c.compute_dtype, device);
      probe = Tensor::empty(probe_shape, net->master_dtype(), device);
    } else {
      input = random_tensor(input_shape, c.compute_dtype, kTinyInputSeed, 1.0, device);
      probe = random_tensor(probe_shape, net->master_dtype(), kTinyProbeSeed, 1.0, device);
    }
  }

  // The compute-dtype weight copies a bf16/f16 forward made live in a global
  // per-step cache (the trainer empties it every step); without this they, and the
  // gradients their slots hold, would outlive the model and sit in the next test's
  // allocator figures.
  ~TinyGraphCast() { release_compute_copies(); }

  // sum(forward(input) * probe) under a rematerialization plan.
  Var loss(const std::vector<model::StagePlan>& plan = {}) {
    return sum_all(mul(net->forward(Var(input), geometry, plan), Var(probe)));
  }
};

}  // namespace gc::test
