// communicator.h: moving rows of tensors between the ranks of a multi-process
// run, on the field's engines: MPI for cpu tensors (Open MPI; built when its
// headers are found, GC_MPI), NCCL for cuda tensors (GC_NCCL, with CUDA).
//
// The communicator only moves bytes; it never adds. Reductions are composed
// above it (kernels/collectives.h) from an exchange and a local sum in rank
// order, so that the same ranks and inputs give the same bits every run and
// every rank holds the same result. Every buffer a collective needs is a
// tensor from the caching allocator (category `communication`), made by the
// caller, so the memory table and the dry run see it.
//
// Rows: the operations exchange whole rows (dimension 0) of contiguous tensors;
// `counts[r]` is a row count for rank r, in rank order, and rank r's part is the
// rows after the parts of ranks 0..r-1. A meta tensor moves nothing: a dry run
// calls the same operations and the communicator only counts what would move.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/tensor.h"

namespace gc {

// What a communicator did since it was made (or since reset_stats).
struct CommStats {
  int64_t calls = 0;
  int64_t bytes_sent = 0;       // bytes this rank sent to other ranks
  int64_t bytes_received = 0;   // bytes this rank received from other ranks
  double seconds = 0.0;         // wall time inside the operations (transfer and waiting)
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  int rank() const { return rank_; }
  int size() const { return size_; }
  virtual const char* backend() const = 0;  // "single", "mpi", "nccl", "meta"

  // recv's part q (recv_counts[q] rows) = rank q's send part for this rank
  // (its send_counts[rank()] rows). send and recv: same dtype, device and row
  // width; send has sum(send_counts) rows, recv sum(recv_counts).
  void all_to_all(const Tensor& send, const std::vector<int64_t>& send_counts, Tensor& recv,
                  const std::vector<int64_t>& recv_counts);
  // recv = the ranks' send tensors stacked in rank order; send has counts[rank()]
  // rows, recv sum(counts).
  void all_gather(const Tensor& send, Tensor& recv, const std::vector<int64_t>& counts);
  void barrier();

  const CommStats& stats() const { return stats_; }
  void reset_stats() { stats_ = CommStats{}; }

 protected:
  Communicator(int rank, int size) : rank_(rank), size_(size) {}
  // Byte-level transfers to and from the other ranks (this rank's own part is
  // copied by the caller): to rank r, send's bytes [so[r], so[r] + sb[r]); from
  // rank r, into recv's bytes [ro[r], ro[r] + rb[r]). Only called with size() > 1.
  virtual void all_to_all_bytes(const Tensor& send, const std::vector<int64_t>& send_bytes,
                                const std::vector<int64_t>& send_offsets, Tensor& recv,
                                const std::vector<int64_t>& recv_bytes, const std::vector<int64_t>& recv_offsets) = 0;
  virtual void barrier_impl() = 0;

 private:
  void transfer(const Tensor& send, const std::vector<int64_t>& sb, const std::vector<int64_t>& so, Tensor& recv,
                const std::vector<int64_t>& rb, const std::vector<int64_t>& ro);
  int rank_, size_;
  CommStats stats_;
};

// A process alone (rank 0 of 1): the operations are copies.
std::unique_ptr<Communicator> make_single_communicator();
// Rank `rank` of `size` in a dry run: validates and counts, moves nothing
// (meta tensors only); one process can stand for every rank in turn.
std::unique_ptr<Communicator> make_meta_communicator(int rank, int size);

// True when this process was started by an MPI launcher with more than one
// rank (mpirun/mpiexec set OMPI_COMM_WORLD_SIZE, PMI_SIZE or PMIX_RANK).
bool launched_by_mpi();
int launcher_world_size();  // 1 when not launched by MPI
// Whether this build has each engine.
bool built_with_mpi();
bool built_with_nccl();

// The world: MPI when launched by an MPI launcher (initializing MPI once;
// finalized at exit), the single communicator otherwise. Throws
// std::runtime_error naming the remedy when the process was launched with
// several ranks but this build has no MPI.
Communicator& world_communicator();

// This rank's index among the ranks on its machine (the launcher's local rank:
// OMPI_COMM_WORLD_LOCAL_RANK, MPI_LOCALRANKID or SLURM_LOCALID; 0 when none).
int launcher_local_rank();

// The communicator for tensors of `device` over the ranks of `world`: null for
// cpu and meta (world itself moves them); for cuda, this rank's GPU (its local
// rank modulo the GPU count) is selected and an NCCL communicator is made.
// Throws std::runtime_error naming the remedy when the build has no NCCL.
std::unique_ptr<Communicator> make_device_communicator(Device device, Communicator& world);

#ifdef GC_MPI
std::unique_ptr<Communicator> make_mpi_communicator();  // MPI_COMM_WORLD
#endif
#if defined(GC_CUDA) && defined(GC_NCCL)
// NCCL over the ranks of `bootstrap` (which carries NCCL's unique id): cuda tensors.
std::unique_ptr<Communicator> make_nccl_communicator(Communicator& bootstrap);
#endif

}  // namespace gc
