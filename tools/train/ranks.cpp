// ranks.cpp: what the trainer does across the ranks of a multi-process run
// (trainer.h): data parallel (each rank its share of --batch, the gradients
// summed over the ranks in buckets, the ranks' parameters checked equal, a
// signal seen by any rank, every rank's figures gathered) and model parallel
// (a rank's grid rows of a batch, and its share of the loss). With one rank
// every function here is a no-op or the identity.
#include <algorithm>

#include "kernels/collectives.h"
#include "tools/data/host_tensor.h"
#include "tools/train/trainer.h"

namespace gc {

Tensor Trainer::own_rows(const Tensor& t) const {
  const int64_t grid_nodes = geometry().num_grid_nodes();
  if (!setup_.shard || !t.defined()) return t;
  MemoryScope scope(Category::input);
  Tensor out = Tensor::empty({grid_rows_ * options_.batch, t.cols()}, t.dtype(), t.device());
  for (int b = 0; b < options_.batch; ++b)
    out.slice_rows(b * grid_rows_, grid_rows_).copy_from(t.slice_rows(b * grid_nodes + grid_first_, grid_rows_));
  return out;
}

double Trainer::loss_share() const {
  return static_cast<double>(options_.batch) / options_.global_batch * static_cast<double>(grid_rows_) /
         static_cast<double>(geometry().num_grid_nodes());
}

Communicator& Trainer::comm() const {
  static const std::unique_ptr<Communicator> single = make_single_communicator();
  return setup_.comm ? *setup_.comm : *single;
}

void Trainer::all_reduce_gradients() {
  if (comm().size() == 1) return;
  MemoryScope scope(Category::communication, "gradient_bucket");
  // Buckets of consecutive parameters in backward order (the last made first),
  // one dtype each; a parameter larger than a bucket is a bucket of its own.
  const std::vector<Var>& params = optimizer_->params();
  size_t i = params.size();
  while (i > 0) {
    std::vector<Tensor> grads;
    int64_t elements = 0, bytes = 0;
    DType dtype = DType::f32;
    for (; i > 0; --i) {
      const Var& p = params[i - 1];
      if (!p.grad().defined()) continue;  // no gradient on any rank (the decoder's unused mesh MLP)
      const Tensor& g = p.grad();
      if (!grads.empty() && (g.dtype() != dtype || bytes + static_cast<int64_t>(g.nbytes()) > options_.bucket_bytes)) break;
      dtype = g.dtype();
      grads.push_back(g);
      elements += g.numel();
      bytes += g.nbytes();
    }
    if (grads.empty()) break;
    Tensor bucket = Tensor::empty({elements}, dtype, options_.device);
    int64_t offset = 0;
    for (const Tensor& g : grads) {
      bucket.slice_rows(offset, g.numel()).copy_from(g.reshape({g.numel()}));
      offset += g.numel();
    }
    kernels::all_reduce_sum(comm(), bucket);
    offset = 0;
    for (const Tensor& g : grads) {
      g.reshape({g.numel()}).copy_from(bucket.slice_rows(offset, g.numel()));
      offset += g.numel();
    }
  }
}

bool Trainer::any_rank(bool mine) {
  if (comm().size() == 1) return mine;
  MemoryScope scope(Category::communication, "interrupt");
  Tensor t = data::host_filled({1}, DType::f64, options_.device, [&](data::HostValues& v) { v[0] = mine ? 1.0 : 0.0; });
  kernels::all_reduce_sum(comm(), t);
  return options_.device == Device::meta ? mine : scalar_value(t) > 0;
}

double Trainer::global_loss(double local_loss) {
  if (comm().size() == 1) return local_loss;
  MemoryScope scope(Category::communication, "loss");
  const double share = loss_share();
  Tensor t = data::host_filled({1}, DType::f64, options_.device, [&](data::HostValues& v) { v[0] = local_loss * share; });
  kernels::all_reduce_sum(comm(), t);
  return options_.device == Device::meta ? 0.0 : scalar_value(t);
}

void Trainer::check_ranks_agree(int step) {
  if (comm().size() == 1) return;
  // A 64-bit FNV-1a hash of every parameter's bytes, in two exact 32-bit halves.
  uint64_t hash = 1469598103934665603ull;
  if (options_.device != Device::meta) {
    auto mix = [&hash](const void* data, size_t n) {
      const auto* bytes = static_cast<const unsigned char*>(data);
      for (size_t k = 0; k < n; ++k) hash = (hash ^ bytes[k]) * 1099511628211ull;
    };
    for (const Var& p : optimizer_->params()) {
      if (p.value().device() == Device::cpu) {
        mix(p.value().data(), p.value().nbytes());
      } else {
        const std::vector<double> values = p.value().to_doubles();  // exact for every float dtype
        mix(values.data(), values.size() * sizeof(double));
      }
    }
  }
  MemoryScope scope(Category::communication, "parameter_check");
  const int P = comm().size();
  Tensor mine = data::host_filled({1, 2}, DType::f64, options_.device, [&](data::HostValues& v) {
    v[0] = static_cast<double>(hash >> 32);
    v[1] = static_cast<double>(hash & 0xffffffffu);
  });
  Tensor all = Tensor::empty({P, 2}, DType::f64, options_.device);
  comm().all_gather(mine, all, std::vector<int64_t>(static_cast<size_t>(P), 1));
  if (options_.device == Device::meta) return;
  const std::vector<double> values = all.to_doubles();
  for (int r = 1; r < P; ++r) {
    if (values[2 * r] == values[0] && values[2 * r + 1] == values[1]) continue;
    throw std::runtime_error("data parallel: after step " + std::to_string(step + 1) + " the parameters of rank " +
                             std::to_string(r) + " differ from rank 0's; the ranks must stay bitwise equal (the same "
                             "build and the same device on every rank), so the run stops here");
  }
}

void Trainer::gather_rank_summaries(double step_seconds) {
  memory_.ranks.clear();
  if (comm().size() == 1) return;
  const int P = comm().size();
  constexpr int kFields = 6;
  const CommStats& c = comm().stats();
  const std::vector<double> mine = {static_cast<double>(options_.batch), static_cast<double>(memory_.stats.peak_allocated),
                                    static_cast<double>(memory_.stats.peak_reserved), static_cast<double>(c.bytes_sent),
                                    c.seconds, step_seconds};
  // Gathered after the peaks were taken: these bytes are in no figure.
  std::vector<double> all(static_cast<size_t>(P * kFields));
  {
    MemoryScope scope(Category::communication, "rank_summary");
    Tensor t = data::host_filled({1, kFields}, DType::f64, options_.device, [&](data::HostValues& v) {
      for (int k = 0; k < kFields; ++k) v[static_cast<size_t>(k)] = mine[static_cast<size_t>(k)];
    });
    Tensor gathered = Tensor::empty({P, kFields}, DType::f64, options_.device);
    comm().all_gather(t, gathered, std::vector<int64_t>(static_cast<size_t>(P), 1));
    if (options_.device != Device::meta) all = gathered.to_doubles();
    // A dry run moves nothing: its own rank's figures only (gc_train --ranks gathers the others').
    else for (int k = 0; k < kFields; ++k) all[static_cast<size_t>(comm().rank() * kFields + k)] = mine[static_cast<size_t>(k)];
  }
  for (int r = 0; r < P; ++r) {
    RankSummary s;
    s.rank = r;
    s.replica = r / options_.model_parallel;
    s.shard = r % options_.model_parallel;
    s.batch = static_cast<int>(all[static_cast<size_t>(r * kFields)]);
    s.peak_allocated = static_cast<int64_t>(all[static_cast<size_t>(r * kFields + 1)]);
    s.peak_reserved = static_cast<int64_t>(all[static_cast<size_t>(r * kFields + 2)]);
    s.bytes_sent = static_cast<int64_t>(all[static_cast<size_t>(r * kFields + 3)]);
    s.communication_seconds = all[static_cast<size_t>(r * kFields + 4)];
    s.step_seconds = all[static_cast<size_t>(r * kFields + 5)];
    memory_.ranks.push_back(s);
  }
}

}  // namespace gc
