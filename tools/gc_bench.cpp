// gc_bench: micro-benchmarks of gc's kernels, one subcommand each.
//
//   ./gc_bench --help                 lists the subcommands
//   ./gc_bench gemm [--json] [...]    GFLOP/s of the GEMM (cpu or cuda) on GraphCast's shapes
//   ./gc_bench step [gc_train flags]  a training step's time by op family and module
//   ./gc_bench device                 the cuda device: name, memory (cudaMemGetInfo), card
//   ./gc_bench large [--elements N]   a bf16 add and cast over 2^31 + 1 elements (64-bit indexing)
//
// Every buffer, the GEMM's workspace included, is a Tensor, so even the benchmark
// goes through the caching allocator. Timings are the best of several runs after
// a warm-up; other processes on the machine lower them (check `uptime` first).
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/elementwise.h"
#include "kernels/linear.h"
#include "runtime/profile.h"
#include "runtime/tensor.h"
#include "tools/io/json.h"
#include "tools/memory/cards.h"
#include "tools/memory/memory_report.h"
#include "tools/memory/time_report.h"
#include "tools/train/options.h"
#include "tools/train/setup.h"
#include "tools/train/trainer.h"

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
      "                     [--device cpu|cuda] [--linear M,K,N ...]\n"
      "  GFLOP/s (2*m*n*k / best time) of the GEMM, C[m,n] = op(A)[m,k] op(B)[k,n], on\n"
      "  GraphCast's shapes: forward x W, grad_x = grad_y W^T, grad_W = x^T grad_y.\n"
      "  --json        one JSON object per line (keys op, m, k, n, trans_a, trans_b, dtype,\n"
      "                out_dtype, device, threads, ms, gflops) instead of a table\n"
      "  --repeats N   timed runs per shape after one warm-up; the best counts (default 5)\n"
      "  --threads N   OpenMP threads (default: OMP_NUM_THREADS or all cores)\n"
      "  --op NAME     only the shapes of forward, grad_x or grad_W\n"
      "  --dtype NAME  only the shapes whose inputs are f32 or bf16\n"
      "  --device D    cpu (default) or cuda (cuBLAS; each run waits for the device)\n"
      "  --linear M,K,N  instead of the built-in shapes, the three products of a linear\n"
      "                layer of K inputs and N outputs over M rows, in f32 and bf16 (repeat\n"
      "                the flag for several layers; e.g. 1038240,477,512 against\n"
      "                1038240,480,512: what a width that is not a multiple of 8 costs)\n");
}

// "M,K,N" of --linear: three positive integers.
std::vector<GemmShape> linear_shapes(const std::string& text) {
  long long m = 0, k = 0, n = 0;
  char tail = 0;
  if (std::sscanf(text.c_str(), "%lld,%lld,%lld%c", &m, &k, &n, &tail) != 3 || m < 1 || k < 1 || n < 1)
    throw UsageError("--linear needs M,K,N (three positive integers), got '" + text + "'");
  std::vector<GemmShape> shapes;
  for (DType dtype : {DType::f32, DType::bf16}) {
    shapes.push_back({"forward", m, k, n, false, false, dtype, dtype});
    shapes.push_back({"grad_x", m, n, k, false, true, dtype, dtype});
    shapes.push_back({"grad_W", k, m, n, true, false, dtype, DType::f32});
  }
  return shapes;
}

int run_gemm(int argc, char** argv) {
  bool json = false;
  int repeats = 5;
  std::string only_op, only_dtype;
  Device device = Device::cpu;
  std::vector<GemmShape> shapes;
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
    } else if (arg == "--device" && i + 1 < argc) {
      const std::string name = argv[++i];
      if (name != "cpu" && name != "cuda") throw UsageError("--device must be cpu or cuda, got '" + name + "'");
      device = device_from_name(name);
    } else if (arg == "--linear" && i + 1 < argc) {
      for (const GemmShape& shape : linear_shapes(argv[++i])) shapes.push_back(shape);
    } else if (arg == "--help" || arg == "-h") {
      print_gemm_usage(stdout);
      return 0;
    } else {
      std::fprintf(stderr, "gc_bench gemm: unknown option '%s'\n", arg.c_str());
      print_gemm_usage(stderr);
      return 2;
    }
  }
  if (device == Device::cuda) {
    std::string why;
    if (!cuda_available(&why)) {
      std::fprintf(stderr, "gc_bench gemm: --device cuda: %s\n", why.c_str());
      return 1;
    }
  }
  if (shapes.empty()) shapes.assign(std::begin(kGemmShapes), std::end(kGemmShapes));
  if (!json) {
    if (device == Device::cpu)
      std::printf("cpu GEMM, %d threads, best of %d after a warm-up\n", omp_get_max_threads(), repeats);
    else
      std::printf("cuda GEMM (cuBLAS), best of %d after a warm-up\n", repeats);
    std::printf("%-8s %7s %6s %5s %-5s %-11s %9s %9s\n", "op", "m", "k", "n", "op(A)", "dtype", "ms", "GFLOP/s");
  }
  for (const GemmShape& s : shapes) {
    if ((!only_op.empty() && only_op != s.op) || (!only_dtype.empty() && only_dtype != dtype_name(s.input_dtype)))
      continue;
    Tensor a = Tensor::empty(s.transpose_a ? Shape{s.k, s.m} : Shape{s.m, s.k}, s.input_dtype);
    Tensor b = Tensor::empty(s.transpose_b ? Shape{s.n, s.k} : Shape{s.k, s.n}, s.input_dtype);
    fill_uniform(a, 1);
    fill_uniform(b, 2);
    if (device != Device::cpu) {
      a = a.to(device);
      b = b.to(device);
    }
    Tensor c = Tensor::zeros({s.m, s.n}, s.output_dtype, device);
    const size_t workspace_bytes = kernels::gemm_workspace_bytes(device, s.m, s.n, s.k);
    Tensor workspace = Tensor::empty({static_cast<int64_t>((workspace_bytes + 3) / 4)}, DType::i32, device);
    double best_s = 1e30;
    for (int run = 0; run <= repeats; ++run) {  // run 0 is the warm-up
      const auto start = std::chrono::steady_clock::now();
      kernels::matmul(c, a, s.transpose_a, b, s.transpose_b, 0.0, workspace);
      if (device != Device::cpu) c.item(0);  // waits for the device
      if (run > 0) best_s = std::min(best_s, seconds_since(start));
    }
    const double gflops = 2.0 * s.m * s.n * s.k / best_s * 1e-9;
    const std::string trans = std::string(s.transpose_a ? "T" : "N") + (s.transpose_b ? "T" : "N");
    const std::string dtypes = std::string(dtype_name(s.input_dtype)) + "->" + dtype_name(s.output_dtype);
    if (json)
      std::printf(
          "{\"op\": \"%s\", \"m\": %lld, \"k\": %lld, \"n\": %lld, \"trans_a\": %s, \"trans_b\": %s, \"dtype\": "
          "\"%s\", \"out_dtype\": \"%s\", \"device\": \"%s\", \"threads\": %d, \"ms\": %.3f, \"gflops\": %.1f}\n",
          s.op, static_cast<long long>(s.m), static_cast<long long>(s.k), static_cast<long long>(s.n),
          s.transpose_a ? "true" : "false", s.transpose_b ? "true" : "false", dtype_name(s.input_dtype),
          dtype_name(s.output_dtype), device_name(device), omp_get_max_threads(), best_s * 1e3, gflops);
    else
      std::printf("%-8s %7lld %6lld %5lld %-5s %-11s %9.2f %9.1f\n", s.op, static_cast<long long>(s.m),
                  static_cast<long long>(s.k), static_cast<long long>(s.n), trans.c_str(), dtypes.c_str(),
                  best_s * 1e3, gflops);
    std::fflush(stdout);
  }
  return 0;
}

// ---- step -----------------------------------------------------------------------------
void print_step_usage(std::FILE* out) {
  std::fprintf(out,
      "usage: gc_bench step [--warmup N] [--repeat N] [--ops] [--json] [gc_train flags]\n"
      "  Runs training steps of the configuration the gc_train flags describe (--preset,\n"
      "  --precision, --remat, --device, ...; see gc_train --help) with every op timed, and\n"
      "  prints a step's time by op family (gemm, elementwise, gather, segment-sum,\n"
      "  layernorm, ...) and by module (forward, backward, recompute, optimizer), means over\n"
      "  the measured steps. On cuda the ops are timed with CUDA events; on cuda and meta the\n"
      "  modelled cost of a step on the GPU follows (--card NAME adds its roofline time).\n"
      "  --warmup N   steps run first and not counted (default 1)\n"
      "  --repeat N   steps measured (default 3)\n"
      "  --ops        also op by op (linear_forward, layernorm_backward, ...): time, calls, the\n"
      "               modelled GFLOP, GB and roofline time, and measured / roofline\n"
      "  --json       one JSON object {\"config\", \"memory\", \"time\", \"traffic\", \"ops\"} instead of\n"
      "               tables\n");
}

int parse_count(const char* flag, const std::string& text, int min_value) {
  char* end = nullptr;
  const long v = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || v < min_value || v > 1000000)
    throw UsageError(std::string(flag) + " needs an integer >= " + std::to_string(min_value) + ", got '" + text + "'");
  return static_cast<int>(v);
}

int run_step(int argc, char** argv) {
  int warmup = 1, repeat = 3;
  bool json_out = false, by_op = false;
  std::vector<std::string> train_args;
  TrainOptions options;
  try {
    for (int i = 0; i < argc; ++i) {
      const std::string arg = argv[i];
      if (arg == "--help" || arg == "-h") {
        print_step_usage(stdout);
        return 0;
      } else if ((arg == "--warmup" || arg == "--repeat") && i + 1 < argc) {
        (arg == "--warmup" ? warmup : repeat) = parse_count(arg.c_str(), argv[++i], arg == "--warmup" ? 0 : 1);
      } else if (arg == "--json") {
        json_out = true;
      } else if (arg == "--ops") {
        by_op = true;
      } else {
        train_args.push_back(arg);
      }
    }
    // The step's own flags win: no evaluation, no progress line, every op timed.
    train_args.insert(train_args.end(), {"--no-eval", "--quiet", "--profile", "--steps",
                                         std::to_string(warmup + repeat)});
    std::string help;
    if (!parse_train_options(train_args, &options, &help)) {
      print_step_usage(stdout);
      return 0;
    }
    if (!options.report_path.empty() || !options.trace_path.empty() || !options.trace_png.empty() ||
        !options.resume_path.empty())
      throw UsageError("--report, --trace, --trace-png and --resume are gc_train's: gc_bench step writes no files "
                       "(--json prints its figures)");
  } catch (const UsageError& e) {
    std::fprintf(stderr, "gc_bench step: %s\n", e.what());
    print_step_usage(stderr);
    return 2;
  }
  if (!json_out)
    std::fprintf(stderr, "gc_bench step: %s on %s, %s: %d warm-up + %d measured steps\n", options.preset.c_str(),
                 device_name(options.device), options.precision.c_str(), warmup, repeat);
  RunSetup setup = prepare_run(options);
  Trainer trainer(std::move(setup));
  for (int step = 0; step < warmup + repeat; ++step) {
    if (step == warmup) trainer.reset_profile();
    trainer.train_step(step);
    if (!json_out) std::fprintf(stderr, "  step %d/%d\n", step + 1, warmup + repeat);
  }
  const Profile& sum = trainer.profile_sum();
  const bool timed = options.device != Device::meta;
  const bool modelled = options.device != Device::cpu;
  const AllocatorStats stats = allocator_for(options.device).stats();
  if (json_out) {
    json::Value r = json::Value::object();
    json::Value config = json::Value::object();
    config["preset"] = options.preset;
    config["device"] = device_name(options.device);
    config["precision"] = options.precision;
    config["remat"] = options.remat;
    config["warmup"] = warmup;
    config["repeat"] = repeat;
    config["tf32"] = options.tf32;
    if (!options.card.empty()) config["card"] = options.card;
    r["config"] = config;
    json::Value memory = json::Value::object();
    memory["peak_allocated"] = stats.peak_allocated;
    memory["peak_reserved"] = stats.peak_reserved;
    r["memory"] = memory;
    if (timed) r["time"] = time_json(sum, trainer.profiled_steps(), trainer.profiled_wall_ms());
    if (modelled) r["traffic"] = traffic_json(trainer.last_step_profile(), options.card);
    r["ops"] = op_json(sum, trainer.profiled_steps());
    if (options.device == Device::cuda)
      r["bias_epilogue_fallbacks"] = static_cast<double>(kernels::bias_epilogue_fallbacks());
    std::printf("%s\n", r.dump().c_str());
    return 0;
  }
  std::printf("%s: peak %s allocated, %s reserved\n", options.preset.c_str(), format_bytes(stats.peak_allocated).c_str(),
              format_bytes(stats.peak_reserved).c_str());
  if (timed) std::printf("%s", time_table(sum, trainer.profiled_steps(), trainer.profiled_wall_ms()).c_str());
  if (modelled) std::printf("%s", traffic_table(trainer.last_step_profile(), options.card).c_str());
  if (by_op) std::printf("%s", op_table(sum, trainer.profiled_steps()).c_str());
  if (options.device == Device::cuda)
    std::printf("products with a bias (or bias gradient) that cuBLASLt took no algorithm for, in this run: %llu\n",
                static_cast<unsigned long long>(kernels::bias_epilogue_fallbacks()));
  return 0;
}

// ---- device ----------------------------------------------------------------------------
int run_device(int argc, char** argv) {
  bool json_out = false;
  for (int i = 0; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::printf("usage: gc_bench device [--json]\n"
                  "  The cuda device as gc sees it: its name, its total and free memory from\n"
                  "  cudaMemGetInfo, and the --card of tools/memory/cards.h that matches it.\n"
                  "  Exits 1 when no cuda device can be used (saying why).\n");
      return 0;
    } else if (arg == "--json") {
      json_out = true;
    } else {
      std::fprintf(stderr, "gc_bench device: unknown option '%s'\n", arg.c_str());
      return 2;
    }
  }
  std::string why;
  int64_t used = 0, total = 0;
  if (!cuda_available(&why) || !cuda_memory_in_use(&used, &total)) {
    std::fprintf(stderr, "gc_bench device: no cuda device: %s\n", why.empty() ? "cudaMemGetInfo failed" : why.c_str());
    return 1;
  }
  const std::string name = cuda_device_name();
  const Card* card = card_for_device(name, total);
  if (json_out) {
    json::Value r = json::Value::object();
    r["name"] = name;
    r["total_bytes"] = total;
    r["free_bytes"] = total - used;
    r["card"] = card ? card->name : "";
    std::printf("%s\n", r.dump().c_str());
  } else {
    std::printf("%s: %lld bytes total (%s), %lld free; --card %s\n", name.c_str(), static_cast<long long>(total),
                format_bytes(total).c_str(), static_cast<long long>(total - used), card ? card->name : "(none matches)");
  }
  return 0;
}

// ---- large ---------------------------------------------------------------------------
// Element i of a 1-D tensor, read or written through a single-element copy.
void set_element_bits(Tensor& t, int64_t i, uint16_t bits) {
  device_copy(static_cast<unsigned char*>(t.data()) + i * 2, t.device(), &bits, Device::cpu, 2);
}

int run_large(int argc, char** argv) {
  int64_t elements = (int64_t(1) << 31) + 1;
  Device device = Device::cuda;
  for (int i = 0; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::printf("usage: gc_bench large [--elements N] [--device cuda|cpu]\n"
                  "  A bf16 add (out = a + b) and a cast of its result to f32 over N elements\n"
                  "  (default 2^31 + 1 = 2147483649, beyond every 32-bit index), checked at the\n"
                  "  positions where 32-bit indexing would break (2^31 - 1, 2^31, the last) and a\n"
                  "  few others, with the time and bandwidth of each. Needs 5 x N x 2 bytes on the device\n"
                  "  (20 GiB at the default). Exits 1 when a checked value is wrong.\n");
      return 0;
    } else if (arg == "--elements" && i + 1 < argc) {
      char* end = nullptr;
      const long long v = std::strtoll(argv[++i], &end, 10);
      if (*end != '\0' || v < 2) throw UsageError(std::string("--elements needs an integer >= 2, got '") + argv[i] + "'");
      elements = v;
    } else if (arg == "--device" && i + 1 < argc) {
      const std::string name = argv[++i];
      if (name != "cuda" && name != "cpu") throw UsageError("--device must be cuda or cpu, got '" + name + "'");
      device = device_from_name(name);
    } else {
      throw UsageError("unknown option '" + arg + "' (see gc_bench large --help)");
    }
  }
  std::string why;
  if (device == Device::cuda && !cuda_available(&why)) {
    std::fprintf(stderr, "gc_bench large: no cuda device: %s\n", why.c_str());
    return 1;
  }
  const int64_t n = elements;
  std::vector<int64_t> positions = {0, 1, n / 2, n - 2, n - 1};
  for (int64_t p : {(int64_t(1) << 31) - 1, int64_t(1) << 31, (int64_t(1) << 31) + 1})
    if (p < n) positions.push_back(p);
  std::sort(positions.begin(), positions.end());
  positions.erase(std::unique(positions.begin(), positions.end()), positions.end());
  Tensor a = Tensor::empty({n}, DType::bf16, device), b = Tensor::empty({n}, DType::bf16, device);
  kernels::fill(a, 1.0);
  kernels::fill(b, 0.5);
  // Distinct values at the checked positions (small integers: exact in bf16).
  for (size_t k = 0; k < positions.size(); ++k) set_element_bits(a, positions[k], f32_to_bf16(static_cast<float>(k + 2)));
  Tensor out = Tensor::empty({n}, DType::bf16, device);
  Tensor wide = Tensor::empty({n}, DType::f32, device);
  auto timed = [&](auto&& op) {
    const auto start = std::chrono::steady_clock::now();
    op();
    out.item(0);  // waits for the device
    return seconds_since(start);
  };
  const double add_s = timed([&] { kernels::add_forward(out, a, b); });
  const double cast_s = timed([&] { kernels::cast(wide, out); });
  int wrong = 0;
  auto expect = [&](const Tensor& t, int64_t i, double want) {
    const double got = t.item(i);
    if (got != want) {
      std::printf("  WRONG: %s element %lld is %g, expected %g\n", dtype_name(t.dtype()), static_cast<long long>(i), got,
                  want);
      ++wrong;
    }
  };
  for (size_t k = 0; k < positions.size(); ++k) {
    const int64_t p = positions[k];
    expect(out, p, static_cast<double>(k + 2) + 0.5);
    expect(wide, p, static_cast<double>(k + 2) + 0.5);
    if (p + 1 < n && !std::binary_search(positions.begin(), positions.end(), p + 1)) {
      expect(out, p + 1, 1.5);
      expect(wide, p + 1, 1.5);
    }
  }
  const double gb = 1e-9 * static_cast<double>(n);
  std::printf("large: %lld elements on %s: bf16 add %.1f ms (%.1f GB/s), bf16 -> f32 cast %.1f ms (%.1f GB/s); "
              "%zu positions checked (up to %lld): %s\n",
              static_cast<long long>(n), device_name(device), add_s * 1e3, 6 * gb / add_s, cast_s * 1e3,
              6 * gb / cast_s, positions.size(), static_cast<long long>(positions.back()),
              wrong ? "WRONG VALUES" : "all equal");
  return wrong ? 1 : 0;
}

// ---- subcommands ------------------------------------------------------------------------
struct Subcommand {
  const char* name;
  const char* summary;
  int (*run)(int argc, char** argv);  // arguments after the subcommand's name
};

const Subcommand kSubcommands[] = {
    {"gemm", "GFLOP/s of the GEMM (cpu or cuda) on GraphCast's shapes (forward, grad_x, grad_W)", run_gemm},
    {"step", "a training step's time by op family and module (gc_train flags)", run_step},
    {"device", "the cuda device: name, memory from cudaMemGetInfo, matching --card", run_device},
    {"large", "a bf16 add and cast over 2^31 + 1 elements (64-bit indexing), checked", run_large},
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
      } catch (const gc::UsageError& e) {
        std::fprintf(stderr, "gc_bench %s: %s\n", s.name, e.what());
        return 2;
      } catch (const gc::OutOfMemory& e) {
        std::fprintf(stderr, "gc_bench %s: out of memory: %s\n", s.name, e.what());
        return 3;
      } catch (const std::exception& e) {
        std::fprintf(stderr, "gc_bench %s: %s\n", s.name, e.what());
        return 1;
      }
    }
  std::fprintf(stderr, "gc_bench: unknown subcommand '%s'\n", name.c_str());
  gc::print_usage(stderr);
  return 2;
}
