// tests/cudasim/sim_blas.cpp: cudasim's cuBLAS (cublasGemmEx_64) and cuBLASLt
// (cublasLtMatmul with the bias epilogue): the calls gc makes, checked as the
// libraries document them, then computed on the CPU (cublas_v2.h, cublasLt.h).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "cublasLt.h"
#include "cublas_v2.h"
#include "runtime/dtype.h"
#include "sim_internal.h"

// ---- cuBLAS ----------------------------------------------------------------------------------------

struct cublasContext {
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
};

namespace gcsim {
namespace {

cublasStatus_t blas_fail(cublasStatus_t status, const std::string& message) {
  report(message);
  return status;
}

size_t type_bytes(cudaDataType type) {
  switch (type) {
    case CUDA_R_32F: return 4;
    case CUDA_R_64F: return 8;
    case CUDA_R_16F:
    case CUDA_R_16BF: return 2;
  }
  return 0;
}

double load(const void* base, int64_t index, cudaDataType type) {
  switch (type) {
    case CUDA_R_32F: return static_cast<const float*>(base)[index];
    case CUDA_R_64F: return static_cast<const double*>(base)[index];
    case CUDA_R_16F: return gc::f16_to_f32(static_cast<const uint16_t*>(base)[index]);
    case CUDA_R_16BF: return gc::bf16_to_f32(static_cast<const uint16_t*>(base)[index]);
  }
  return 0;
}

// f32 results round once into C's type; f64 results are stored as they are.
void store_f32(void* base, int64_t index, cudaDataType type, float value) {
  switch (type) {
    case CUDA_R_32F: static_cast<float*>(base)[index] = value; return;
    case CUDA_R_16F: static_cast<uint16_t*>(base)[index] = gc::f32_to_f16(value); return;
    case CUDA_R_16BF: static_cast<uint16_t*>(base)[index] = gc::f32_to_bf16(value); return;
    case CUDA_R_64F: return;  // not reached: f64 pairs with COMPUTE_64F
  }
}

// The combinations cublasGemmEx documents for the compute types gc uses.
bool supported(cublasComputeType_t compute, cudaDataType a, cudaDataType b, cudaDataType c) {
  if (compute == CUBLAS_COMPUTE_64F) return a == CUDA_R_64F && b == CUDA_R_64F && c == CUDA_R_64F;
  if (compute == CUBLAS_COMPUTE_32F_FAST_TF32) return a == CUDA_R_32F && b == CUDA_R_32F && c == CUDA_R_32F;
  if (compute != CUBLAS_COMPUTE_32F) return false;
  if (a != b) return false;
  if (a == CUDA_R_32F) return c == CUDA_R_32F;
  if (a == CUDA_R_16F || a == CUDA_R_16BF) return c == a || c == CUDA_R_32F;
  return false;
}

// An f32 input as TF32 tensor cores read it: 10 explicit mantissa bits, rounded to
// nearest (ties away from zero, as the conversion instruction cvt.rna.tf32.f32).
float round_to_tf32(float v) {
  if (!std::isfinite(v)) return v;
  uint32_t bits;
  std::memcpy(&bits, &v, 4);
  bits = (bits + 0x1000u) & ~0x1fffu;
  std::memcpy(&v, &bits, 4);
  return v;
}

// The bytes a column-major [rows, cols] operand with leading dimension ld spans.
size_t operand_extent(int64_t rows, int64_t cols, int64_t ld, cudaDataType type) {
  return (static_cast<size_t>(ld) * static_cast<size_t>(cols - 1) + static_cast<size_t>(rows)) * type_bytes(type);
}


// D = C (column-major [m, n], leading dimension ldc) = alpha op(A) op(B) + beta C
// (+ bias[i] on row i), accumulated in order of k in the compute type and
// rounded once into C's type; beta == 0 never reads C.
void product(cublasOperation_t transa, cublasOperation_t transb, int64_t m, int64_t n, int64_t k, const void* alpha,
             const void* A, cudaDataType Atype, int64_t lda, const void* B, cudaDataType Btype, int64_t ldb,
             const void* beta, void* C, cudaDataType Ctype, int64_t ldc, cublasComputeType_t compute_type,
             const void* bias, cudaDataType bias_type) {
  const auto a_at = [&](int64_t i, int64_t l) { return transa == CUBLAS_OP_N ? i + l * lda : l + i * lda; };
  const auto b_at = [&](int64_t l, int64_t j) { return transb == CUBLAS_OP_N ? l + j * ldb : j + l * ldb; };
  if (compute_type == CUBLAS_COMPUTE_64F) {
    const double al = *static_cast<const double*>(alpha), be = *static_cast<const double*>(beta);
    auto* c = static_cast<double*>(C);
    for (int64_t j = 0; j < n; ++j)
      for (int64_t i = 0; i < m; ++i) {
        double acc = 0;
        for (int64_t l = 0; l < k; ++l) acc += load(A, a_at(i, l), Atype) * load(B, b_at(l, j), Btype);
        double value = be == 0.0 ? al * acc : al * acc + be * c[i + j * ldc];
        if (bias) value += load(bias, i, bias_type);
        c[i + j * ldc] = value;
      }
  } else {
    const float al = *static_cast<const float*>(alpha), be = *static_cast<const float*>(beta);
    const bool tf32 = compute_type == CUBLAS_COMPUTE_32F_FAST_TF32;
    const auto input = [tf32](double v) { return tf32 ? round_to_tf32(static_cast<float>(v)) : static_cast<float>(v); };
    for (int64_t j = 0; j < n; ++j)
      for (int64_t i = 0; i < m; ++i) {
        float acc = 0;
        for (int64_t l = 0; l < k; ++l) acc += input(load(A, a_at(i, l), Atype)) * input(load(B, b_at(l, j), Btype));
        float value = al * acc;
        if (be != 0.0f) value += be * static_cast<float>(load(C, i + j * ldc, Ctype));
        if (bias) value += static_cast<float>(load(bias, i, bias_type));
        store_f32(C, i + j * ldc, Ctype, value);
      }
  }
}

}  // namespace
}  // namespace gcsim

cublasStatus_t cublasCreate(cublasHandle_t* handle) {
  *handle = new cublasContext();
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy(cublasHandle_t handle) {
  delete handle;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t stream) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (stream != nullptr) return gcsim::blas_fail(CUBLAS_STATUS_INVALID_VALUE, "cublasSetStream: gc uses only the default stream");
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t) {
  return handle ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_NOT_INITIALIZED;
}
cublasStatus_t cublasSetAtomicsMode(cublasHandle_t handle, cublasAtomicsMode_t) {
  return handle ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_NOT_INITIALIZED;
}
cublasStatus_t cublasSetWorkspace(cublasHandle_t handle, void* workspace, size_t bytes) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (bytes > 0 && !gcsim::device_memory(workspace, bytes))
    return gcsim::blas_fail(CUBLAS_STATUS_INVALID_VALUE, "cublasSetWorkspace: the workspace is not " +
                                                             std::to_string(bytes) + " bytes of device memory");
  handle->workspace = workspace;
  handle->workspace_bytes = bytes;
  return CUBLAS_STATUS_SUCCESS;
}

const char* cublasGetStatusString(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
  }
  return "CUBLAS_STATUS_UNKNOWN";
}

cublasStatus_t cublasGemmEx_64(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int64_t m,
                               int64_t n, int64_t k, const void* alpha, const void* A, cudaDataType Atype, int64_t lda,
                               const void* B, cudaDataType Btype, int64_t ldb, const void* beta, void* C,
                               cudaDataType Ctype, int64_t ldc, cublasComputeType_t compute_type,
                               cublasGemmAlgo_t) {
  using namespace gcsim;
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  const auto invalid = [](const std::string& what) {
    return blas_fail(CUBLAS_STATUS_INVALID_VALUE, "cublasGemmEx_64: " + what);
  };
  if ((transa != CUBLAS_OP_N && transa != CUBLAS_OP_T) || (transb != CUBLAS_OP_N && transb != CUBLAS_OP_T))
    return invalid("transpose flag other than N or T");
  if (m < 0 || n < 0 || k < 0) return invalid("negative size");
  const int64_t a_rows = transa == CUBLAS_OP_N ? m : k, a_cols = transa == CUBLAS_OP_N ? k : m;
  const int64_t b_rows = transb == CUBLAS_OP_N ? k : n, b_cols = transb == CUBLAS_OP_N ? n : k;
  if (lda < std::max<int64_t>(1, a_rows)) return invalid("lda " + std::to_string(lda) + " < rows of A " + std::to_string(a_rows));
  if (ldb < std::max<int64_t>(1, b_rows)) return invalid("ldb " + std::to_string(ldb) + " < rows of B " + std::to_string(b_rows));
  if (ldc < std::max<int64_t>(1, m)) return invalid("ldc " + std::to_string(ldc) + " < m " + std::to_string(m));
  if (!supported(compute_type, Atype, Btype, Ctype))
    return blas_fail(CUBLAS_STATUS_NOT_SUPPORTED, "cublasGemmEx_64: unsupported combination of compute type and A/B/C types");
  if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
  count_gemm();
  if (touches_device_memory(alpha, 4) || touches_device_memory(beta, 4))
    return invalid("alpha/beta point to device memory, but the pointer mode is host");
  if (handle->workspace_bytes == 0) return invalid("no workspace was set (gc always sets its own)");
  if (!device_memory(C, operand_extent(m, n, ldc, Ctype))) return invalid("C's extent is not inside one device allocation");
  if (k > 0) {
    if (!device_memory(A, operand_extent(a_rows, a_cols, lda, Atype))) return invalid("A's extent is not inside one device allocation");
    if (!device_memory(B, operand_extent(b_rows, b_cols, ldb, Btype))) return invalid("B's extent is not inside one device allocation");
  }
  product(transa, transb, m, n, k, alpha, A, Atype, lda, B, Btype, ldb, beta, C, Ctype, ldc, compute_type, nullptr,
          Ctype);
  return CUBLAS_STATUS_SUCCESS;
}

// ---- cuBLASLt ------------------------------------------------------------------------------------

struct cublasLtContext {};

struct cublasLtMatmulDescOpaque_t {
  cublasComputeType_t compute = CUBLAS_COMPUTE_32F;
  cudaDataType_t scale = CUDA_R_32F;
  int32_t pointer_mode = 0;  // host
  int32_t transa = CUBLAS_OP_N, transb = CUBLAS_OP_N;
  uint32_t epilogue = CUBLASLT_EPILOGUE_DEFAULT;
  const void* bias = nullptr;
  int32_t bias_type = -1;  // D's type
};

struct cublasLtMatrixLayoutOpaque_t {
  cudaDataType type = CUDA_R_32F;
  uint64_t rows = 0, cols = 0;
  int64_t ld = 0;
};

struct cublasLtMatmulPreferenceOpaque_t {
  uint64_t max_workspace = 0;
  uint32_t reduction_mask = CUBLASLT_REDUCTION_SCHEME_MASK;
};

namespace gcsim {
namespace {

constexpr uint64_t kSimAlgo = 0x6763'7369'6d4c'7430ull;  // marks the one algorithm the simulated heuristic returns
constexpr size_t kSimAlgoWorkspace = size_t(1) << 20;     // what it asks for when the preference allows it

template <class T>
cublasStatus_t set_value(T* field, const void* buf, size_t size, const char* what) {
  if (buf == nullptr || size != sizeof(T))
    return blas_fail(CUBLAS_STATUS_INVALID_VALUE, std::string(what) + ": a value of " + std::to_string(sizeof(T)) +
                                                      " bytes expected, got " + std::to_string(size));
  std::memcpy(field, buf, sizeof(T));
  return CUBLAS_STATUS_SUCCESS;
}

cudaDataType bias_type_of(const cublasLtMatmulDescOpaque_t& desc, cudaDataType d_type) {
  return desc.bias_type < 0 ? d_type : static_cast<cudaDataType>(desc.bias_type);
}

// What cuBLASLt documents for a matmul of the kind gc asks (one matrix each,
// column-major, C and D of one layout, no epilogue but the bias); on success
// m, n, k are the product's sizes.
cublasStatus_t check_matmul(const char* fn, const cublasLtMatmulDescOpaque_t* desc, const cublasLtMatrixLayoutOpaque_t* a,
                            const cublasLtMatrixLayoutOpaque_t* b, const cublasLtMatrixLayoutOpaque_t* c,
                            const cublasLtMatrixLayoutOpaque_t* d, int64_t* m, int64_t* n, int64_t* k) {
  const std::string name = fn;
  if (!desc || !a || !b || !c || !d) return blas_fail(CUBLAS_STATUS_INVALID_VALUE, name + ": a null descriptor");
  if (desc->pointer_mode != 0) return blas_fail(CUBLAS_STATUS_NOT_SUPPORTED, name + ": gc passes alpha and beta from the host");
  if ((desc->transa != CUBLAS_OP_N && desc->transa != CUBLAS_OP_T) ||
      (desc->transb != CUBLAS_OP_N && desc->transb != CUBLAS_OP_T))
    return blas_fail(CUBLAS_STATUS_INVALID_VALUE, name + ": transpose flag other than N or T");
  if (desc->epilogue != CUBLASLT_EPILOGUE_DEFAULT && desc->epilogue != CUBLASLT_EPILOGUE_BIAS &&
      desc->epilogue != CUBLASLT_EPILOGUE_BGRADA)
    return blas_fail(CUBLAS_STATUS_NOT_SUPPORTED, name + ": cudasim models the default, bias and BGRADA epilogues only");
  const cudaDataType_t want_scale = desc->compute == CUBLAS_COMPUTE_64F ? CUDA_R_64F : CUDA_R_32F;
  if (desc->scale != want_scale) return blas_fail(CUBLAS_STATUS_NOT_SUPPORTED, name + ": scale type does not suit the compute type");
  if (!supported(desc->compute, a->type, b->type, d->type) || c->type != d->type)
    return blas_fail(CUBLAS_STATUS_NOT_SUPPORTED, name + ": unsupported combination of compute type and A/B/C/D types");
  if (c->rows != d->rows || c->cols != d->cols || c->ld != d->ld)
    return blas_fail(CUBLAS_STATUS_NOT_SUPPORTED, name + ": cudasim models C and D of one layout only");
  *m = static_cast<int64_t>(d->rows);
  *n = static_cast<int64_t>(d->cols);
  *k = static_cast<int64_t>(desc->transa == CUBLAS_OP_N ? a->cols : a->rows);
  const uint64_t a_m = desc->transa == CUBLAS_OP_N ? a->rows : a->cols;
  const uint64_t b_k = desc->transb == CUBLAS_OP_N ? b->rows : b->cols, b_n = desc->transb == CUBLAS_OP_N ? b->cols : b->rows;
  if (a_m != d->rows || b_k != static_cast<uint64_t>(*k) || b_n != d->cols)
    return blas_fail(CUBLAS_STATUS_INVALID_VALUE, name + ": op(A) [" + std::to_string(a_m) + ", " + std::to_string(*k) +
                                                      "], op(B) [" + std::to_string(b_k) + ", " + std::to_string(b_n) +
                                                      "] and D [" + std::to_string(d->rows) + ", " +
                                                      std::to_string(d->cols) + "] do not agree");
  for (const cublasLtMatrixLayoutOpaque_t* l : {a, b, d})
    if (l->ld < std::max<int64_t>(1, static_cast<int64_t>(l->rows)))
      return blas_fail(CUBLAS_STATUS_INVALID_VALUE, name + ": leading dimension " + std::to_string(l->ld) + " < rows " +
                                                        std::to_string(l->rows));
  if (desc->epilogue == CUBLASLT_EPILOGUE_BIAS) {
    const cudaDataType bias = bias_type_of(*desc, d->type);
    // The bias is D's type: an H200's cuBLASLt (CUDA 13.0) offered no algorithm for an
    // f32 bias under a 16-bit D, so gc rounds such a bias to D's type first.
    if (bias != d->type) return blas_fail(CUBLAS_STATUS_NOT_SUPPORTED, name + ": bias type is not D's type");
  }
  if (desc->epilogue == CUBLASLT_EPILOGUE_BGRADA && bias_type_of(*desc, d->type) != d->type)
    return blas_fail(CUBLAS_STATUS_NOT_SUPPORTED, name + ": the bias gradient is of D's type");
  return CUBLAS_STATUS_SUCCESS;
}

}  // namespace
}  // namespace gcsim

cublasStatus_t cublasLtCreate(cublasLtHandle_t* handle) {
  *handle = new cublasLtContext();
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtDestroy(cublasLtHandle_t handle) {
  delete handle;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t* desc, cublasComputeType_t compute,
                                        cudaDataType_t scale_type) {
  *desc = new cublasLtMatmulDescOpaque_t();
  (*desc)->compute = compute;
  (*desc)->scale = scale_type;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t desc) {
  delete desc;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attr,
                                              const void* buf, size_t size) {
  using gcsim::set_value;
  if (!desc) return CUBLAS_STATUS_NOT_INITIALIZED;
  switch (attr) {
    case CUBLASLT_MATMUL_DESC_POINTER_MODE: return set_value(&desc->pointer_mode, buf, size, "POINTER_MODE");
    case CUBLASLT_MATMUL_DESC_TRANSA: return set_value(&desc->transa, buf, size, "TRANSA");
    case CUBLASLT_MATMUL_DESC_TRANSB: return set_value(&desc->transb, buf, size, "TRANSB");
    case CUBLASLT_MATMUL_DESC_EPILOGUE: return set_value(&desc->epilogue, buf, size, "EPILOGUE");
    case CUBLASLT_MATMUL_DESC_BIAS_POINTER: return set_value(&desc->bias, buf, size, "BIAS_POINTER");
    case CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE: return set_value(&desc->bias_type, buf, size, "BIAS_DATA_TYPE");
    default: break;
  }
  return gcsim::blas_fail(CUBLAS_STATUS_NOT_SUPPORTED,
                          "cublasLtMatmulDescSetAttribute: attribute " + std::to_string(attr) + " is not simulated");
}

cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t* layout, cudaDataType type, uint64_t rows,
                                          uint64_t cols, int64_t ld) {
  *layout = new cublasLtMatrixLayoutOpaque_t{type, rows, cols, ld};
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t layout) {
  delete layout;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t* pref) {
  *pref = new cublasLtMatmulPreferenceOpaque_t();
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t pref) {
  delete pref;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t pref,
                                                    cublasLtMatmulPreferenceAttributes_t attr, const void* buf,
                                                    size_t size) {
  using gcsim::set_value;
  if (!pref) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (attr == CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES)
    return set_value(&pref->max_workspace, buf, size, "MAX_WORKSPACE_BYTES");
  if (attr == CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK)
    return set_value(&pref->reduction_mask, buf, size, "REDUCTION_SCHEME_MASK");
  return gcsim::blas_fail(CUBLAS_STATUS_NOT_SUPPORTED,
                          "cublasLtMatmulPreferenceSetAttribute: attribute " + std::to_string(attr) + " is not simulated");
}

// One algorithm: no split of k (reduction scheme NONE, allowed by every mask),
// asking for 1 MiB of workspace when the preference allows that much.
cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc,
                                              cublasLtMatrixLayout_t a, cublasLtMatrixLayout_t b,
                                              cublasLtMatrixLayout_t c, cublasLtMatrixLayout_t d,
                                              cublasLtMatmulPreference_t pref, int requested,
                                              cublasLtMatmulHeuristicResult_t results[], int* returned) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (requested <= 0 || !results || !returned || !pref)
    return gcsim::blas_fail(CUBLAS_STATUS_INVALID_VALUE, "cublasLtMatmulAlgoGetHeuristic: no room for a result");
  int64_t m = 0, n = 0, k = 0;
  const cublasStatus_t status = gcsim::check_matmul("cublasLtMatmulAlgoGetHeuristic", desc, a, b, c, d, &m, &n, &k);
  *returned = 0;
  if (status != CUBLAS_STATUS_SUCCESS) return status;
  cublasLtMatmulHeuristicResult_t r{};
  r.algo.data[0] = gcsim::kSimAlgo;
  r.workspaceSize = pref->max_workspace >= gcsim::kSimAlgoWorkspace ? gcsim::kSimAlgoWorkspace : 0;
  r.state = CUBLAS_STATUS_SUCCESS;
  r.wavesCount = 1.0f;
  results[0] = r;
  *returned = 1;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmul(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc, const void* alpha, const void* A,
                              cublasLtMatrixLayout_t a_desc, const void* B, cublasLtMatrixLayout_t b_desc,
                              const void* beta, const void* C, cublasLtMatrixLayout_t c_desc, void* D,
                              cublasLtMatrixLayout_t d_desc, const cublasLtMatmulAlgo_t* algo, void* workspace,
                              size_t workspace_bytes, cudaStream_t stream) {
  using namespace gcsim;
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  const auto invalid = [](const std::string& what) {
    return blas_fail(CUBLAS_STATUS_INVALID_VALUE, "cublasLtMatmul: " + what);
  };
  int64_t m = 0, n = 0, k = 0;
  const cublasStatus_t status = check_matmul("cublasLtMatmul", desc, a_desc, b_desc, c_desc, d_desc, &m, &n, &k);
  if (status != CUBLAS_STATUS_SUCCESS) return status;
  if (stream != nullptr) return invalid("gc uses only the default stream");
  if (!algo || algo->data[0] != kSimAlgo) return invalid("the algorithm is not one the heuristic returned");
  if (C != D) return blas_fail(CUBLAS_STATUS_NOT_SUPPORTED, "cublasLtMatmul: cudasim models C == D (in place) only");
  // The simulated heuristic asks for kSimAlgoWorkspace whenever it may; gc always allows 32 MiB.
  if (workspace_bytes < kSimAlgoWorkspace) return invalid("a workspace smaller than the algorithm asked for");
  if (!device_memory(workspace, workspace_bytes)) return invalid("the workspace is not device memory");
  if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
  count_gemm();
  if (touches_device_memory(alpha, 4) || touches_device_memory(beta, 4))
    return invalid("alpha/beta point to device memory, but the pointer mode is host");
  const auto extent = [](const cublasLtMatrixLayoutOpaque_t* l) {
    return operand_extent(static_cast<int64_t>(l->rows), static_cast<int64_t>(l->cols), l->ld, l->type);
  };
  if (!device_memory(D, extent(d_desc))) return invalid("D's extent is not inside one device allocation");
  if (k > 0 && !device_memory(A, extent(a_desc))) return invalid("A's extent is not inside one device allocation");
  if (k > 0 && !device_memory(B, extent(b_desc))) return invalid("B's extent is not inside one device allocation");
  const bool has_bias = desc->epilogue == CUBLASLT_EPILOGUE_BIAS, bias_gradient = desc->epilogue == CUBLASLT_EPILOGUE_BGRADA;
  const cudaDataType bias_type = bias_type_of(*desc, d_desc->type);
  if ((has_bias || bias_gradient) &&
      (desc->bias == nullptr || !device_memory(desc->bias, static_cast<size_t>(m) * type_bytes(bias_type))))
    return invalid("the bias (gradient) is not " + std::to_string(m) + " elements (D's rows) of device memory");
  const auto transa = static_cast<cublasOperation_t>(desc->transa);
  product(transa, static_cast<cublasOperation_t>(desc->transb), m, n, k, alpha, A, a_desc->type, a_desc->ld, B,
          b_desc->type, b_desc->ld, beta, D, d_desc->type, d_desc->ld, desc->compute, has_bias ? desc->bias : nullptr,
          bias_type);
  if (bias_gradient) {  // the rows of op(A) summed over k, in order of k
    for (int64_t i = 0; i < m; ++i) {
      double sum64 = 0;
      float sum32 = 0;
      for (int64_t l = 0; l < k; ++l) {
        const double v = load(A, transa == CUBLAS_OP_N ? i + l * a_desc->ld : l + i * a_desc->ld, a_desc->type);
        if (desc->compute == CUBLAS_COMPUTE_64F)
          sum64 += v;
        else
          sum32 += static_cast<float>(v);
      }
      if (desc->compute == CUBLAS_COMPUTE_64F)
        static_cast<double*>(const_cast<void*>(desc->bias))[i] = sum64;
      else
        store_f32(const_cast<void*>(desc->bias), i, bias_type, sum32);
    }
  }
  return CUBLAS_STATUS_SUCCESS;
}
