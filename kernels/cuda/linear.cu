// kernels/cuda/linear.cu: row-major GEMM through cuBLAS (cublasGemmEx_64), or
// cuBLASLt with its bias epilogue when there is a bias, plus our epilogue kernel
// for what cuBLASLt is not asked to do (k == 0; a bias kernels::bias_in_gemm_epilogue
// rules out, such as f64).
//
// cuBLAS is column-major; a row-major C [m, n] with row stride ldc is the
// column-major C^T [n, m] with leading dimension ldc, so C = op(A) op(B) is asked
// as C^T = op(B)^T op(A)^T: operands swapped, each keeping its own transpose flag.
//
// One cuBLAS handle, created on first use, on the default stream (gc's one
// stream), with f32 accumulation and no TF32 (CUBLAS_COMPUTE_32F; f32 products
// use CUBLAS_COMPUTE_32F_FAST_TF32 only when asked, --tf32), reductions
// kept in the accumulator type (no split-K reduction in bf16) and atomics off, so
// a product is bitwise repeatable on one GPU model. Its workspace is set before
// every product to the caller's tensor; kernels run in stream order, so the
// allocator may hand that memory out again as soon as the call returns.
//
// A product with a bias goes to cuBLASLt (cublasLtMatmul, CUBLASLT_EPILOGUE_BIAS):
// the bias is added to the accumulator in the output pass and C rounded once, as
// on the cpu, with no second pass over C. Its algorithm comes from cuBLASLt's
// heuristic, asked once per shape, dtypes and alignments (kept for the process),
// with reductions only in the compute type (as above). Where the heuristic offers
// none, the product takes the cublasGemmEx path and our epilogue kernel
// (counted by bias_epilogue_fallbacks, so a GPU check can tell).
#include "kernels/cuda/linear.h"

#include <cublasLt.h>
#include <cublas_v2.h>

#include <array>
#include <atomic>
#include <map>
#include <mutex>

#include "kernels/cuda/common.h"
#include "kernels/cuda/cublas_check.h"

namespace gc::cuda {
namespace {

using kernels::GemmProblem;

cublasHandle_t create_cublas_handle() {
  cublasHandle_t handle = nullptr;
  GC_CUBLAS_CHECK(cublasCreate(&handle));
  GC_CUBLAS_CHECK(cublasSetStream(handle, /*default stream*/ 0));
  GC_CUBLAS_CHECK(cublasSetMathMode(
      handle, static_cast<cublasMath_t>(CUBLAS_DEFAULT_MATH | CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION)));
  GC_CUBLAS_CHECK(cublasSetAtomicsMode(handle, CUBLAS_ATOMICS_NOT_ALLOWED));
  return handle;
}

// Never destroyed: a static destructor could run after the CUDA runtime has shut down.
cublasHandle_t cublas_handle() {
  static const cublasHandle_t handle = create_cublas_handle();
  return handle;
}

cudaDataType cuda_data_type(DType dtype) {
  switch (dtype) {
    case DType::f32: return CUDA_R_32F;
    case DType::f64: return CUDA_R_64F;
    case DType::bf16: return CUDA_R_16BF;
    case DType::f16: return CUDA_R_16F;
    default: throw std::invalid_argument(std::string("gemm: no cuBLAS type for ") + dtype_name(dtype));
  }
}

void require(bool condition, const std::string& message) {
  if (!condition) throw std::invalid_argument("gemm on cuda: " + message);
}

std::string dtypes_of(const GemmProblem& p) {
  std::string s = std::string("A ") + dtype_name(p.a_dtype) + ", B " + dtype_name(p.b_dtype) + ", C " +
                  dtype_name(p.c_dtype);
  if (p.bias) s += std::string(", bias ") + dtype_name(p.bias_dtype);
  return s;
}

void check_dtypes(const GemmProblem& p) {
  if (p.c_dtype == DType::f64 || p.a_dtype == DType::f64 || p.b_dtype == DType::f64) {
    require(p.a_dtype == DType::f64 && p.b_dtype == DType::f64 && p.c_dtype == DType::f64 &&
                (!p.bias || p.bias_dtype == DType::f64),
            "f64 products need every operand f64; got " + dtypes_of(p));
    return;
  }
  auto is_compute = [](DType d) { return d == DType::f32 || d == DType::bf16 || d == DType::f16; };
  require(is_compute(p.a_dtype) && is_compute(p.b_dtype) && is_compute(p.c_dtype) &&
              (!p.bias || is_compute(p.bias_dtype)),
          "dtypes must be f32, bf16 or f16; got " + dtypes_of(p));
  require(p.a_dtype == p.b_dtype,
          "cuBLAS multiplies A and B of one dtype; got " + dtypes_of(p) +
              " (cast one operand first; autograd passes a compute-dtype copy of f32 weights)");
  require(p.c_dtype == p.a_dtype || p.c_dtype == DType::f32,
          "C must have the inputs' dtype or be f32 (the accumulator); got " + dtypes_of(p));
}

// C [m, n] (row stride ldc) = (scale_by_beta ? 0 + beta C : C) + bias, rounded once.
// After cuBLAS: scale_by_beta false, bias added. With k = 0 (no product): scale_by_beta
// true, the cpu's finish_rows operation for operation (the empty product 0, plus
// beta C unless beta, in the compute type, is 0, plus the bias), so the bits are
// the cpu's, the sign of a zero included. A beta that is 0 in the compute type
// never reads C (cuBLAS does not read it for beta == 0 either).
template <class CT, class BT>
__global__ void gemm_epilogue_kernel(CT* c, const BT* bias, int64_t m, int64_t n, int64_t ldc, bool scale_by_beta,
                                     double beta) {
  using Acc = common_compute_t<CT, BT>;
  const Acc beta_c = static_cast<Acc>(beta);
  for (int64_t r = global_warp(); r < m; r += total_warps()) {
    CT* row = c + r * ldc;
    for (int64_t j = lane_id(); j < n; j += 32) {
      Acc value = 0;
      if (!scale_by_beta)
        value = static_cast<Acc>(load_value(row[j]));
      else if (beta_c != Acc(0))
        value = value + beta_c * static_cast<Acc>(load_value(row[j]));
      if (bias) value += static_cast<Acc>(load_value(bias[j]));
      row[j] = to_storage<CT>(value);
    }
  }
}

void launch_epilogue(const GemmProblem& p, bool scale_by_beta) {
  visit_float_dtype("gemm", p.c_dtype, [&](auto c_tag) {
    using CT = decltype(c_tag);
    // Without a bias the bias type is irrelevant: use C's.
    visit_float_dtype("gemm", p.bias ? p.bias_dtype : p.c_dtype, [&](auto b_tag) {
      using BT = decltype(b_tag);
      constexpr bool f64_c = std::is_same_v<CT, double>, f64_bias = std::is_same_v<BT, double>;
      if constexpr (f64_c == f64_bias)  // validated: f64 pairs only with f64
        gemm_epilogue_kernel<CT, BT><<<row_blocks(p.m), kThreadsPerBlock>>>(
            static_cast<CT*>(p.c), static_cast<const BT*>(p.bias), p.m, p.n, p.ldc, scale_by_beta, p.beta);
    });
  });
  GC_CUDA_CHECK(cudaGetLastError());
}


// ---- cuBLASLt with the bias epilogue ---------------------------------------------------------

std::atomic<uint64_t> lt_fallbacks{0};

cublasLtHandle_t lt_handle() {
  static const cublasLtHandle_t handle = [] {
    cublasLtHandle_t h = nullptr;
    GC_CUBLAS_CHECK(cublasLtCreate(&h));
    return h;
  }();
  return handle;
}

// The descriptors of one kind of product and the algorithm the heuristic chose
// for it (found false: none offered). Kept for the process, never destroyed.
struct LtPlan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
  bool found = false;
};

int64_t alignment_of(const void* p) {
  const auto address = reinterpret_cast<uintptr_t>(p);
  int64_t align = 1;
  while (align < 256 && (address % static_cast<uintptr_t>(2 * align)) == 0) align *= 2;
  return align;
}

void set_desc(cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attr, const void* value, size_t size) {
  GC_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc, attr, value, size));
}

LtPlan make_plan(const GemmProblem& p, const void* vector, size_t max_workspace_bytes) {
  LtPlan plan;
  const cublasComputeType_t compute =
      p.tf32 && p.a_dtype == DType::f32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  GC_CUBLAS_CHECK(cublasLtMatmulDescCreate(&plan.desc, compute, CUDA_R_32F));
  // Operands swapped as for cublasGemmEx: C^T [n, m] = op(B)^T op(A)^T, column-major.
  const int32_t op_b = p.transpose_b ? CUBLAS_OP_T : CUBLAS_OP_N, op_a = p.transpose_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  set_desc(plan.desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_b, sizeof(op_b));
  set_desc(plan.desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_a, sizeof(op_a));
  // The bias: [n] added to every row of C (rows of the column-major C^T), of C's dtype or f32.
  const uint32_t epilogue = CUBLASLT_EPILOGUE_BIAS;
  set_desc(plan.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof(epilogue));
  const int32_t vector_type = cuda_data_type(p.bias_dtype);
  set_desc(plan.desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &vector_type, sizeof(vector_type));
  set_desc(plan.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &vector, sizeof(vector));  // its alignment guides the heuristic
  const auto u = [](int64_t v) { return static_cast<uint64_t>(v); };
  GC_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan.a, cuda_data_type(p.b_dtype), u(p.transpose_b ? p.k : p.n),
                                             u(p.transpose_b ? p.n : p.k), p.ldb));
  GC_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan.b, cuda_data_type(p.a_dtype), u(p.transpose_a ? p.m : p.k),
                                             u(p.transpose_a ? p.k : p.m), p.lda));
  GC_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan.c, cuda_data_type(p.c_dtype), u(p.n), u(p.m), p.ldc));
  cublasLtMatmulPreference_t pref = nullptr;
  GC_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  const uint64_t max_workspace = max_workspace_bytes;
  const uint32_t reductions = CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE;  // no reduction in C's (16-bit) type
  cublasStatus_t status = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                               &max_workspace, sizeof(max_workspace));
  if (status == CUBLAS_STATUS_SUCCESS)
    status = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, &reductions,
                                                  sizeof(reductions));
  cublasLtMatmulHeuristicResult_t result{};
  int returned = 0;
  if (status == CUBLAS_STATUS_SUCCESS)
    status = cublasLtMatmulAlgoGetHeuristic(lt_handle(), plan.desc, plan.a, plan.b, plan.c, plan.c, pref, 1, &result,
                                            &returned);
  cublasLtMatmulPreferenceDestroy(pref);
  // NOT_SUPPORTED (or no result) means this kind of product has no bias epilogue here: fall back.
  plan.found = status == CUBLAS_STATUS_SUCCESS && returned > 0 && result.state == CUBLAS_STATUS_SUCCESS &&
               result.workspaceSize <= max_workspace_bytes;
  if (plan.found) plan.algo = result.algo;
  return plan;
}

// The plan for a product of p's kind (shape, dtypes, transposes, alignments),
// made on first use and kept.
const LtPlan& plan_for(const GemmProblem& p, const void* vector, size_t max_workspace_bytes) {
  using Key = std::array<int64_t, 20>;
  const Key key = {p.m, p.n, p.k, p.lda, p.ldb, p.ldc, p.transpose_a, p.transpose_b,
                   static_cast<int64_t>(p.a_dtype), static_cast<int64_t>(p.b_dtype), static_cast<int64_t>(p.c_dtype),
                   static_cast<int64_t>(p.bias_dtype), p.tf32 && p.a_dtype == DType::f32,
                   alignment_of(p.a), alignment_of(p.b), alignment_of(p.c), alignment_of(vector),
                   static_cast<int64_t>(max_workspace_bytes), 0, 0};
  static std::mutex mutex;
  static auto* plans = new std::map<Key, LtPlan>();  // never destroyed (see cublas_handle)
  std::lock_guard<std::mutex> lock(mutex);
  auto it = plans->find(key);
  if (it == plans->end()) it = plans->emplace(key, make_plan(p, vector, max_workspace_bytes)).first;
  return it->second;
}

void run_plan(const LtPlan& plan, const GemmProblem& p, const void* vector, void* workspace, size_t workspace_bytes) {
  set_desc(plan.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &vector, sizeof(vector));
  const float alpha = static_cast<float>(p.alpha), beta = static_cast<float>(p.beta);
  GC_CUBLAS_CHECK(cublasLtMatmul(lt_handle(), plan.desc, &alpha, p.b, plan.a, p.a, plan.b, &beta, p.c, plan.c, p.c,
                                 plan.c, &plan.algo, workspace, workspace_bytes, /*default stream*/ 0));
}

// C = alpha op(A) op(B) + beta C + bias through cuBLASLt; false (nothing done)
// when cuBLASLt offers no algorithm for it.
bool gemm_bias_lt(const GemmProblem& p, void* workspace, size_t workspace_bytes) {
  const LtPlan& plan = plan_for(p, p.bias, workspace_bytes);
  if (!plan.found) {
    ++lt_fallbacks;
    return false;
  }
  run_plan(plan, p, p.bias, workspace, workspace_bytes);
  return true;
}

// out[j] = bias[j] rounded to C's 16-bit dtype (to_storage: nearest-even, as the cpu's f32_to_bf16).
template <class CT>
__global__ void round_bias_kernel(CT* out, const float* bias, int64_t n) {
  for (int64_t j = global_thread(); j < n; j += total_threads()) out[j] = to_storage<CT>(bias[j]);
}

}  // namespace

uint64_t bias_epilogue_fallbacks() { return lt_fallbacks.load(); }

namespace {
// gemm with any bias already of C's dtype (or f64 with f64); ws_bytes of the workspace are cuBLAS's.
void gemm_with_bias_of_c(const GemmProblem& p, void* workspace, size_t ws_bytes);
}  // namespace

size_t rounded_bias_bytes(int64_t n) { return (static_cast<size_t>(n) * 2 + 255) / 256 * 256; }

void gemm(const GemmProblem& p, void* workspace, size_t workspace_bytes) {
  check_dtypes(p);
  require(p.m >= 0 && p.n >= 0 && p.k >= 0,
          "negative size m=" + std::to_string(p.m) + " n=" + std::to_string(p.n) + " k=" + std::to_string(p.k));
  if (p.m == 0 || p.n == 0) return;
  require(p.c != nullptr, "C is null for a non-empty product");
  require(p.ldc >= p.n, "ldc " + std::to_string(p.ldc) + " < n " + std::to_string(p.n));
  require(workspace != nullptr && workspace_bytes >= kCublasWorkspaceBytes,
          "workspace of " + std::to_string(workspace_bytes) + " bytes, need " +
              std::to_string(kCublasWorkspaceBytes) + " (kernels::gemm_workspace_bytes on cuda)");
  // An f32 bias under a 16-bit C is rounded to C's dtype first, into the
  // workspace's last bytes (the cpu rounds it alike, as autocast casts a linear's
  // bias): cuBLASLt's bias epilogue takes a bias of C's dtype only. cuBLAS gets the rest.
  size_t ws_bytes = kCublasWorkspaceBytes;
  if (p.bias && kernels::rounds_bias_first(p.c_dtype, p.bias_dtype)) {
    const size_t tail = rounded_bias_bytes(p.n);
    ws_bytes -= tail;
    void* rounded = static_cast<char*>(workspace) + ws_bytes;
    visit_float_dtype("gemm", p.c_dtype, [&](auto c_tag) {
      using CT = decltype(c_tag);
      if constexpr (!std::is_same_v<CT, double> && !std::is_same_v<CT, float>)
        round_bias_kernel<CT><<<element_blocks(p.n), kThreadsPerBlock>>>(static_cast<CT*>(rounded),
                                                                          static_cast<const float*>(p.bias), p.n);
    });
    GC_CUDA_CHECK(cudaGetLastError());
    GemmProblem q = p;
    q.bias = rounded;
    q.bias_dtype = p.c_dtype;
    gemm_with_bias_of_c(q, workspace, ws_bytes);
    return;
  }
  gemm_with_bias_of_c(p, workspace, ws_bytes);
}

namespace {
void gemm_with_bias_of_c(const GemmProblem& p, void* workspace, size_t ws_bytes) {
  if (p.k == 0) {  // no product: C = beta C + bias
    launch_epilogue(p, true);
    return;
  }
  require(p.a != nullptr && p.b != nullptr, "A or B is null for a non-empty product");
  require(p.lda >= (p.transpose_a ? p.m : p.k) && p.ldb >= (p.transpose_b ? p.k : p.n),
          "row strides too small: lda " + std::to_string(p.lda) + ", ldb " + std::to_string(p.ldb));

  if (p.bias && kernels::bias_in_gemm_epilogue(p.c_dtype, p.bias_dtype) && gemm_bias_lt(p, workspace, ws_bytes))
    return;

  cublasHandle_t handle = cublas_handle();
  GC_CUBLAS_CHECK(cublasSetWorkspace(handle, workspace, ws_bytes));
  const cublasOperation_t op_b = p.transpose_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_a = p.transpose_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  if (p.c_dtype == DType::f64) {
    const double alpha = p.alpha, beta = p.beta;
    GC_CUBLAS_CHECK(cublasGemmEx_64(handle, op_b, op_a, p.n, p.m, p.k, &alpha, p.b, CUDA_R_64F, p.ldb, p.a,
                                    CUDA_R_64F, p.lda, &beta, p.c, CUDA_R_64F, p.ldc, CUBLAS_COMPUTE_64F,
                                    CUBLAS_GEMM_DEFAULT));
  } else {
    const float alpha = static_cast<float>(p.alpha), beta = static_cast<float>(p.beta);
    const cublasComputeType_t compute =
        p.tf32 && p.a_dtype == DType::f32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    GC_CUBLAS_CHECK(cublasGemmEx_64(handle, op_b, op_a, p.n, p.m, p.k, &alpha, p.b, cuda_data_type(p.b_dtype), p.ldb,
                                    p.a, cuda_data_type(p.a_dtype), p.lda, &beta, p.c, cuda_data_type(p.c_dtype),
                                    p.ldc, compute, CUBLAS_GEMM_DEFAULT));
  }
  if (p.bias) launch_epilogue(p, false);
}
}  // namespace

}  // namespace gc::cuda
