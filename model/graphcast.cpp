// graphcast.cpp: parameters, and the encoder / processor / decoder forward
// passes (the graphs' device copies are model/device_geometry.cpp's). With the concat trick an edge MLP's first layer is
// e W_e + (V_s W_s)[sender] + (V_r W_r)[receiver] + b: the node-side products are
// computed once per node and added in by each edge (add_gathered: one pass, no
// gathered rows and no [edges, 3L] concatenation are ever allocated; a node MLP's
// v W_v + agg W_a + b through first_linear_of_concat).
// The encoder and decoder edges always run in the same fixed blocks, which
// --edge-chunks only groups into checkpointed chunks: blocks fix the arithmetic,
// chunks only what is kept for backward.
//
// Every MLP's first linear feeds its SiLU (through the concat trick's adds, which
// pass the gradient on unchanged) and its second its LayerNorm: on cuda those two
// ops' backward kernels sum the biases' gradients (linear's
// bias_gradient_by_consumer), so the finish_mlp below must receive the output of
// the first linear of the same MLP.
//
// The order of operations here fixes the order, sizes and labels of allocations,
// which meta dry runs reproduce and the published memory figures were measured
// with: a reordering changes them even where the arithmetic stays the same.
#include "model/graphcast.h"

#include <cmath>
#include <stdexcept>
#include <vector>

#include "kernels/elementwise.h"
#include "runtime/random.h"

namespace gc::model {

int edge_blocks_for(int64_t edges, int64_t receivers) {
  const int64_t by_size = std::max<int64_t>(4, edges / 4096);
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>({by_size, kEdgeBlocks, receivers})));
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
    h = silu(first_linear_output, mlp.b0);  // b0's gradient from SiLU's backward on cuda
  }
  {
    MemoryScope scope("linear1");
    h = linear(h, mlp.w1, mlp.b1, 0, mlp.layernorm);
  }
  if (mlp.layernorm) {
    MemoryScope scope("layernorm");
    h = layernorm(h, mlp.gamma, mlp.beta, 1e-5, mlp.b1);  // b1's gradient from LayerNorm's backward on cuda
  }
  return h;
}

Var GraphCastNet::apply_mlp(const Mlp& mlp, const Var& x) const {
  MemoryScope scope(mlp.name.substr(mlp.name.rfind('.') + 1));
  Var h;
  {
    MemoryScope s("linear0");
    h = linear(x, mlp.w0, mlp.b0, 0, true);
  }
  return finish_mlp(mlp, h);
}

Var GraphCastNet::first_linear_of_concat(const Mlp& mlp, const Var& first_part,
                                         const std::vector<Var>& other_products) const {
  // Each partial sum lives to the end and they go newest first, as the temporaries
  // of one add(add(...)) expression do: the allocator sees the requests and
  // releases that the published memory figures were measured with.
  std::vector<Var> sums = {linear(first_part, mlp.w0, mlp.b0, 0, true)};
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
    Var sender_side, receiver_side;
    {
      MemoryScope node_side("sender_projection");
      sender_side = linear(senders_latent, mlp.w0, Var(), L);
    }
    {
      MemoryScope node_side("receiver_projection");
      receiver_side = linear(receivers_latent, mlp.w0, Var(), 2 * L);
    }
    // E W_e + b, plus each edge's sender and receiver projection rows, in one pass.
    h = add_gathered(linear(edges, mlp.w0, mlp.b0, 0, true), sender_side, graph.senders, receiver_side,
                     graph.receivers);
  } else {
    MemoryScope s("linear0");
    Var cat = concat_cols({edges, gather_rows(senders_latent, graph.senders), gather_rows(receivers_latent, graph.receivers)});
    h = linear(cat, mlp.w0, mlp.b0, 0, true);
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
      h = linear(concat_cols({nodes, agg}), mlp.w0, mlp.b0, 0, true);
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
      // sender_side / receiver_side are the node projections V_s W_s, V_r W_r:
      // E W_e + b plus each edge's rows of them, in one pass.
      h = add_gathered(linear(edges, edge_mlp.w0, edge_mlp.b0, 0, true), sender_side, block.senders, receiver_side,
                       block.receivers_csr);
    } else {
      h = linear(concat_cols({edges, gather_rows(sender_side, block.senders), gather_rows(receiver_side, block.receivers_csr)}),
                 edge_mlp.w0, edge_mlp.b0, 0, true);
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
