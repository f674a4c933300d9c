// device_geometry.cpp: the graphs on the device (graphcast.h's upload_geometry
// and halo_extend). Each graph is replicated per sample of the batch (block
// diagonal, edges still sorted by receiver), the encoder's and decoder's cut
// into fixed edge blocks, and every index, CSR order and offsets tensor is
// checked once here (kernels::check_graph_*), so the step's graph ops check
// nothing. Model parallel: a rank's shard (partition.h) with its halos.
//
// The order of uploads fixes the order, sizes and labels of the `input`
// allocations, which dry runs reproduce and the published figures were
// measured with.
#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/elementwise.h"
#include "kernels/index.h"
#include "model/graphcast.h"
#include "model/partition.h"

namespace gc::model {

namespace {

Tensor upload_i32(const std::vector<int32_t>& host, Device device) {
  return Tensor::from_host(host.data(), {static_cast<int64_t>(host.size())}, DType::i32, device);
}

// Index tensors of `blocks` receiver ranges with balanced edge counts.
std::vector<EdgeBlock> make_blocks(const Graph& g, const std::vector<int32_t>& receiver_offsets, int blocks,
                                   const DeviceGraph& whole, Device device) {
  std::vector<EdgeBlock> out;
  const int64_t edges = g.num_edges();
  int64_t receiver = 0;
  for (int b = 0; b < blocks; ++b) {
    const int64_t target_end = edges * (b + 1) / blocks;
    int64_t end_receiver = receiver;
    while (end_receiver < g.num_receivers && receiver_offsets[static_cast<size_t>(end_receiver + 1)] <= target_end) ++end_receiver;
    if (b == blocks - 1) end_receiver = g.num_receivers;
    if (end_receiver == receiver && receiver < g.num_receivers) ++end_receiver;  // never an empty range mid-way
    EdgeBlock block;
    block.first_receiver = receiver;
    block.receivers = end_receiver - receiver;
    block.first_edge = receiver_offsets[static_cast<size_t>(receiver)];
    block.edges = receiver_offsets[static_cast<size_t>(end_receiver)] - block.first_edge;
    // The block's senders, listed once each in ascending order, and each edge's
    // position in that list: the gather's backward sums into the listed rows only.
    std::vector<int32_t> sender_rows(g.senders.begin() + block.first_edge,
                                     g.senders.begin() + block.first_edge + block.edges);
    std::sort(sender_rows.begin(), sender_rows.end());
    sender_rows.erase(std::unique(sender_rows.begin(), sender_rows.end()), sender_rows.end());
    // The block's edges in the graph's own order (sorted by receiver; a shard's
    // keep the global order within a receiver): no re-sorting, so the sender CSR
    // below matches the index slice, and each group sums in ascending edge order
    // as the whole graph's CSR would.
    Graph local;
    local.num_senders = static_cast<int64_t>(sender_rows.size());
    local.num_receivers = block.receivers;
    for (int64_t e = block.first_edge; e < block.first_edge + block.edges; ++e) {
      const int32_t s = g.senders[static_cast<size_t>(e)];
      local.senders.push_back(
          static_cast<int32_t>(std::lower_bound(sender_rows.begin(), sender_rows.end(), s) - sender_rows.begin()));
      local.receivers.push_back(g.receivers[static_cast<size_t>(e)] - static_cast<int32_t>(receiver));
    }
    const SenderCsr csr = local.sender_csr();
    std::vector<int32_t> identity(static_cast<size_t>(block.edges)), local_offsets, receiver_rows;
    for (int64_t e = 0; e < block.edges; ++e) identity[static_cast<size_t>(e)] = static_cast<int32_t>(e);
    for (int64_t r = receiver; r <= end_receiver; ++r)
      local_offsets.push_back(receiver_offsets[static_cast<size_t>(r)] - static_cast<int32_t>(block.first_edge));
    for (int64_t r = receiver; r < end_receiver; ++r) receiver_rows.push_back(static_cast<int32_t>(r));
    block.senders.index = whole.senders.index.slice_rows(block.first_edge, block.edges);
    block.senders.order = upload_i32(csr.order, device);
    block.senders.offsets = upload_i32(csr.offsets, device);
    block.senders.rows = upload_i32(sender_rows, device);
    block.senders.num_nodes = g.num_senders;
    block.segment_offsets = upload_i32(local_offsets, device);
    // The receivers are the range itself: groups in edge order (the identity),
    // the segment offsets, the range's rows.
    block.receivers_csr.index = whole.receivers.index.slice_rows(block.first_edge, block.edges);
    block.receivers_csr.order = upload_i32(identity, device);
    block.receivers_csr.offsets = block.segment_offsets;
    block.receivers_csr.rows = upload_i32(receiver_rows, device);
    block.receivers_csr.num_nodes = g.num_receivers;
    // Checked once here, so the step's gathers, sums and row adds skip their checks.
    kernels::check_graph_index(block.senders.order, block.edges, "graph upload: a block's sender order");
    kernels::check_graph_offsets(block.senders.offsets, block.edges, "graph upload: a block's sender offsets");
    kernels::check_graph_index(block.senders.rows, g.num_senders, "graph upload: a block's senders");
    kernels::check_graph_index(block.receivers_csr.order, block.edges, "graph upload: a block's receiver order");
    kernels::check_graph_index(block.receivers_csr.rows, g.num_receivers, "graph upload: a block's receivers");
    kernels::check_graph_offsets(block.segment_offsets, block.edges, "graph upload: a block's segment offsets");
    out.push_back(std::move(block));
    receiver = end_receiver;
  }
  return out;
}

// The graph replicated `batch` times: sample b's senders/receivers are offset by
// b * num_senders / b * num_receivers, so edges stay sorted by receiver. With
// edge_blocks, also the fixed edge blocks of the replicated graph. A shard's
// graph (model parallel) keeps each sample's own senders first and the halo's
// after all of them, owner by owner, sample by sample (partition.h).
DeviceGraph upload_graph(const Graph& graph, const std::vector<float>& features, int batch, Device device,
                         const std::string& name, bool edge_blocks, const GraphShard* shard = nullptr) {
  MemoryScope scope(Category::input, "graph." + name);
  const int64_t edges = graph.num_edges();
  // Replicated index of sender s in sample b: base[s] + b * stride[s].
  std::vector<int64_t> base(static_cast<size_t>(graph.num_senders)), stride(base.size(), graph.num_senders);
  for (size_t i = 0; i < base.size(); ++i) base[i] = static_cast<int64_t>(i);
  if (shard) {
    const int64_t owned = shard->owned_senders;
    int64_t local = owned, first = owned * batch;
    for (size_t i = 0; i < static_cast<size_t>(owned); ++i) stride[i] = owned;
    for (const std::vector<int32_t>& from : shard->halo_from) {
      const int64_t n = static_cast<int64_t>(from.size());
      for (int64_t k = 0; k < n; ++k) {
        base[static_cast<size_t>(local + k)] = first + k;
        stride[static_cast<size_t>(local + k)] = n;
      }
      local += n;
      first += n * batch;
    }
  }
  Graph replicated;
  replicated.num_senders = graph.num_senders * batch;
  replicated.num_receivers = graph.num_receivers * batch;
  replicated.senders.reserve(static_cast<size_t>(edges * batch));
  replicated.receivers.reserve(static_cast<size_t>(edges * batch));
  for (int b = 0; b < batch; ++b) {
    for (int64_t e = 0; e < edges; ++e) {
      const size_t sender = static_cast<size_t>(graph.senders[static_cast<size_t>(e)]);
      replicated.senders.push_back(static_cast<int32_t>(base[sender] + b * stride[sender]));
      replicated.receivers.push_back(
          static_cast<int32_t>(graph.receivers[static_cast<size_t>(e)] + b * graph.num_receivers));
    }
  }
  DeviceGraph d;
  const SenderCsr sender_csr = replicated.sender_csr();
  const std::vector<int32_t> receiver_offsets = replicated.receiver_offsets();
  std::vector<int32_t> identity(replicated.senders.size());
  for (size_t i = 0; i < identity.size(); ++i) identity[i] = static_cast<int32_t>(i);
  d.senders.index = upload_i32(replicated.senders, device);
  d.senders.order = upload_i32(sender_csr.order, device);
  d.senders.offsets = upload_i32(sender_csr.offsets, device);
  d.senders.num_nodes = replicated.num_senders;
  d.receivers.index = upload_i32(replicated.receivers, device);
  d.receivers.order = upload_i32(identity, device);
  d.receivers.offsets = upload_i32(receiver_offsets, device);
  d.receivers.num_nodes = replicated.num_receivers;
  d.receiver_offsets = d.receivers.offsets;
  // Checked once here, so the step's gathers and sums skip their checks.
  const int64_t replicated_edges = replicated.num_edges();
  kernels::check_graph_index(d.senders.index, replicated.num_senders, "graph upload: senders");
  kernels::check_graph_index(d.senders.order, replicated_edges, "graph upload: sender order");
  kernels::check_graph_offsets(d.senders.offsets, replicated_edges, "graph upload: sender offsets");
  kernels::check_graph_index(d.receivers.index, replicated.num_receivers, "graph upload: receivers");
  kernels::check_graph_index(d.receivers.order, replicated_edges, "graph upload: receiver order");
  kernels::check_graph_offsets(d.receivers.offsets, replicated_edges, "graph upload: receiver offsets");
  std::vector<float> feats;
  feats.reserve(features.size() * static_cast<size_t>(batch));
  for (int b = 0; b < batch; ++b) feats.insert(feats.end(), features.begin(), features.end());
  d.edge_features = Tensor::from_host(feats.data(), {edges * batch, 4}, DType::f32, device);
  if (edge_blocks) {
    MemoryScope blocks_scope("blocks");
    d.blocks = make_blocks(replicated, receiver_offsets,
                           edge_blocks_for(replicated.num_edges(), replicated.num_receivers), d, device);
  }
  return d;
}

// The halo of a shard's graph for the replicated batch: to rank q, every
// sample's rows of send_to[q] (sample by sample); from rank q, halo_from[q]'s.
DeviceHalo upload_halo(const GraphShard& shard, int batch, Device device, const std::string& name) {
  MemoryScope scope(Category::input, "graph." + name + ".halo");
  DeviceHalo h;
  h.active = true;
  std::vector<int32_t> rows;
  for (const std::vector<int32_t>& to : shard.send_to) {
    h.send_counts.push_back(static_cast<int64_t>(to.size()) * batch);
    for (int b = 0; b < batch; ++b)
      for (int32_t r : to) rows.push_back(static_cast<int32_t>(r + b * shard.owned_senders));
  }
  for (const std::vector<int32_t>& from : shard.halo_from) h.recv_counts.push_back(static_cast<int64_t>(from.size()) * batch);
  std::vector<int32_t> identity(rows.size());
  for (size_t i = 0; i < identity.size(); ++i) identity[i] = static_cast<int32_t>(i);
  const Graph g = make_graph(shard.owned_senders * batch, static_cast<int64_t>(rows.size()), rows, identity);
  const SenderCsr csr = g.sender_csr();
  h.send.index = upload_i32(rows, device);
  h.send.order = upload_i32(csr.order, device);
  h.send.offsets = upload_i32(csr.offsets, device);
  h.send.num_nodes = shard.owned_senders * batch;
  kernels::check_graph_index(h.send.index, h.send.num_nodes, "graph upload: halo rows");
  kernels::check_graph_index(h.send.order, static_cast<int64_t>(rows.size()), "graph upload: halo order");
  kernels::check_graph_offsets(h.send.offsets, static_cast<int64_t>(rows.size()), "graph upload: halo offsets");
  return h;
}

Tensor upload_rows_as(const std::vector<float>& host, int64_t cols, int batch, DType dtype, Device device) {
  const int64_t rows = static_cast<int64_t>(host.size()) / cols;
  Tensor f32 = Tensor::empty({rows * batch, cols}, DType::f32, device);
  if (device != Device::meta) {
    std::vector<float> rep;
    rep.reserve(host.size() * static_cast<size_t>(batch));
    for (int b = 0; b < batch; ++b) rep.insert(rep.end(), host.begin(), host.end());
    device_copy(f32.data(), device, rep.data(), Device::cpu, rep.size() * sizeof(float));
  }
  if (dtype == DType::f32) return f32;
  Tensor out = Tensor::empty(f32.shape(), dtype, device);
  kernels::cast(out, f32);
  return out;
}

}  // namespace

DeviceGeometry upload_geometry(const GraphCastGeometry& geometry, const GraphCastConfig& config, Device device,
                               const GeometryShard* shard, Communicator* comm) {
  if (shard && shard->ranks > 1 && !comm)
    throw std::invalid_argument("upload_geometry: a shard of " + std::to_string(shard->ranks) + " needs a communicator");
  DeviceGeometry d;
  d.batch = config.batch;
  d.grid_nodes = shard ? shard->grid_nodes : geometry.num_grid_nodes();
  d.mesh_nodes = shard ? static_cast<int64_t>(shard->mesh_nodes.size()) : geometry.num_mesh_nodes();
  // The encoder and decoder edge sets are always computed in the same fixed
  // blocks; --edge-chunks only groups blocks into checkpointed segments, so the
  // arithmetic (hence every gradient bit) does not depend on the chunking.
  if (shard) {
    d.g2m = upload_graph(shard->g2m.graph, shard->g2m.features, config.batch, device, "g2m", true, &shard->g2m);
    d.mesh = upload_graph(shard->mesh.graph, shard->mesh.features, config.batch, device, "mesh", false, &shard->mesh);
    d.m2g = upload_graph(shard->m2g.graph, shard->m2g.features, config.batch, device, "m2g", true, &shard->m2g);
    if (shard->ranks > 1) {
      d.comm = comm;
      d.g2m_halo = upload_halo(shard->g2m, config.batch, device, "g2m");
      d.mesh_halo = upload_halo(shard->mesh, config.batch, device, "mesh");
      d.m2g_halo = upload_halo(shard->m2g, config.batch, device, "m2g");
      // Shard q of this group is rank (this rank - shard->rank + q) of comm.
      const int first = comm->rank() - shard->rank;
      if (first < 0 || first + shard->ranks > comm->size())
        throw std::invalid_argument("upload_geometry: shard " + std::to_string(shard->rank) + " of " +
                                    std::to_string(shard->ranks) + " cannot be rank " + std::to_string(comm->rank()) +
                                    " of " + std::to_string(comm->size()));
      for (DeviceHalo* h : {&d.g2m_halo, &d.mesh_halo, &d.m2g_halo}) {
        std::vector<int64_t> send(static_cast<size_t>(comm->size()), 0), recv(send.size(), 0);
        for (int q = 0; q < shard->ranks; ++q) {
          send[static_cast<size_t>(first + q)] = h->send_counts[static_cast<size_t>(q)];
          recv[static_cast<size_t>(first + q)] = h->recv_counts[static_cast<size_t>(q)];
        }
        h->send_counts = send;
        h->recv_counts = recv;
      }
    }
  } else {
    d.g2m = upload_graph(geometry.g2m, geometry.g2m_features, config.batch, device, "g2m", true);
    d.mesh = upload_graph(geometry.mesh, geometry.mesh_features, config.batch, device, "mesh", false);
    d.m2g = upload_graph(geometry.m2g, geometry.m2g_features, config.batch, device, "m2g", true);
  }
  for (const DeviceGraph* g : {&d.g2m, &d.m2g})
    if (config.edge_chunks < 1 || config.edge_chunks > static_cast<int>(g->blocks.size()))
      throw std::invalid_argument("--edge-chunks must be 1.." + std::to_string(g->blocks.size()) +
                                  ": the encoder and decoder edge sets are computed in " +
                                  std::to_string(g->blocks.size()) + " fixed blocks, which chunks group");
  MemoryScope scope(Category::input, "graph.nodes");
  const std::vector<float>& grid_structural = shard ? shard->grid_structural : geometry.grid_structural;
  const std::vector<float>& mesh_structural = shard ? shard->mesh_structural : geometry.mesh_structural;
  d.grid_structural = upload_rows_as(grid_structural, 3, config.batch, config.compute_dtype, device);
  // Mesh node input: zeros in the data channels, then the 3 structural features.
  std::vector<float> mesh_input(static_cast<size_t>(d.mesh_nodes * config.in_channels), 0.0f);
  for (int64_t n = 0; n < d.mesh_nodes; ++n)
    for (int64_t c = 0; c < 3; ++c)
      mesh_input[static_cast<size_t>(n * config.in_channels + config.in_channels - 3 + c)] =
          mesh_structural[static_cast<size_t>(n * 3 + c)];
  d.mesh_input = upload_rows_as(mesh_input, config.in_channels, config.batch, config.compute_dtype, device);
  return d;
}

Var halo_extend(const Var& x, const DeviceHalo& halo, Communicator* comm) {
  if (!halo.active) return x;
  Var received;
  {
    MemoryScope scope(Category::communication, "halo");
    Var sent = gather_rows(x, halo.send);
    received = exchange_rows(sent, *comm, halo.send_counts, halo.recv_counts);
  }
  MemoryScope scope("halo");
  return concat_rows({x, received});
}

}  // namespace gc::model
