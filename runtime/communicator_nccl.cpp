// communicator_nccl.cpp: the NCCL backend (cuda tensors), built with CUDA when
// NCCL's header is found (GC_NCCL; see the Makefile).
//
// The ranks agree on NCCL's unique id through the bootstrap communicator (MPI):
// rank 0 makes it and every rank gathers it. Exchanges are grouped point-to-point
// calls (ncclSend/ncclRecv inside ncclGroupStart/End) on gc's one stream (the
// default stream), so they are ordered with the kernels around them; NCCL never
// reduces here (reductions are composed above, in rank order: deterministic).
#if defined(GC_CUDA) && defined(GC_NCCL)
#include <cuda_runtime.h>
#include <nccl.h>

#include <cstring>
#include <stdexcept>
#include <string>

#include "runtime/communicator.h"
#include "runtime/memory_scope.h"

namespace gc {
namespace {

void check(ncclResult_t code, const char* what) {
  if (code == ncclSuccess) return;
  throw std::runtime_error(std::string("NCCL: ") + what + " failed: " + ncclGetErrorString(code));
}

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(int rank, int size, ncclComm_t comm) : Communicator(rank, size), comm_(comm) {}
  ~NcclCommunicator() override { ncclCommDestroy(comm_); }
  const char* backend() const override { return "nccl"; }

 protected:
  void all_to_all_bytes(const Tensor& send, const std::vector<int64_t>& sb, const std::vector<int64_t>& so,
                        Tensor& recv, const std::vector<int64_t>& rb, const std::vector<int64_t>& ro) override {
    if (send.device() != Device::cuda)
      throw std::invalid_argument("NCCL moves cuda tensors; " + send.describe() + " needs the MPI backend");
    const char* send_base = static_cast<const char*>(send.data());
    char* recv_base = static_cast<char*>(recv.data());
    check(ncclGroupStart(), "ncclGroupStart");
    for (int r = 0; r < size(); ++r) {
      if (r == rank()) continue;
      const size_t ru = static_cast<size_t>(r);
      if (sb[ru] > 0) check(ncclSend(send_base + so[ru], static_cast<size_t>(sb[ru]), ncclUint8, r, comm_, nullptr), "ncclSend");
      if (rb[ru] > 0) check(ncclRecv(recv_base + ro[ru], static_cast<size_t>(rb[ru]), ncclUint8, r, comm_, nullptr), "ncclRecv");
    }
    check(ncclGroupEnd(), "ncclGroupEnd");
  }
  void barrier_impl() override {
    // NCCL has no barrier: the stream's work up to here, then the bootstrap's.
    if (cudaStreamSynchronize(nullptr) != cudaSuccess) throw std::runtime_error("NCCL barrier: cudaStreamSynchronize failed");
  }

 private:
  ncclComm_t comm_;
};

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator(Communicator& bootstrap) {
  ncclUniqueId id;
  std::memset(&id, 0, sizeof id);
  if (bootstrap.rank() == 0) check(ncclGetUniqueId(&id), "ncclGetUniqueId");
  // Every rank sends its id (only rank 0's is real) and keeps rank 0's.
  static_assert(sizeof(ncclUniqueId) % sizeof(int32_t) == 0, "the id travels as int32 words");
  const int64_t words = static_cast<int64_t>(sizeof(ncclUniqueId) / sizeof(int32_t));
  MemoryScope scope(Category::communication, "nccl_unique_id");
  Tensor mine = Tensor::from_host(&id, {1, words}, DType::i32, Device::cpu);
  Tensor all = Tensor::empty({bootstrap.size(), words}, DType::i32, Device::cpu);
  bootstrap.all_gather(mine, all, std::vector<int64_t>(static_cast<size_t>(bootstrap.size()), 1));
  std::memcpy(&id, all.data(), sizeof id);
  ncclComm_t comm = nullptr;
  check(ncclCommInitRank(&comm, bootstrap.size(), id, bootstrap.rank()), "ncclCommInitRank");
  return std::make_unique<NcclCommunicator>(bootstrap.rank(), bootstrap.size(), comm);
}

}  // namespace gc
#endif  // GC_CUDA && GC_NCCL
