// gc_bench: micro-benchmarks of gc's kernels, one subcommand each.
//
//   ./gc_bench --help                 lists the subcommands
//   ./gc_bench gemm [--json] [...]    GFLOP/s of the cpu GEMM on GraphCast's shapes
//
// Every buffer, the GEMM's workspace included, is a Tensor, so even the benchmark
// goes through the caching allocator. Timings are the best of several runs after
// a warm-up; other processes on the machine lower them (check `uptime` first).
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/linear.h"
#include "runtime/tensor.h"

namespace gc {
namespace {

// ---- gemm -------------------------------------------------------------------------
struct GemmShape {
  const char* op;  // where GraphCast meets it
  int64_t m, k, n;
  bool transpose_a, transpose_b;
  DType input_dtype, output_dtype;
};

// Forward y = x W ([m, k] x [k, n]); grad_x = grad_y W^T ([m, n_out] x [n_out, k_in]
// with W stored [k_in, n_out]); grad_W = x^T grad_y (a reduction over the m rows).
const GemmShape kGemmShapes[] = {
    {"forward", 65536, 512, 512, false, false, DType::f32, DType::f32},
    {"forward", 65536, 512, 512, false, false, DType::bf16, DType::bf16},
    {"forward", 65536, 4, 512, false, false, DType::f32, DType::f32},
    {"forward", 65536, 1536, 512, false, false, DType::f32, DType::f32},
    {"forward", 65536, 1536, 512, false, false, DType::bf16, DType::bf16},
    {"forward", 65536, 512, 227, false, false, DType::f32, DType::f32},
    {"forward", 262144, 512, 512, false, false, DType::f32, DType::f32},
    {"grad_x", 65536, 512, 512, false, true, DType::f32, DType::f32},
    {"grad_x", 65536, 512, 1536, false, true, DType::f32, DType::f32},
    {"grad_x", 65536, 512, 512, false, true, DType::bf16, DType::bf16},
    {"grad_W", 512, 65536, 512, true, false, DType::f32, DType::f32},
    {"grad_W", 1536, 65536, 512, true, false, DType::f32, DType::f32},
    {"grad_W", 512, 65536, 227, true, false, DType::f32, DType::f32},
    {"grad_W", 512, 65536, 512, true, false, DType::bf16, DType::f32},
};

// Fills a tensor with values in [-1, 1) from a fixed linear congruential sequence.
void fill_uniform(Tensor& t, uint64_t seed) {
  uint64_t state = seed * 6364136223846793005ull + 1442695040888963407ull;
  const int64_t count = t.numel();
  const DType dtype = t.dtype();
  if (dtype != DType::f32 && dtype != DType::bf16 && dtype != DType::f16)
    throw std::invalid_argument("fill_uniform: unsupported dtype");
  float* f32 = dtype == DType::f32 ? t.data_as<float>() : nullptr;
  uint16_t* half = dtype == DType::f32 ? nullptr : t.data_as<uint16_t>();
  for (int64_t i = 0; i < count; ++i) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    const float value = static_cast<float>(static_cast<int64_t>(state >> 40) - (int64_t(1) << 23)) / float(1 << 23);
    if (f32) f32[i] = value;
    else half[i] = dtype == DType::bf16 ? f32_to_bf16(value) : f32_to_f16(value);
  }
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void print_gemm_usage(std::FILE* out) {
  std::fprintf(out,
      "usage: gc_bench gemm [--json] [--repeats N] [--threads N] [--op NAME] [--dtype NAME]\n"
      "  GFLOP/s (2*m*n*k / best time) of the cpu GEMM, C[m,n] = op(A)[m,k] op(B)[k,n], on\n"
      "  GraphCast's shapes: forward x W, grad_x = grad_y W^T, grad_W = x^T grad_y.\n"
      "  --json        one JSON object per line (keys op, m, k, n, trans_a, trans_b, dtype,\n"
      "                out_dtype, threads, ms, gflops) instead of a table\n"
      "  --repeats N   timed runs per shape after one warm-up; the best counts (default 5)\n"
      "  --threads N   OpenMP threads (default: OMP_NUM_THREADS or all cores)\n"
      "  --op NAME     only the shapes of forward, grad_x or grad_W\n"
      "  --dtype NAME  only the shapes whose inputs are f32 or bf16\n");
}

int run_gemm(int argc, char** argv) {
  bool json = false;
  int repeats = 5;
  std::string only_op, only_dtype;
  for (int i = 0; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--json") {
      json = true;
    } else if ((arg == "--repeats" || arg == "--threads") && i + 1 < argc) {
      const int value = std::atoi(argv[++i]);
      if (value < 1) {
        std::fprintf(stderr, "gc_bench gemm: %s needs a positive integer, got '%s'\n", arg.c_str(), argv[i]);
        return 2;
      }
      if (arg == "--repeats") repeats = value;
      else omp_set_num_threads(value);
    } else if (arg == "--op" && i + 1 < argc) {
      only_op = argv[++i];
    } else if (arg == "--dtype" && i + 1 < argc) {
      only_dtype = argv[++i];
    } else if (arg == "--help" || arg == "-h") {
      print_gemm_usage(stdout);
      return 0;
    } else {
      std::fprintf(stderr, "gc_bench gemm: unknown option '%s'\n", arg.c_str());
      print_gemm_usage(stderr);
      return 2;
    }
  }
  if (!json)
    std::printf("cpu GEMM, %d threads, best of %d after a warm-up\n%-8s %7s %6s %5s %-5s %-11s %9s %9s\n",
                omp_get_max_threads(), repeats, "op", "m", "k", "n", "op(A)", "dtype", "ms", "GFLOP/s");
  for (const GemmShape& s : kGemmShapes) {
    if ((!only_op.empty() && only_op != s.op) || (!only_dtype.empty() && only_dtype != dtype_name(s.input_dtype)))
      continue;
    Tensor a = Tensor::empty(s.transpose_a ? Shape{s.k, s.m} : Shape{s.m, s.k}, s.input_dtype);
    Tensor b = Tensor::empty(s.transpose_b ? Shape{s.n, s.k} : Shape{s.k, s.n}, s.input_dtype);
    Tensor c = Tensor::zeros({s.m, s.n}, s.output_dtype);
    fill_uniform(a, 1);
    fill_uniform(b, 2);
    const size_t workspace_bytes = kernels::gemm_workspace_bytes(Device::cpu, s.m, s.n, s.k);
    Tensor workspace = Tensor::empty({static_cast<int64_t>((workspace_bytes + 3) / 4)}, DType::i32);
    double best_s = 1e30;
    for (int run = 0; run <= repeats; ++run) {  // run 0 is the warm-up
      const auto start = std::chrono::steady_clock::now();
      kernels::matmul(c, a, s.transpose_a, b, s.transpose_b, 0.0, workspace);
      if (run > 0) best_s = std::min(best_s, seconds_since(start));
    }
    const double gflops = 2.0 * s.m * s.n * s.k / best_s * 1e-9;
    const std::string trans = std::string(s.transpose_a ? "T" : "N") + (s.transpose_b ? "T" : "N");
    const std::string dtypes = std::string(dtype_name(s.input_dtype)) + "->" + dtype_name(s.output_dtype);
    if (json)
      std::printf(
          "{\"op\": \"%s\", \"m\": %lld, \"k\": %lld, \"n\": %lld, \"trans_a\": %s, \"trans_b\": %s, \"dtype\": "
          "\"%s\", \"out_dtype\": \"%s\", \"threads\": %d, \"ms\": %.3f, \"gflops\": %.1f}\n",
          s.op, static_cast<long long>(s.m), static_cast<long long>(s.k), static_cast<long long>(s.n),
          s.transpose_a ? "true" : "false", s.transpose_b ? "true" : "false", dtype_name(s.input_dtype),
          dtype_name(s.output_dtype), omp_get_max_threads(), best_s * 1e3, gflops);
    else
      std::printf("%-8s %7lld %6lld %5lld %-5s %-11s %9.2f %9.1f\n", s.op, static_cast<long long>(s.m),
                  static_cast<long long>(s.k), static_cast<long long>(s.n), trans.c_str(), dtypes.c_str(),
                  best_s * 1e3, gflops);
    std::fflush(stdout);
  }
  return 0;
}

// ---- subcommands ------------------------------------------------------------------------
struct Subcommand {
  const char* name;
  const char* summary;
  int (*run)(int argc, char** argv);  // arguments after the subcommand's name
};

const Subcommand kSubcommands[] = {
    {"gemm", "GFLOP/s of the cpu GEMM on GraphCast's shapes (forward, grad_x, grad_W)", run_gemm},
};

void print_usage(std::FILE* out) {
  std::fprintf(out, "usage: gc_bench <subcommand> [options]   (gc_bench <subcommand> --help for its options)\n");
  std::fprintf(out, "subcommands:\n");
  for (const Subcommand& s : kSubcommands) std::fprintf(out, "  %-10s %s\n", s.name, s.summary);
}

}  // namespace
}  // namespace gc

int main(int argc, char** argv) {
  if (argc < 2) {
    gc::print_usage(stderr);
    return 2;
  }
  const std::string name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") {
    gc::print_usage(stdout);
    return 0;
  }
  for (const gc::Subcommand& s : gc::kSubcommands)
    if (name == s.name) {
      try {
        return s.run(argc - 2, argv + 2);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "gc_bench %s: %s\n", s.name, e.what());
        return 1;
      }
    }
  std::fprintf(stderr, "gc_bench: unknown subcommand '%s'\n", name.c_str());
  gc::print_usage(stderr);
  return 2;
}
