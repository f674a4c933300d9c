// test_cudasim.cpp: the simulator that runs the cuda backend's tests on the CPU
// (tests/cudasim) catches what its README says it catches. Built into every test
// binary, but only the simulated build (GC_CUDA_SIM) has tests here: a missing
// barrier changes a result, a barrier or shuffle that cannot complete fails the
// launch, as do a launch shape beyond the GPU's limits and a host pointer given to
// a kernel; copies whose kind is wrong and cuBLAS calls with short leading
// dimensions or operands beyond their allocation are refused; fresh device memory
// reads as NaN; a full device refuses cudaMalloc.
#include <gtest/gtest.h>

#ifdef GC_CUDA_SIM

#include <cmath>
#include <cstdint>
#include <vector>

#include "cublasLt.h"
#include "cublas_v2.h"
#include "cuda_runtime.h"

namespace {

constexpr int kThreads = 64;

// Device memory of n values of T, freed at scope exit.
template <class T>
struct DeviceBuffer {
  T* data = nullptr;
  explicit DeviceBuffer(size_t n) { EXPECT_EQ(cudaMalloc(&data, n * sizeof(T)), cudaSuccess); }
  ~DeviceBuffer() { cudaFree(data); }
};

// Each thread writes its index to shared memory; thread t then reads its
// neighbour's slot, with or without a barrier in between.
void neighbour_kernel(int* out, bool barrier) {
  __shared__ int slots[kThreads];
  ::gcsim::fresh_shared(slots, sizeof(slots));  // what translate.pl adds after a __shared__ array
  const int t = static_cast<int>(threadIdx.x);
  slots[t] = t + 1;
  if (barrier) __syncthreads();
  out[t] = slots[(t + 1) % kThreads];
}

std::vector<int> neighbours(bool barrier, int launches) {
  DeviceBuffer<int> out(kThreads);
  std::vector<int> host(kThreads * launches);
  for (int l = 0; l < launches; ++l) {
    ::gcsim::launch(::gcsim::Config(1, kThreads), "neighbour", [&](auto&... p) { neighbour_kernel(p...); }, out.data,
                    barrier);
    EXPECT_EQ(cudaGetLastError(), cudaSuccess);
    cudaMemcpy(host.data() + l * kThreads, out.data, kThreads * sizeof(int), cudaMemcpyDeviceToHost);
  }
  return host;
}

TEST(CudaSim, AMissingBarrierChangesTheResult) {
  std::vector<int> expected(kThreads);
  for (int t = 0; t < kThreads; ++t) expected[t] = (t + 1) % kThreads + 1;
  const std::vector<int> with = neighbours(true, 2);
  for (int l = 0; l < 2; ++l)
    EXPECT_EQ(std::vector<int>(with.begin() + l * kThreads, with.begin() + (l + 1) * kThreads), expected);
  // Without the barrier, threads run one after another in one direction per
  // launch: in one of the two launches, some read a slot before its writer ran
  // (and find the fresh block's 0xff bytes).
  const std::vector<int> without = neighbours(false, 2);
  bool differs = false;
  for (int l = 0; l < 2; ++l)
    differs = differs || std::vector<int>(without.begin() + l * kThreads, without.begin() + (l + 1) * kThreads) != expected;
  EXPECT_TRUE(differs);
}

void divergent_barrier_kernel(int* out) {
  const int t = static_cast<int>(threadIdx.x);
  if (t < 32) {
    __syncthreads();
  } else {
    out[t] = __shfl_xor_sync(0xffffffffu, t, 1);  // warp 1 waits at a shuffle, warp 0 at the barrier
    __syncthreads();
  }
}

TEST(CudaSim, ABarrierThatCannotCompleteFailsTheLaunch) {
  DeviceBuffer<int> out(kThreads);
  ::gcsim::launch(::gcsim::Config(1, kThreads), "divergent", [&](auto&... p) { divergent_barrier_kernel(p...); },
                  out.data);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess) << "warp 1's shuffle completes; then both warps meet";

  // Half of warp 0 at a shuffle, the other half at __syncthreads: no way forward.
  ::gcsim::launch(::gcsim::Config(1, 32), "split warp", [&](auto&... p) {
    (void)sizeof...(p);
    if (threadIdx.x < 16)
      (void)__shfl_xor_sync(0xffffffffu, 1, 1);
    else
      __syncthreads();
  });
  EXPECT_EQ(cudaGetLastError(), cudaErrorLaunchFailure);
}

TEST(CudaSim, AShuffleWithExitedLanesFailsTheLaunch) {
  ::gcsim::launch(::gcsim::Config(1, 32), "exited lanes", [&](auto&... p) {
    (void)sizeof...(p);
    if (threadIdx.x >= 8) return;
    (void)__shfl_xor_sync(0xffffffffu, 1, 1);
  });
  EXPECT_EQ(cudaGetLastError(), cudaErrorLaunchFailure);
  // A barrier where some threads have exited is fine (they no longer count).
  ::gcsim::launch(::gcsim::Config(1, 64), "exited threads", [&](auto&... p) {
    (void)sizeof...(p);
    if (threadIdx.x >= 32) return;
    __syncthreads();
  });
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
}

TEST(CudaSim, LaunchShapesBeyondTheGpusLimitsFail) {
  auto empty = [&](auto&... p) { (void)sizeof...(p); };
  ::gcsim::launch(::gcsim::Config(1, 2048), "2048 threads", empty);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  ::gcsim::launch(::gcsim::Config(dim3(1, 70000), 32), "grid y 70000", empty);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  ::gcsim::launch(::gcsim::Config(0, 32), "empty grid", empty);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  ::gcsim::launch(::gcsim::Config(dim3(2, 3), dim3(32, 2)), "2-D", empty);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
}

void write_kernel(float* out) { out[threadIdx.x] = 1.0f; }

TEST(CudaSim, AHostPointerGivenToAKernelFailsTheLaunch) {
  std::vector<float> host(32, 0.0f);
  ::gcsim::launch(::gcsim::Config(1, 32), "host pointer", [&](auto&... p) { write_kernel(p...); }, host.data());
  EXPECT_EQ(cudaGetLastError(), cudaErrorIllegalAddress);
  EXPECT_EQ(host[0], 0.0f) << "the kernel must not run";
}

TEST(CudaSim, CopiesCheckEachSideAgainstTheirKind) {
  DeviceBuffer<float> device(16);
  std::vector<float> host(16, 2.0f);
  EXPECT_EQ(cudaMemcpy(device.data, host.data(), 64, cudaMemcpyHostToDevice), cudaSuccess);
  EXPECT_EQ(cudaMemcpy(host.data(), device.data, 64, cudaMemcpyHostToDevice), cudaErrorInvalidValue);
  EXPECT_EQ(cudaMemcpy(host.data(), device.data, 128, cudaMemcpyDeviceToHost), cudaErrorInvalidValue)
      << "beyond the allocation";
  EXPECT_EQ(cudaMemcpy2D(device.data, 16, host.data(), 16, 32, 2, cudaMemcpyHostToDevice), cudaErrorInvalidPitchValue);
  cudaGetLastError();
}

TEST(CudaSim, FreshDeviceMemoryReadsAsNaNAndAFullDeviceRefuses) {
  DeviceBuffer<float> device(8);
  std::vector<float> host(8, 0.0f);
  ASSERT_EQ(cudaMemcpy(host.data(), device.data, 32, cudaMemcpyDeviceToHost), cudaSuccess);
  for (float v : host) EXPECT_TRUE(std::isnan(v));
  size_t free_bytes = 0, total = 0;
  ASSERT_EQ(cudaMemGetInfo(&free_bytes, &total), cudaSuccess);
  void* too_big = nullptr;
  EXPECT_EQ(cudaMalloc(&too_big, free_bytes + 1), cudaErrorMemoryAllocation);
  EXPECT_EQ(too_big, nullptr);
  cudaGetLastError();
}

TEST(CudaSim, CublasChecksLeadingDimensionsAndOperandExtents) {
  cublasHandle_t handle = nullptr;
  ASSERT_EQ(cublasCreate(&handle), CUBLAS_STATUS_SUCCESS);
  DeviceBuffer<float> a(6), b(6), c(4), workspace(1024);
  ASSERT_EQ(cublasSetWorkspace(handle, workspace.data, 4096), CUBLAS_STATUS_SUCCESS);
  const float alpha = 1.0f, beta = 0.0f;
  // Column-major C[2x2] = A[2x3] B[3x2].
  const std::vector<float> ha = {1, 2, 3, 4, 5, 6}, hb = {1, 0, 1, 0, 1, 1};
  cudaMemcpy(a.data, ha.data(), 24, cudaMemcpyHostToDevice);
  cudaMemcpy(b.data, hb.data(), 24, cudaMemcpyHostToDevice);
  EXPECT_EQ(cublasGemmEx_64(handle, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 3, &alpha, a.data, CUDA_R_32F, 2, b.data,
                            CUDA_R_32F, 3, &beta, c.data, CUDA_R_32F, 2, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
            CUBLAS_STATUS_SUCCESS);
  std::vector<float> hc(4);
  cudaMemcpy(hc.data(), c.data, 16, cudaMemcpyDeviceToHost);
  // C[:,0] = A[:,0] + A[:,2] = (6, 8); C[:,1] = A[:,1] + A[:,2] = (8, 10).
  EXPECT_EQ(hc, (std::vector<float>{6, 8, 8, 10}));
  EXPECT_EQ(cublasGemmEx_64(handle, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 3, &alpha, a.data, CUDA_R_32F, 1, b.data,
                            CUDA_R_32F, 3, &beta, c.data, CUDA_R_32F, 2, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
            CUBLAS_STATUS_INVALID_VALUE)
      << "lda below the rows of A";
  EXPECT_EQ(cublasGemmEx_64(handle, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 3, &alpha, a.data, CUDA_R_32F, 4, b.data,
                            CUDA_R_32F, 3, &beta, c.data, CUDA_R_32F, 2, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
            CUBLAS_STATUS_INVALID_VALUE)
      << "lda 4 makes A span 10 floats of a 6-float allocation";
  EXPECT_EQ(cublasGemmEx_64(handle, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 3, &alpha, a.data, CUDA_R_16BF, 2, b.data,
                            CUDA_R_32F, 3, &beta, c.data, CUDA_R_32F, 2, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
            CUBLAS_STATUS_NOT_SUPPORTED)
      << "A and B of different types";
  cublasDestroy(handle);
}

// cuBLASLt with the bias epilogue: the bias (D's rows) added before D's one
// rounding; C and D one matrix; the algorithm and the workspace the heuristic gave;
// the bias-gradient epilogue (BGRADA).
TEST(CudaSim, CublasLtAddsTheBiasAndChecksItsDescriptors) {
  cublasLtHandle_t handle = nullptr;
  ASSERT_EQ(cublasLtCreate(&handle), CUBLAS_STATUS_SUCCESS);
  DeviceBuffer<float> a(6), b(6), c(4), other(4), bias(2), short_bias(1), workspace(size_t(1) << 18);
  const std::vector<float> ha = {1, 2, 3, 4, 5, 6}, hb = {1, 0, 1, 0, 1, 1}, hbias = {0.5f, -1};
  cudaMemcpy(a.data, ha.data(), 24, cudaMemcpyHostToDevice);
  cudaMemcpy(b.data, hb.data(), 24, cudaMemcpyHostToDevice);
  cudaMemcpy(bias.data, hbias.data(), 8, cudaMemcpyHostToDevice);
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t la = nullptr, lb = nullptr, lc = nullptr, wrong = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  ASSERT_EQ(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), CUBLAS_STATUS_SUCCESS);
  const uint32_t epilogue = CUBLASLT_EPILOGUE_BIAS;
  ASSERT_EQ(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof(epilogue)),
            CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, 8),
            CUBLAS_STATUS_INVALID_VALUE)
      << "a value of the wrong size";
  cublasLtMatrixLayoutCreate(&la, CUDA_R_32F, 2, 3, 2);
  cublasLtMatrixLayoutCreate(&lb, CUDA_R_32F, 3, 2, 3);
  cublasLtMatrixLayoutCreate(&lc, CUDA_R_32F, 2, 2, 2);
  cublasLtMatrixLayoutCreate(&wrong, CUDA_R_32F, 4, 2, 4);
  cublasLtMatmulPreferenceCreate(&pref);
  const uint64_t max_workspace = uint64_t(1) << 20;
  cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &max_workspace,
                                       sizeof(max_workspace));
  cublasLtMatmulHeuristicResult_t result{};
  int returned = 0;
  ASSERT_EQ(cublasLtMatmulAlgoGetHeuristic(handle, desc, la, lb, lc, lc, pref, 1, &result, &returned),
            CUBLAS_STATUS_SUCCESS);
  ASSERT_EQ(returned, 1);
  EXPECT_EQ(cublasLtMatmulAlgoGetHeuristic(handle, desc, la, wrong, lc, lc, pref, 1, &result, &returned),
            CUBLAS_STATUS_INVALID_VALUE)
      << "op(B) of 4 x 2 against op(A) of 2 x 3";
  const float alpha = 1.0f, beta = 0.0f;
  const auto matmul = [&](const void* bias_ptr, void* d, const cublasLtMatmulAlgo_t* algo, size_t ws_bytes) {
    cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias_ptr, sizeof(bias_ptr));
    return cublasLtMatmul(handle, desc, &alpha, a.data, la, b.data, lb, &beta, c.data, lc, d, lc, algo,
                          workspace.data, ws_bytes, nullptr);
  };
  ASSERT_EQ(matmul(bias.data, c.data, &result.algo, result.workspaceSize), CUBLAS_STATUS_SUCCESS);
  std::vector<float> hc(4);
  cudaMemcpy(hc.data(), c.data, 16, cudaMemcpyDeviceToHost);
  // The product of the cuBLAS test above, (6, 8, 8, 10), plus the bias by row.
  EXPECT_EQ(hc, (std::vector<float>{6.5f, 7, 8.5f, 9}));
  EXPECT_EQ(matmul(short_bias.data, c.data, &result.algo, result.workspaceSize), CUBLAS_STATUS_INVALID_VALUE)
      << "a bias shorter than D's rows";
  EXPECT_EQ(matmul(bias.data, other.data, &result.algo, result.workspaceSize), CUBLAS_STATUS_NOT_SUPPORTED)
      << "D apart from C";
  EXPECT_EQ(matmul(bias.data, c.data, &result.algo, result.workspaceSize / 2), CUBLAS_STATUS_INVALID_VALUE)
      << "less workspace than the algorithm asked for";
  const cublasLtMatmulAlgo_t made_up{};
  EXPECT_EQ(matmul(bias.data, c.data, &made_up, result.workspaceSize), CUBLAS_STATUS_INVALID_VALUE)
      << "an algorithm the heuristic did not return";
  // BGRADA: the rows of A summed over k into the vector (D's type), C still A B (+ beta C).
  const uint32_t bgrada = CUBLASLT_EPILOGUE_BGRADA;
  cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &bgrada, sizeof(bgrada));
  ASSERT_EQ(cublasLtMatmulAlgoGetHeuristic(handle, desc, la, lb, lc, lc, pref, 1, &result, &returned),
            CUBLAS_STATUS_SUCCESS);
  ASSERT_EQ(matmul(bias.data, c.data, &result.algo, result.workspaceSize), CUBLAS_STATUS_SUCCESS);
  std::vector<float> sums(2);
  cudaMemcpy(sums.data(), bias.data, 8, cudaMemcpyDeviceToHost);
  cudaMemcpy(hc.data(), c.data, 16, cudaMemcpyDeviceToHost);
  EXPECT_EQ(sums, (std::vector<float>{9, 12}));  // A = [[1, 3, 5], [2, 4, 6]]
  EXPECT_EQ(hc, (std::vector<float>{6, 8, 8, 10}));
  const int32_t half = CUDA_R_16F;
  cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &half, sizeof(half));
  EXPECT_EQ(cublasLtMatmulAlgoGetHeuristic(handle, desc, la, lb, lc, lc, pref, 1, &result, &returned),
            CUBLAS_STATUS_NOT_SUPPORTED)
      << "a bias gradient of another type than D's";
  cublasLtMatmulPreferenceDestroy(pref);
  for (cublasLtMatrixLayout_t l : {la, lb, lc, wrong}) cublasLtMatrixLayoutDestroy(l);
  cublasLtMatmulDescDestroy(desc);
  cublasLtDestroy(handle);
}

}  // namespace

#endif  // GC_CUDA_SIM
