// graphcast.cpp: geometry upload, parameters, and the encoder / processor /
// decoder forward passes. With the concat trick an edge MLP's first layer is
// e W_e + (V_s W_s)[sender] + (V_r W_r)[receiver] + b: the node-side products are
// computed once per node and gathered, and the [edges, 3L] concatenation is never
// allocated (first_linear_of_concat; a node MLP's v W_v + agg W_a + b likewise).
// The encoder and decoder edges always run in the same fixed blocks, which
// --edge-chunks only groups into checkpointed chunks: blocks fix the arithmetic,
// chunks only what is kept for backward.
//
// The order of operations here fixes the order, sizes and labels of allocations,
// which meta dry runs reproduce and the published memory figures were measured
// with: a reordering changes them even where the arithmetic stays the same.
#include "model/graphcast.h"

#include <cmath>
#include <stdexcept>
#include <vector>

#include "kernels/elementwise.h"
#include "kernels/index.h"
#include "model/partition.h"
#include "runtime/random.h"

namespace gc::model {

int edge_blocks_for(int64_t edges, int64_t receivers) {
  const int64_t by_size = std::max<int64_t>(4, edges / 4096);
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>({by_size, kEdgeBlocks, receivers})));
}

// ---- geometry --------------------------------------------------------------------

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
    std::vector<int32_t> senders(g.senders.begin() + block.first_edge, g.senders.begin() + block.first_edge + block.edges);
    std::vector<int32_t> receivers(g.receivers.begin() + block.first_edge,
                                   g.receivers.begin() + block.first_edge + block.edges);
    // The block's edges in the graph's own order (sorted by receiver; a shard's
    // keep the global order within a receiver): no re-sorting, so the sender CSR
    // below matches the index slice.
    Graph local;
    local.num_senders = g.num_senders;
    local.num_receivers = g.num_receivers;
    local.senders = std::move(senders);
    local.receivers = std::move(receivers);
    const SenderCsr csr = local.sender_csr();
    std::vector<int32_t> identity(static_cast<size_t>(block.edges)), local_offsets;
    for (int64_t e = 0; e < block.edges; ++e) identity[static_cast<size_t>(e)] = static_cast<int32_t>(e);
    for (int64_t r = receiver; r <= end_receiver; ++r)
      local_offsets.push_back(receiver_offsets[static_cast<size_t>(r)] - static_cast<int32_t>(block.first_edge));
    block.senders.index = whole.senders.index.slice_rows(block.first_edge, block.edges);
    block.senders.order = upload_i32(csr.order, device);
    block.senders.offsets = upload_i32(csr.offsets, device);
    block.senders.num_nodes = g.num_senders;
    block.receivers_csr.index = whole.receivers.index.slice_rows(block.first_edge, block.edges);
    block.receivers_csr.order = upload_i32(identity, device);
    block.receivers_csr.offsets = upload_i32(local.receiver_offsets(), device);
    block.receivers_csr.num_nodes = g.num_receivers;
    block.segment_offsets = upload_i32(local_offsets, device);
    // Checked once here, so the step's gathers and sums skip their checks.
    kernels::check_graph_index(block.senders.order, block.edges, "graph upload: a block's sender order");
    kernels::check_graph_offsets(block.senders.offsets, block.edges, "graph upload: a block's sender offsets");
    kernels::check_graph_index(block.receivers_csr.order, block.edges, "graph upload: a block's receiver order");
    kernels::check_graph_offsets(block.receivers_csr.offsets, block.edges, "graph upload: a block's receiver offsets");
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

// ---- parameters -------------------------------------------------------------------

std::vector<Var> Mlp::parameters() const {
  std::vector<Var> p = {w0, b0, w1, b1};
  if (layernorm) {
    p.push_back(gamma);
    p.push_back(beta);
  }
  return p;
}

int64_t Mlp::parameter_count() const {
  int64_t n = 0;
  for (const Var& v : parameters()) n += v.value().numel();
  return n;
}

GraphCastNet::GraphCastNet(const GraphCastConfig& config, Device device, uint64_t seed)
    : config_(config), device_(device), seed_(seed) {
  if (config.latent < 1 || config.layers < 1 || config.in_channels < 4 || config.out_channels < 1)
    throw std::invalid_argument("GraphCast: latent, layers, out-channels must be >= 1 and in-channels >= 4");
  if (config.processor == Processor::attention && config.latent % kAttentionHeads != 0)
    throw std::invalid_argument("GraphCast: the attention processor splits the latent into " +
                                std::to_string(kAttentionHeads) + " heads: --latent must be a multiple of " +
                                std::to_string(kAttentionHeads) + ", got " + std::to_string(config.latent));
  const int64_t L = config.latent, in = config.in_channels;
  grid_embed_ = make_mlp("encoder.grid_embed", in, L, L, true);
  mesh_embed_ = make_mlp("encoder.mesh_embed", in, L, L, true);
  g2m_edge_embed_ = make_mlp("encoder.g2m_edge_embed", 4, L, L, true);
  g2m_edge_mlp_ = make_mlp("encoder.g2m_edge_mlp", 3 * L, L, L, true);
  g2m_mesh_node_mlp_ = make_mlp("encoder.mesh_node_mlp", 2 * L, L, L, true);
  g2m_grid_node_mlp_ = make_mlp("encoder.grid_node_mlp", L, L, L, true);
  mesh_edge_embed_ = make_mlp("processor.mesh_edge_embed", 4, L, L, true);
  for (int l = 0; l < config.layers; ++l) {
    processor_edge_mlps_.push_back(make_mlp("processor." + std::to_string(l) + ".edge_mlp", 3 * L, L, L, true));
    processor_node_mlps_.push_back(make_mlp("processor." + std::to_string(l) + ".node_mlp", 2 * L, L, L, true));
    const std::string layer = "processor." + std::to_string(l);
    if (config.processor == Processor::gated) {
      edge_gates_.push_back(make_dense(layer + ".edge_gate", L, L));
      node_gates_.push_back(make_dense(layer + ".node_gate", 2 * L, L));
    } else if (config.processor == Processor::attention) {
      attention_scores_.push_back(make_dense(layer + ".attention_score", L, kAttentionHeads, false));
    }
  }
  m2g_edge_embed_ = make_mlp("decoder.m2g_edge_embed", 4, L, L, true);
  m2g_edge_mlp_ = make_mlp("decoder.m2g_edge_mlp", 3 * L, L, L, true);
  m2g_grid_node_mlp_ = make_mlp("decoder.grid_node_mlp", 2 * L, L, L, true);
  // The reference computes a mesh-node update here whose result is unused; its
  // weights exist in the published checkpoints, so they exist here (never run).
  m2g_mesh_node_mlp_unused_ = make_mlp("decoder.mesh_node_mlp", L, L, L, true);
  output_mlp_ = make_mlp("decoder.output_mlp", L, L, config.out_channels, false);
}

Mlp GraphCastNet::make_mlp(const std::string& name, int64_t in, int64_t hidden, int64_t out, bool layernorm) {
  MemoryScope scope(Category::parameter, name);
  Mlp m;
  m.name = name;
  m.in = in;
  m.hidden = hidden;
  m.out = out;
  m.layernorm = layernorm;
  const uint64_t mlp_seed = seed_ * 1000003ull + (next_param_seed_++);
  auto weight = [&](const std::string& pname, int64_t fan_in, int64_t fan_out, uint64_t salt) {
    return make_weight(name, pname, fan_in, fan_out, mlp_seed * 31 + salt);
  };
  auto constant = [&](const std::string& pname, int64_t n, double value) { return make_constant(name, pname, n, value); };
  m.w0 = weight("linear0.weight", in, hidden, 1);
  m.b0 = constant("linear0.bias", hidden, 0.0);
  m.w1 = weight("linear1.weight", hidden, out, 2);
  m.b1 = constant("linear1.bias", out, 0.0);
  if (layernorm) {
    m.gamma = constant("layernorm.gamma", out, 1.0);
    m.beta = constant("layernorm.beta", out, 0.0);
  }
  return m;
}

Var GraphCastNet::make_weight(const std::string& module, const std::string& pname, int64_t fan_in, int64_t fan_out,
                              uint64_t seed) const {
  MemoryScope label(pname);
  // One allocation on every device (meta and cpu make identical requests).
  Tensor t;
  if (device_ == Device::meta) {
    t = Tensor::empty({fan_in, fan_out}, master_dtype(), device_);
  } else {
    // gc's own normals (runtime/random.h): a seed's weights on every standard library.
    uint64_t state = seed;
    const double stddev = 1.0 / std::sqrt(static_cast<double>(fan_in));
    std::vector<double> host(static_cast<size_t>(fan_in * fan_out));
    for (double& v : host) {
      double z;
      do z = next_normal(state);
      while (std::fabs(z) > 2.0);
      v = static_cast<double>(static_cast<float>(z * stddev));  // the same values in f32 and f64
    }
    t = Tensor::from_doubles(host, {fan_in, fan_out}, master_dtype(), device_);
  }
  return Var(t, true, module + "." + pname);
}

Var GraphCastNet::make_constant(const std::string& module, const std::string& pname, int64_t n, double value) const {
  MemoryScope label(pname);
  Tensor t = Tensor::empty({n}, master_dtype(), device_);
  kernels::fill(t, value);
  return Var(t, true, module + "." + pname);
}

Dense GraphCastNet::make_dense(const std::string& name, int64_t in, int64_t out, bool bias) {
  MemoryScope scope(Category::parameter, name);
  const uint64_t seed = seed_ * 1000003ull + (next_param_seed_++);
  Dense d;
  d.name = name;
  d.w = make_weight(name, "weight", in, out, seed * 31 + 1);
  if (bias) d.b = make_constant(name, "bias", out, 0.0);
  return d;
}

std::vector<Var> GraphCastNet::parameters() const {
  std::vector<Var> p;
  auto add = [&](const Mlp& m) {
    for (const Var& v : m.parameters()) p.push_back(v);
  };
  for (const Mlp* m : {&grid_embed_, &mesh_embed_, &g2m_edge_embed_, &g2m_edge_mlp_, &g2m_mesh_node_mlp_,
                       &g2m_grid_node_mlp_, &mesh_edge_embed_})
    add(*m);
  auto add_dense = [&](const std::vector<Dense>& denses, int l) {
    if (denses.empty()) return;
    p.push_back(denses[static_cast<size_t>(l)].w);
    if (denses[static_cast<size_t>(l)].b.defined()) p.push_back(denses[static_cast<size_t>(l)].b);
  };
  for (int l = 0; l < config_.layers; ++l) {
    add(processor_edge_mlps_[static_cast<size_t>(l)]);
    add(processor_node_mlps_[static_cast<size_t>(l)]);
    add_dense(edge_gates_, l);
    add_dense(node_gates_, l);
    add_dense(attention_scores_, l);
  }
  for (const Mlp* m : {&m2g_edge_embed_, &m2g_edge_mlp_, &m2g_grid_node_mlp_, &m2g_mesh_node_mlp_unused_, &output_mlp_})
    add(*m);
  return p;
}

ParameterCounts GraphCastNet::parameter_counts() const {
  ParameterCounts c;
  for (const Mlp* m : {&grid_embed_, &mesh_embed_, &g2m_edge_embed_, &g2m_edge_mlp_, &g2m_mesh_node_mlp_,
                       &g2m_grid_node_mlp_})
    c.encoder += m->parameter_count();
  c.processor += mesh_edge_embed_.parameter_count();
  for (int l = 0; l < config_.layers; ++l)
    c.processor += processor_edge_mlps_[static_cast<size_t>(l)].parameter_count() +
                   processor_node_mlps_[static_cast<size_t>(l)].parameter_count();
  for (const std::vector<Dense>* denses : {&edge_gates_, &node_gates_, &attention_scores_})
    for (const Dense& d : *denses) c.processor += d.parameter_count();
  for (const Mlp* m : {&m2g_edge_embed_, &m2g_edge_mlp_, &m2g_grid_node_mlp_, &m2g_mesh_node_mlp_unused_, &output_mlp_})
    c.decoder += m->parameter_count();
  return c;
}

// ---- building blocks --------------------------------------------------------------------

Var GraphCastNet::finish_mlp(const Mlp& mlp, const Var& first_linear_output) const {
  Var h;
  {
    MemoryScope scope("silu");
    h = silu(first_linear_output);
  }
  {
    MemoryScope scope("linear1");
    h = linear(h, mlp.w1, mlp.b1);
  }
  if (mlp.layernorm) {
    MemoryScope scope("layernorm");
    h = layernorm(h, mlp.gamma, mlp.beta, 1e-5);
  }
  return h;
}

Var GraphCastNet::apply_mlp(const Mlp& mlp, const Var& x) const {
  MemoryScope scope(mlp.name.substr(mlp.name.rfind('.') + 1));
  Var h;
  {
    MemoryScope s("linear0");
    h = linear(x, mlp.w0, mlp.b0);
  }
  return finish_mlp(mlp, h);
}

Var GraphCastNet::first_linear_of_concat(const Mlp& mlp, const Var& first_part,
                                         const std::vector<Var>& other_products) const {
  // Each partial sum lives to the end and they go newest first, as the temporaries
  // of one add(add(...)) expression do: the allocator sees the requests and
  // releases that the published memory figures were measured with.
  std::vector<Var> sums = {linear(first_part, mlp.w0, mlp.b0, 0)};
  for (const Var& product : other_products) sums.push_back(add(sums.back(), product));
  Var h = sums.back();
  while (!sums.empty()) sums.pop_back();
  return h;
}

Var GraphCastNet::edge_mlp_forward(const Mlp& mlp, const Var& edges, const Var& senders_latent,
                                   const Var& receivers_latent, const DeviceGraph& graph) const {
  MemoryScope scope(mlp.name.substr(mlp.name.rfind('.') + 1));
  const int64_t L = config_.latent;
  Var h;
  if (config_.concat_trick) {
    MemoryScope s("linear0");
    Var sender_product, receiver_product;
    {
      MemoryScope node_side("sender_projection");
      sender_product = gather_rows(linear(senders_latent, mlp.w0, Var(), L), graph.senders);
    }
    {
      MemoryScope node_side("receiver_projection");
      receiver_product = gather_rows(linear(receivers_latent, mlp.w0, Var(), 2 * L), graph.receivers);
    }
    h = first_linear_of_concat(mlp, edges, {sender_product, receiver_product});
  } else {
    MemoryScope s("linear0");
    Var cat = concat_cols({edges, gather_rows(senders_latent, graph.senders), gather_rows(receivers_latent, graph.receivers)});
    h = linear(cat, mlp.w0, mlp.b0);
  }
  return finish_mlp(mlp, h);
}

Var GraphCastNet::node_mlp_forward(const Mlp& mlp, const Var& nodes, const Var& aggregated) const {
  MemoryScope scope(mlp.name.substr(mlp.name.rfind('.') + 1));
  const int64_t L = config_.latent;
  Var agg = aggregated.dtype() == nodes.dtype() ? aggregated : cast(aggregated, nodes.dtype());
  Var h;
  {
    MemoryScope s("linear0");
    if (config_.concat_trick) {
      // The aggregate's product first: the order the memory figures were measured with.
      Var aggregated_product = linear(agg, mlp.w0, Var(), L);
      h = first_linear_of_concat(mlp, nodes, {aggregated_product});
    } else {
      h = linear(concat_cols({nodes, agg}), mlp.w0, mlp.b0);
    }
  }
  return finish_mlp(mlp, h);
}


Var GraphCastNet::block_messages(const Mlp& edge_embed, const Mlp& edge_mlp, const Var& sender_side,
                                 const Var& receiver_side, const DeviceGraph& graph, const EdgeBlock& block,
                                 DType aggregate_dtype) const {
  Var features = cast(Var(graph.edge_features.slice_rows(block.first_edge, block.edges)), config_.compute_dtype);
  Var edges = apply_mlp(edge_embed, features);
  MemoryScope scope(edge_mlp.name.substr(edge_mlp.name.rfind('.') + 1));
  Var h;
  {
    MemoryScope s("linear0");
    if (config_.concat_trick) {
      // sender_side / receiver_side are the node projections V_s W_s, V_r W_r. The
      // receiver side is gathered first: the order the memory figures were measured with.
      Var receiver_product = gather_rows(receiver_side, block.receivers_csr);
      Var sender_product = gather_rows(sender_side, block.senders);
      h = first_linear_of_concat(edge_mlp, edges, {sender_product, receiver_product});
    } else {
      h = linear(concat_cols({edges, gather_rows(sender_side, block.senders), gather_rows(receiver_side, block.receivers_csr)}),
                 edge_mlp.w0, edge_mlp.b0);
    }
  }
  Var messages = finish_mlp(edge_mlp, h);
  MemoryScope s("aggregate");
  return segment_sum(messages, block.segment_offsets, aggregate_dtype);
}

Var GraphCastNet::bipartite_aggregate(const Mlp& edge_embed, const Mlp& edge_mlp, const Var& senders_latent,
                                      const Var& receivers_latent, const DeviceGraph& graph,
                                      DType aggregate_dtype) const {
  // The fixed edge blocks are grouped into --edge-chunks checkpointed chunks,
  // each keeping only its inputs (the node projections), so at most one chunk's
  // edge activations are alive at a time. A single chunk runs its blocks
  // plainly, with the same arithmetic.
  const int64_t L = config_.latent;
  Var sender_side = senders_latent, receiver_side = receivers_latent;
  if (config_.concat_trick) {
    MemoryScope scope(edge_mlp.name.substr(edge_mlp.name.rfind('.') + 1));
    MemoryScope s("linear0");
    {
      MemoryScope p("sender_projection");
      sender_side = linear(senders_latent, edge_mlp.w0, Var(), L);
    }
    {
      MemoryScope p("receiver_projection");
      receiver_side = linear(receivers_latent, edge_mlp.w0, Var(), 2 * L);
    }
  }
  const int blocks = static_cast<int>(graph.blocks.size());
  const int chunks = config_.edge_chunks;
  auto run_blocks = [this, &edge_embed, &edge_mlp, &graph, aggregate_dtype](int first, int last,
                                                                             const std::vector<Var>& in) {
    std::vector<Var> parts;
    for (int b = first; b < last; ++b) {
      MemoryScope scope("edge_block." + std::to_string(b));
      parts.push_back(block_messages(edge_embed, edge_mlp, in[0], in[1], graph,
                                     graph.blocks[static_cast<size_t>(b)], aggregate_dtype));
    }
    return parts.size() == 1 ? parts[0] : concat_rows(parts);
  };
  std::vector<Var> parts;
  if (chunks == 1) {
    parts.push_back(run_blocks(0, blocks, {sender_side, receiver_side}));
  } else {
    for (int c = 0; c < chunks; ++c) {
      const int first = c * blocks / chunks, last = (c + 1) * blocks / chunks;
      auto fn = [run_blocks, first, last](const std::vector<Var>& in) {
        return std::vector<Var>{run_blocks(first, last, in)};
      };
      MemoryScope scope("edge_chunk." + std::to_string(c));
      parts.push_back(checkpoint("", fn, {sender_side, receiver_side})[0]);
    }
  }
  MemoryScope scope("aggregate");
  return parts.size() == 1 ? parts[0] : concat_rows(parts);
}

// ---- stages ------------------------------------------------------------------------------

std::vector<Var> GraphCastNet::encoder(const Var& grid_data, const DeviceGeometry& geometry) const {
  MemoryScope scope("encoder");
  Var grid_input = concat_cols({grid_data, Var(geometry.grid_structural)});
  Var v_grid = apply_mlp(grid_embed_, grid_input);
  grid_input = Var();
  Var v_mesh = apply_mlp(mesh_embed_, Var(geometry.mesh_input));
  // The encoder's edge->node sum accumulates in f32 (GRAPHCAST.md section 4).
  Var aggregated = bipartite_aggregate(g2m_edge_embed_, g2m_edge_mlp_, halo_extend(v_grid, geometry.g2m_halo, geometry.comm),
                                       v_mesh, geometry.g2m, master_dtype());
  Var mesh_update = node_mlp_forward(g2m_mesh_node_mlp_, v_mesh, aggregated);
  aggregated = Var();
  Var grid_update = apply_mlp(g2m_grid_node_mlp_, v_grid);
  v_mesh = add(v_mesh, mesh_update);
  v_grid = add(v_grid, grid_update);
  Var e_mesh;
  {
    LabelOverride processor_scope("processor");
    e_mesh = apply_mlp(mesh_edge_embed_, cast(Var(geometry.mesh.edge_features), config_.compute_dtype));
  }
  return {v_grid, v_mesh, e_mesh};
}

Var GraphCastNet::processor_aggregate(int layer, const Var& messages, const DeviceGeometry& geometry) const {
  const size_t l = static_cast<size_t>(layer);
  const Tensor& offsets = geometry.mesh.receiver_offsets;
  switch (config_.processor) {
    case Processor::interaction: {
      MemoryScope s("aggregate");
      return segment_sum(messages, offsets, config_.compute_dtype);
    }
    case Processor::gated: {
      Var gated;
      {
        MemoryScope s("edge_gate");
        Var gate;
        {
          MemoryScope g("linear");
          gate = linear(messages, edge_gates_[l].w, edge_gates_[l].b);
        }
        {
          MemoryScope g("sigmoid");
          gate = sigmoid(gate);
        }
        MemoryScope g("product");
        gated = mul(messages, gate);
      }
      MemoryScope s("aggregate");
      return segment_sum(gated, offsets, config_.compute_dtype);
    }
    case Processor::attention: {
      Var scores;
      {
        MemoryScope s("attention_score");
        scores = linear(messages, attention_scores_[l].w, Var());
      }
      MemoryScope s("aggregate");
      return segment_softmax_sum(scores, messages, offsets);
    }
  }
  throw std::logic_error("unknown processor");
}

std::vector<Var> GraphCastNet::processor_step(int layer, const std::vector<Var>& state,
                                              const DeviceGeometry& geometry) const {
  MemoryScope scope("processor." + std::to_string(layer));
  const Var& v_mesh = state[1];
  const Var& e_mesh = state[2];
  Var edge_update = edge_mlp_forward(processor_edge_mlps_[static_cast<size_t>(layer)], e_mesh,
                                     halo_extend(v_mesh, geometry.mesh_halo, geometry.comm), v_mesh, geometry.mesh);
  Var aggregated = processor_aggregate(layer, edge_update, geometry);
  Var node_update = node_mlp_forward(processor_node_mlps_[static_cast<size_t>(layer)], v_mesh, aggregated);
  if (config_.processor == Processor::gated) {
    // The update gate z = sigmoid([v, agg] W_z + b_z), its concatenation split
    // like the node MLP's first layer; v' = v + z * update.
    const Dense& gate = node_gates_[static_cast<size_t>(layer)];
    MemoryScope s("node_gate");
    Var z;
    {
      MemoryScope g("linear");
      Var aggregated_product = linear(aggregated, gate.w, Var(), config_.latent);
      z = add(linear(v_mesh, gate.w, gate.b, 0), aggregated_product);
    }
    {
      MemoryScope g("sigmoid");
      z = sigmoid(z);
    }
    MemoryScope g("product");
    node_update = mul(z, node_update);
  }
  aggregated = Var();
  return {state[0], add(v_mesh, node_update), add(e_mesh, edge_update)};
}

Var GraphCastNet::decoder(const std::vector<Var>& state, const DeviceGeometry& geometry) const {
  MemoryScope scope("decoder");
  const Var& v_grid = state[0];
  const Var& v_mesh = state[1];
  Var aggregated = bipartite_aggregate(m2g_edge_embed_, m2g_edge_mlp_, halo_extend(v_mesh, geometry.m2g_halo, geometry.comm),
                                       v_grid, geometry.m2g, config_.compute_dtype);
  Var grid_update = node_mlp_forward(m2g_grid_node_mlp_, v_grid, aggregated);
  aggregated = Var();
  Var v = add(v_grid, grid_update);
  grid_update = Var();
  Var out = apply_mlp(output_mlp_, v);
  // The prediction leaves the network in f32 (de-normalization and the residual add in f32).
  return out.dtype() == master_dtype() ? out : cast(out, master_dtype());
}

std::vector<Var> GraphCastNet::run_stage(int stage, const std::vector<Var>& state,
                                         const DeviceGeometry& geometry) const {
  if (stage == 0) return encoder(state[0], geometry);
  if (stage <= config_.layers) return processor_step(stage - 1, state, geometry);
  return {decoder(state, geometry)};
}

std::vector<Var> GraphCastNet::run_plan(const std::vector<StagePlan>& plan, const std::vector<Var>& state_in,
                                        const DeviceGeometry& geometry) const {
  std::vector<Var> state = state_in;
  for (const StagePlan& item : plan) {
    // By value: the checkpoint keeps this function until backward, after the plan is gone.
    auto run = [this, item, &geometry](const std::vector<Var>& in) {
      if (!item.inner.empty()) return run_plan(item.inner, in, geometry);
      std::vector<Var> s = in;
      for (int stage = item.first_stage; stage <= item.last_stage; ++stage) s = run_stage(stage, s, geometry);
      return s;
    };
    if (item.checkpoint) {
      std::string label = item.first_stage == 0 ? "encoder" : item.first_stage > config_.layers ? "decoder"
                          : "processor." + std::to_string(item.first_stage - 1);
      if (item.last_stage != item.first_stage) label += "-" + std::to_string(item.last_stage);
      state = checkpoint("checkpoint." + label, run, state);
    } else {
      state = run(state);
    }
  }
  return state;
}

namespace {
void check_plan(const std::vector<StagePlan>& plan, int first, int last, int layers) {
  int expected = first;
  for (const StagePlan& item : plan) {
    if (item.first_stage != expected || item.last_stage < item.first_stage || item.last_stage > last)
      throw std::invalid_argument("GraphCast forward: a plan's items must cover stages " + std::to_string(first) + ".." +
                                  std::to_string(last) + " in order (stages 0.." + std::to_string(layers + 1) + ")");
    if (!item.inner.empty()) check_plan(item.inner, item.first_stage, item.last_stage, layers);
    expected = item.last_stage + 1;
  }
  if (expected != last + 1)
    throw std::invalid_argument("GraphCast forward: the plan stops at stage " + std::to_string(expected - 1) +
                                " before stage " + std::to_string(last));
}
}  // namespace

Var GraphCastNet::forward(const Var& grid_data, const DeviceGeometry& geometry,
                          const std::vector<StagePlan>& plan) const {
  const int64_t expected_rows = geometry.grid_nodes * geometry.batch;
  if (grid_data.value().dim() != 2 || grid_data.shape()[0] != expected_rows ||
      grid_data.shape()[1] != config_.in_channels - 3)
    throw std::invalid_argument("GraphCast forward: grid data [" + std::to_string(expected_rows) + ", " +
                                std::to_string(config_.in_channels - 3) + "] expected, got " +
                                grid_data.value().describe());
  const std::vector<StagePlan> items = plan.empty() ? plan_none(config_.layers) : plan;
  check_plan(items, 0, config_.layers + 1, config_.layers);
  return run_plan(items, {grid_data}, geometry)[0];
}

// ---- fixed plans ---------------------------------------------------------------------------

std::vector<StagePlan> plan_none(int layers) { return {{0, layers + 1, false, {}}}; }

std::vector<StagePlan> plan_every(int layers, int k) {
  if (k < 1) throw std::invalid_argument("every:K needs K >= 1");
  std::vector<StagePlan> p = {{0, 0, false, {}}};
  for (int first = 1; first <= layers; first += k) p.push_back({first, std::min(layers, first + k - 1), true, {}});
  p.push_back({layers + 1, layers + 1, false, {}});
  return p;
}

std::vector<StagePlan> plan_all(int layers) {
  std::vector<StagePlan> p;
  for (int s = 0; s <= layers + 1; ++s) p.push_back({s, s, true, {}});
  return p;
}

}  // namespace gc::model
