// communicator.cpp: validation, counting and timing of the transfers; the
// single-process and meta communicators; finding out how the process was launched.
#include "runtime/communicator.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <stdexcept>

#include "runtime/device.h"

namespace gc {
namespace {

void fail(const char* op, const std::string& what) { throw std::invalid_argument(std::string(op) + ": " + what); }

int64_t row_bytes(const Tensor& t) { return t.rows() == 0 ? 0 : static_cast<int64_t>(t.nbytes()) / t.rows(); }

// Rows to bytes, with the offsets of each rank's part; checks the counts.
void parts(const char* op, const char* name, const std::vector<int64_t>& counts, int size, int64_t rows,
           int64_t bytes_per_row, std::vector<int64_t>& bytes, std::vector<int64_t>& offsets) {
  if (static_cast<int>(counts.size()) != size)
    fail(op, std::string(name) + " has " + std::to_string(counts.size()) + " entries for " + std::to_string(size) +
                 " ranks");
  bytes.assign(counts.size(), 0);
  offsets.assign(counts.size(), 0);
  int64_t total = 0;
  for (size_t r = 0; r < counts.size(); ++r) {
    if (counts[r] < 0) fail(op, std::string(name) + " has a negative count");
    offsets[r] = total * bytes_per_row;
    bytes[r] = counts[r] * bytes_per_row;
    total += counts[r];
  }
  if (total != rows)
    fail(op, std::string(name) + " add up to " + std::to_string(total) + " rows, the tensor has " + std::to_string(rows));
}

void check_pair(const char* op, const Tensor& send, const Tensor& recv) {
  if (!send.defined() || !recv.defined()) fail(op, "undefined tensor");
  if (send.dtype() != recv.dtype() || send.device() != recv.device())
    fail(op, "send is " + send.describe() + " but recv is " + recv.describe());
  if (send.dim() < 1 || recv.dim() < 1 || send.cols() != recv.cols())
    fail(op, "send " + send.describe() + " and recv " + recv.describe() + " must have rows of the same width");
}

class Timer {
 public:
  explicit Timer(double& seconds) : seconds_(seconds), start_(std::chrono::steady_clock::now()) {}
  ~Timer() { seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count(); }

 private:
  double& seconds_;
  std::chrono::steady_clock::time_point start_;
};

class SingleCommunicator final : public Communicator {
 public:
  SingleCommunicator() : Communicator(0, 1) {}
  const char* backend() const override { return "single"; }

 protected:
  void all_to_all_bytes(const Tensor&, const std::vector<int64_t>&, const std::vector<int64_t>&, Tensor&,
                        const std::vector<int64_t>&, const std::vector<int64_t>&) override {}  // never called: one rank
  void barrier_impl() override {}
};

class MetaCommunicator final : public Communicator {
 public:
  MetaCommunicator(int rank, int size) : Communicator(rank, size) {}
  const char* backend() const override { return "meta"; }

 protected:
  void all_to_all_bytes(const Tensor& send, const std::vector<int64_t>&, const std::vector<int64_t>&, Tensor& recv,
                        const std::vector<int64_t>&, const std::vector<int64_t>&) override {
    if (!send.is_meta() || !recv.is_meta()) fail("all_to_all", "a dry-run communicator moves only meta tensors");
  }
  void barrier_impl() override {}
};

int env_int(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return -1;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  return (*end == '\0' && n >= 0 && n < (1 << 20)) ? static_cast<int>(n) : -1;
}

}  // namespace

void Communicator::all_to_all(const Tensor& send, const std::vector<int64_t>& send_counts, Tensor& recv,
                              const std::vector<int64_t>& recv_counts) {
  check_pair("all_to_all", send, recv);
  std::vector<int64_t> sb, so, rb, ro;
  parts("all_to_all", "send counts", send_counts, size_, send.rows(), row_bytes(send), sb, so);
  parts("all_to_all", "recv counts", recv_counts, size_, recv.rows(), row_bytes(recv), rb, ro);
  if (sb[static_cast<size_t>(rank_)] != rb[static_cast<size_t>(rank_)])
    fail("all_to_all", "this rank sends itself " + std::to_string(send_counts[static_cast<size_t>(rank_)]) +
                           " rows but expects " + std::to_string(recv_counts[static_cast<size_t>(rank_)]));
  transfer(send, sb, so, recv, rb, ro);
}

void Communicator::all_gather(const Tensor& send, Tensor& recv, const std::vector<int64_t>& counts) {
  check_pair("all_gather", send, recv);
  if (static_cast<int>(counts.size()) == size_ && send.rows() != counts[static_cast<size_t>(rank_)])
    fail("all_gather", "send has " + std::to_string(send.rows()) + " rows, counts say " +
                           std::to_string(counts[static_cast<size_t>(rank_)]) + " for this rank");
  // An all-gather is an all-to-all that sends the whole of `send` to every rank.
  std::vector<int64_t> sb, so, rb, ro;
  parts("all_gather", "counts", counts, size_, recv.rows(), row_bytes(recv), rb, ro);
  sb.assign(static_cast<size_t>(size_), static_cast<int64_t>(send.nbytes()));
  so.assign(static_cast<size_t>(size_), 0);
  transfer(send, sb, so, recv, rb, ro);
}

void Communicator::transfer(const Tensor& send, const std::vector<int64_t>& sb, const std::vector<int64_t>& so,
                            Tensor& recv, const std::vector<int64_t>& rb, const std::vector<int64_t>& ro) {
  Timer timer(stats_.seconds);
  const size_t me = static_cast<size_t>(rank_);
  if (!recv.is_meta() && rb[me] > 0)
    device_copy(static_cast<char*>(recv.data()) + ro[me], recv.device(),
                static_cast<const char*>(send.data()) + so[me], send.device(), static_cast<size_t>(rb[me]));
  if (size_ > 1) all_to_all_bytes(send, sb, so, recv, rb, ro);
  ++stats_.calls;
  for (int r = 0; r < size_; ++r)
    if (r != rank_) {
      stats_.bytes_sent += sb[static_cast<size_t>(r)];
      stats_.bytes_received += rb[static_cast<size_t>(r)];
    }
}

void Communicator::barrier() {
  Timer timer(stats_.seconds);
  barrier_impl();
  ++stats_.calls;
}

std::unique_ptr<Communicator> make_single_communicator() { return std::make_unique<SingleCommunicator>(); }

std::unique_ptr<Communicator> make_meta_communicator(int rank, int size) {
  if (size < 1 || rank < 0 || rank >= size)
    throw std::invalid_argument("meta communicator: rank " + std::to_string(rank) + " of " + std::to_string(size));
  return std::make_unique<MetaCommunicator>(rank, size);
}

int launcher_world_size() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS"}) {
    const int n = env_int(name);
    if (n > 0) return n;
  }
  return 1;
}

bool launched_by_mpi() { return launcher_world_size() > 1; }

bool built_with_mpi() {
#ifdef GC_MPI
  return true;
#else
  return false;
#endif
}

bool built_with_nccl() {
#if defined(GC_CUDA) && defined(GC_NCCL)
  return true;
#else
  return false;
#endif
}

int launcher_local_rank() {
  for (const char* name : {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID"}) {
    const char* value = std::getenv(name);
    if (value && *value) return std::max(0, std::atoi(value));
  }
  return 0;
}

std::unique_ptr<Communicator> make_device_communicator(Device device, Communicator& world) {
  if (device != Device::cuda) return nullptr;
  cuda_select_device(launcher_local_rank());
#if defined(GC_CUDA) && defined(GC_NCCL)
  return make_nccl_communicator(world);
#else
  (void)world;
  throw std::runtime_error("--device cuda on several ranks needs NCCL between the GPUs, and this build has none: "
                           "build with CUDA (nvcc on the PATH) where the toolkit ships nccl.h and libnccl");
#endif
}

Communicator& world_communicator() {
  static std::unique_ptr<Communicator> world = [] {
    if (!launched_by_mpi()) return make_single_communicator();
#ifdef GC_MPI
    return make_mpi_communicator();
#else
    throw std::runtime_error("this process was started by an MPI launcher with " + std::to_string(launcher_world_size()) +
                             " ranks, but gc was built without MPI: install Open MPI (apt-get install openmpi-bin "
                             "libopenmpi-dev) and rebuild with make");
#endif
  }();
  return *world;
}

}  // namespace gc
