// graphcast.h: the GraphCast network (GRAPHCAST.md section 4) on gc's autograd.
//
// Encoder (grid2mesh, one interaction step), processor (`layers` interaction
// steps on the multimesh, unshared weights), decoder (mesh2grid, one step, then
// an output MLP without LayerNorm). Every module runs inside a MemoryScope
// labelled with its path ("processor.7.edge_mlp.linear0"), so each byte is
// attributed to the module that asked for it.
//
// Stages for rematerialization: 0 = encoder (+ the mesh edge embedding),
// 1..layers = processor steps, layers + 1 = decoder. A forward plan lists
// segments of consecutive stages and whether each is checkpointed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "autograd/remat_planner.h"
#include "model/features.h"
#include "model/graphs.h"
#include "model/grid.h"
#include "model/mesh.h"
#include "runtime/communicator.h"

namespace gc::model {

// The encoder and decoder edge sets are computed in a fixed number of receiver
// ranges ("edge blocks") that depends only on the graph: about one per 4096
// edges, at least 4 and at most kEdgeBlocks (never more than the receivers).
// --edge-chunks groups blocks into checkpointed segments, so the chunking never
// changes the arithmetic.
constexpr int kEdgeBlocks = 32;
int edge_blocks_for(int64_t edges, int64_t receivers);

// The processor's message-passing block (docs/BLOCKS.md). Encoder and decoder
// are interaction networks whatever the processor.
//   interaction: the published block: e' = e + m, v' = v + node MLP([v, sum m]),
//                m = edge MLP([e, v_s, v_r]).
//   gated:       messages multiplied by a learned gate g = sigmoid(m W_g + b_g)
//                before the sum; the node update through a GRU-style update gate
//                z = sigmoid([v, agg] W_z + b_z): v' = v + z * node MLP([v, agg]).
//   attention:   the sum replaced by a softmax over each receiver's incoming
//                edges of per-edge scores m W_a (no bias: a softmax ignores a
//                shift, so its gradient would be 0), kAttentionHeads heads of
//                latent / heads channels each (kernels/attention.h, fused: no
//                per-edge weight is stored).
// New layers of every block are the identity when their MLPs' last linear layer
// is zero (gc_train --grow-from relies on it).
enum class Processor { interaction, gated, attention };
const char* processor_name(Processor processor);
// "interaction" | "gated" | "attention"; std::invalid_argument otherwise.
Processor processor_from_name(const std::string& name);
constexpr int64_t kAttentionHeads = 4;

struct GraphCastConfig {
  int64_t latent = 512;
  int layers = 16;
  int mesh_level = 6;
  int64_t in_channels = 474;   // grid node input width, the 3 structural features included
  int64_t out_channels = 227;
  DType compute_dtype = DType::f32;
  bool concat_trick = true;
  int edge_chunks = 1;         // checkpointed groups of the encoder/decoder edge blocks (1..kEdgeBlocks)
  int batch = 1;
  Processor processor = Processor::interaction;
};

// Host-side geometry: the grid, the mesh hierarchy, the three graphs and their
// features (built once, copied to the device per batch size).
struct GraphCastGeometry {
  Grid grid;
  Mesh finest_mesh;
  Graph g2m, mesh, m2g;
  std::vector<float> grid_structural;  // [grid nodes, 3]
  std::vector<float> mesh_structural;  // [mesh nodes, 3]
  std::vector<float> g2m_features, mesh_features, m2g_features;  // [edges, 4]
  int64_t num_grid_nodes() const { return grid.num_nodes(); }
  int64_t num_mesh_nodes() const { return static_cast<int64_t>(finest_mesh.vertices.size()); }
};
// How the graphs are made. gc builds them (GRAPHCAST.md section 2) unless
// `graphs` gives the three edge lists (a published model's own, loaded by
// --graphs): then they are used as given, in the grid's node numbering.
struct GeometryOptions {
  double radius_fraction = 0.6;           // grid2mesh radius / longest edge of the finest mesh
  double m2g_edge_normalization = 0.0;    // > 0: mesh2grid edge features divided by it (else the longest edge)
  const Graph* g2m = nullptr;             // all three or none: senders grid, receivers mesh
  const Graph* mesh = nullptr;
  const Graph* m2g = nullptr;
};
GraphCastGeometry build_geometry(const Grid& grid, int mesh_level, const GeometryOptions& options = {});

// One edge block: a contiguous range of receivers and their edges (edges are
// sorted by receiver), with index tensors local to the range. The gathers index
// the whole sender and receiver sets; their backward sums into the rows the block
// touches (IndexCsr::rows) and adds only those into the gradient.
struct EdgeBlock {
  int64_t first_receiver = 0, receivers = 0;
  int64_t first_edge = 0, edges = 0;
  IndexCsr senders;         // index [edges] into the sender set; rows: the block's distinct senders, ascending
  IndexCsr receivers_csr;   // index [edges] into the receiver set; rows: the range; offsets: segment_offsets
  Tensor segment_offsets;   // [receivers + 1] i32, local edge offsets of the range's receivers
};

// One graph on the device, replicated `batch` times (block diagonal).
struct DeviceGraph {
  IndexCsr senders;         // gather of sender rows, with the sender grouping
  IndexCsr receivers;       // gather of receiver rows (edges sorted by receiver)
  Tensor receiver_offsets;  // [receivers + 1] i32
  Tensor edge_features;     // [edges, 4] f32
  std::vector<EdgeBlock> blocks;  // edge_blocks_for(...) of them for the encoder and decoder graphs; none for the mesh
  int64_t num_edges() const { return senders.index.numel(); }
};

// Model parallel (partition.h): the senders of a graph that other ranks own,
// received before its edge update. The rows to send are gathered from this
// rank's sender rows (`send`, with its CSR for the backward's sum), exchanged
// over `comm`, and appended after them; per sample, in the replicated batch,
// the received rows come after all the samples' own rows (partition.h).
struct DeviceHalo {
  bool active = false;
  IndexCsr send;                        // [rows sent] into this rank's sender rows
  std::vector<int64_t> send_counts;     // [ranks] rows to each rank (the batch's samples together)
  std::vector<int64_t> recv_counts;     // [ranks] rows from each rank
};

struct DeviceGeometry {
  DeviceGraph g2m, mesh, m2g;
  DeviceHalo g2m_halo, mesh_halo, m2g_halo;  // model parallel only (active)
  Communicator* comm = nullptr;              // model parallel: the ranks the halos move between
  Tensor grid_structural;  // [batch * grid nodes, 3] compute dtype
  Tensor mesh_input;       // [batch * mesh nodes, in_channels] compute dtype: zeros + structural
  int64_t grid_nodes = 0, mesh_nodes = 0;  // per sample
  int batch = 1;
};
// Category `input`, labelled "graph.*". With a shard (model parallel,
// partition.h) the rank's part: its owned nodes, the edges into them, and the
// halos exchanged over `comm` (every rank of a model-parallel group calls the
// forward and backward together).
struct GeometryShard;
DeviceGeometry upload_geometry(const GraphCastGeometry& geometry, const GraphCastConfig& config, Device device,
                               const GeometryShard* shard = nullptr, Communicator* comm = nullptr);
// x [batch * owned senders, L] followed by the halo's rows (x itself without a halo).
Var halo_extend(const Var& x, const DeviceHalo& halo, Communicator* comm);

// Linear -> SiLU -> Linear (-> LayerNorm).
struct Mlp {
  std::string name;
  Var w0, b0, w1, b1, gamma, beta;
  bool layernorm = true;
  int64_t in = 0, hidden = 0, out = 0;
  std::vector<Var> parameters() const;
  int64_t parameter_count() const;
};

// y = x W (+ b): the gates and attention scores of the gated and attention blocks.
struct Dense {
  std::string name;
  Var w, b;  // b undefined: no bias
  int64_t parameter_count() const { return w.value().numel() + (b.defined() ? b.value().numel() : 0); }
};

// One item of a rematerialization plan (autograd/remat_planner.h): checkpoint=false:
// stages run recording (tapes kept); checkpoint=true: the stages run without
// keeping intermediates, only the item's input is kept, and inside backward they
// are recomputed following `inner` (empty = plain), so plans nest exactly like
// the planner's optimal schedules.
using StagePlan = RematPlanItem;

struct ParameterCounts {
  int64_t encoder = 0, processor = 0, decoder = 0;
  int64_t total() const { return encoder + processor + decoder; }
};

class GraphCastNet {
 public:
  // Parameters: truncated normal (2 std) with std 1/sqrt(fan_in), biases 0,
  // LayerNorm gamma 1 / beta 0; f32 masters, category `parameter`. On meta the
  // values are not initialized (there are none).
  GraphCastNet(const GraphCastConfig& config, Device device, uint64_t seed);

  // grid_data [batch * grid nodes, in_channels - 3] in the compute dtype -> the
  // normalized residual prediction [batch * grid nodes, out_channels].
  // plan: segments covering stages 0..layers+1 (empty: one plain segment).
  Var forward(const Var& grid_data, const DeviceGeometry& geometry, const std::vector<StagePlan>& plan = {}) const;

  std::vector<Var> parameters() const;
  ParameterCounts parameter_counts() const;
  const GraphCastConfig& config() const { return config_; }
  int num_stages() const { return config_.layers + 2; }
  // f32 master weights (f64 when the compute dtype is f64, for gradient checks).
  DType master_dtype() const { return accumulation_dtype(config_.compute_dtype); }

  // State passed between stages: {grid latents, mesh latents, mesh edge latents}
  // (stage 0 takes {grid input} instead).
  std::vector<Var> run_stage(int stage, const std::vector<Var>& state, const DeviceGeometry& geometry) const;

 private:
  Mlp make_mlp(const std::string& name, int64_t in, int64_t hidden, int64_t out, bool layernorm);
  Dense make_dense(const std::string& name, int64_t in, int64_t out, bool bias = true);
  // A parameter "<module>.<pname>" in the current MemoryScope (category parameter).
  Var make_weight(const std::string& module, const std::string& pname, int64_t fan_in, int64_t fan_out,
                  uint64_t seed) const;
  Var make_constant(const std::string& module, const std::string& pname, int64_t n, double value) const;
  // The aggregated messages of a processor layer, by block: [mesh nodes, L].
  Var processor_aggregate(int layer, const Var& messages, const DeviceGeometry& geometry) const;
  Var apply_mlp(const Mlp& mlp, const Var& x) const;
  // The rest of an MLP after its first linear: SiLU -> Linear (-> LayerNorm).
  Var finish_mlp(const Mlp& mlp, const Var& first_linear_output) const;
  // The first linear layer over the concatenation [first_part, part 1, part 2, ...]
  // without building it (the concat trick): first_part W0[rows of first_part] + b0
  // + the other parts' products with their rows of W0, made by the caller (per
  // node, then gathered to the edges, for an edge MLP).
  Var first_linear_of_concat(const Mlp& mlp, const Var& first_part, const std::vector<Var>& other_products) const;
  // e' = edge MLP([e, v_sender, v_receiver]) over all edges of the graph (the
  // processor's mesh; the encoder and decoder go block by block).
  Var edge_mlp_forward(const Mlp& mlp, const Var& edges, const Var& senders_latent, const Var& receivers_latent,
                       const DeviceGraph& graph) const;
  // v' = node MLP([v, aggregated]).
  Var node_mlp_forward(const Mlp& mlp, const Var& nodes, const Var& aggregated) const;
  std::vector<Var> run_plan(const std::vector<StagePlan>& plan, const std::vector<Var>& state,
                           const DeviceGeometry& geometry) const;
  // Aggregated messages of one edge block: [block receivers, L].
  Var block_messages(const Mlp& edge_embed, const Mlp& edge_mlp, const Var& sender_side, const Var& receiver_side,
                     const DeviceGraph& graph, const EdgeBlock& block, DType aggregate_dtype) const;
  std::vector<Var> encoder(const Var& grid_data, const DeviceGeometry& geometry) const;
  std::vector<Var> processor_step(int layer, const std::vector<Var>& state, const DeviceGeometry& geometry) const;
  Var decoder(const std::vector<Var>& state, const DeviceGeometry& geometry) const;
  // Bipartite interaction aggregated into receivers: the edge set runs block by
  // block, the blocks grouped into config.edge_chunks checkpointed chunks.
  Var bipartite_aggregate(const Mlp& edge_embed, const Mlp& edge_mlp, const Var& senders_latent,
                          const Var& receivers_latent, const DeviceGraph& graph, DType aggregate_dtype) const;

  GraphCastConfig config_;
  Device device_;
  uint64_t seed_;
  uint64_t next_param_seed_ = 0;
  // encoder
  Mlp grid_embed_, mesh_embed_, g2m_edge_embed_, g2m_edge_mlp_, g2m_mesh_node_mlp_, g2m_grid_node_mlp_;
  // processor
  Mlp mesh_edge_embed_;
  std::vector<Mlp> processor_edge_mlps_, processor_node_mlps_;
  std::vector<Dense> edge_gates_, node_gates_;  // gated: one each per layer
  std::vector<Dense> attention_scores_;         // attention: one per layer
  // decoder
  Mlp m2g_edge_embed_, m2g_edge_mlp_, m2g_grid_node_mlp_, m2g_mesh_node_mlp_unused_, output_mlp_;
};

// Plans for the fixed policies. every_k: processor layers grouped by k per
// checkpoint (encoder and decoder plain); all: every stage its own checkpoint.
std::vector<StagePlan> plan_none(int layers);
std::vector<StagePlan> plan_every(int layers, int k);
std::vector<StagePlan> plan_all(int layers);

}  // namespace gc::model
