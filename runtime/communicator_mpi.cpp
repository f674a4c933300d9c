// communicator_mpi.cpp: the MPI backend (cpu tensors), built when Open MPI's
// headers are found (GC_MPI; see the Makefile).
//
// An exchange is P - 1 rounds: in round s this rank sends to
// rank + s and receives from rank - s (mod P), so every pair meets once and no
// round waits on another pair. Messages go in pieces of at most 1 GiB because
// MPI's counts are ints (nonblocking, waited for at the end of the round). MPI is initialized on first use and finalized at exit.
#ifdef GC_MPI
#include <mpi.h>

#include <algorithm>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "runtime/communicator.h"

namespace gc {
namespace {

constexpr int64_t kPieceBytes = int64_t(1) << 30;

void check(int code, const char* what) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  throw std::runtime_error(std::string("MPI: ") + what + " failed: " + std::string(text, static_cast<size_t>(length)));
}

void finalize_at_exit() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator(int rank, int size) : Communicator(rank, size) {}
  const char* backend() const override { return "mpi"; }

 protected:
  void all_to_all_bytes(const Tensor& send, const std::vector<int64_t>& sb, const std::vector<int64_t>& so,
                        Tensor& recv, const std::vector<int64_t>& rb, const std::vector<int64_t>& ro) override {
    if (send.device() != Device::cpu && !send.is_meta())
      throw std::invalid_argument("MPI moves cpu tensors; " + send.describe() + " needs the NCCL backend");
    if (send.is_meta()) throw std::invalid_argument("MPI cannot move meta tensors (a dry run uses the meta communicator)");
    const int p = size(), me = rank();
    const char* send_base = static_cast<const char*>(send.data());
    char* recv_base = static_cast<char*>(recv.data());
    for (int step = 1; step < p; ++step) {
      const int to = (me + step) % p, from = (me - step + p) % p;
      // Pieces of one message match in order (MPI does not overtake on one tag).
      std::vector<MPI_Request> requests;
      for (int64_t done = 0; done < rb[static_cast<size_t>(from)]; done += kPieceBytes) {
        const int piece = static_cast<int>(std::min(kPieceBytes, rb[static_cast<size_t>(from)] - done));
        requests.emplace_back();
        check(MPI_Irecv(recv_base + ro[static_cast<size_t>(from)] + done, piece, MPI_BYTE, from, step, MPI_COMM_WORLD,
                        &requests.back()),
              "MPI_Irecv");
      }
      for (int64_t done = 0; done < sb[static_cast<size_t>(to)]; done += kPieceBytes) {
        const int piece = static_cast<int>(std::min(kPieceBytes, sb[static_cast<size_t>(to)] - done));
        requests.emplace_back();
        check(MPI_Isend(send_base + so[static_cast<size_t>(to)] + done, piece, MPI_BYTE, to, step, MPI_COMM_WORLD,
                        &requests.back()),
              "MPI_Isend");
      }
      check(MPI_Waitall(static_cast<int>(requests.size()), requests.data(), MPI_STATUSES_IGNORE), "MPI_Waitall");
    }
  }
  void barrier_impl() override { check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier"); }
};

}  // namespace

std::unique_ptr<Communicator> make_mpi_communicator() {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    int provided = 0;
    check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
    std::atexit(finalize_at_exit);
  }
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  int rank = 0, size = 1;
  check(MPI_Comm_rank(MPI_COMM_WORLD, &rank), "MPI_Comm_rank");
  check(MPI_Comm_size(MPI_COMM_WORLD, &size), "MPI_Comm_size");
  return std::make_unique<MpiCommunicator>(rank, size);
}

}  // namespace gc
#endif  // GC_MPI
