// report.cpp: the --report JSON (DESIGN.md "Programs and their contracts":
// its keys are relied on; more may be added), one function per section.
#include <algorithm>

#include "tools/memory/memory_report.h"
#include "tools/memory/time_report.h"
#include "tools/train/trainer.h"

namespace gc {

namespace {

json::Value config_json(const TrainOptions& o) {
  json::Value c = json::Value::object();
  c["preset"] = o.preset;
  c["grid_deg"] = o.grid_deg;
  c["mesh_level"] = o.mesh_level;
  c["latent"] = o.latent;
  c["layers"] = o.layers;
  c["in_channels"] = o.in_channels;
  c["out_channels"] = o.out_channels;
  c["concat_trick"] = o.concat_trick;
  c["processor"] = o.processor;
  if (!o.grow_from.empty()) c["grow_from"] = o.grow_from;
  c["steps"] = o.steps;
  c["batch"] = o.global_batch > 0 ? o.global_batch : o.batch;  // the step's samples over every rank
  c["ranks"] = o.ranks;
  c["model_parallel"] = o.model_parallel;
  c["accum"] = o.accum;
  c["lr"] = o.lr;
  c["warmup_steps"] = o.warmup_steps;
  c["rollout"] = o.rollout;
  c["seed"] = static_cast<int64_t>(o.seed);
  c["clip_norm"] = o.clip_norm;
  c["weight_decay"] = o.weight_decay;
  c["adam_beta1"] = o.adam_beta1;
  c["adam_beta2"] = o.adam_beta2;
  c["adam_eps"] = o.adam_eps;
  c["precision"] = o.precision;
  c["remat"] = o.remat;
  c["mem_budget"] = o.mem_budget;
  c["mem_limit"] = o.mem_limit;
  c["edge_chunks"] = o.edge_chunks;
  c["device"] = device_name(o.device);
  c["tf32"] = o.tf32;
  c["profile"] = o.profile;
  if (!o.card.empty()) c["card"] = o.card;
  c["out"] = o.out_dir;
  c["data_truncation"] = o.data_truncation;
  return c;
}

json::Value categories_json(const std::array<int64_t, kNumCategories>& bytes) {
  json::Value v = json::Value::object();
  for (int c = 0; c < kNumCategories; ++c) v[category_name(static_cast<Category>(c))] = bytes[static_cast<size_t>(c)];
  return v;
}

json::Value matrix_json(const std::vector<std::vector<double>>& m) {
  json::Value a = json::Value::array();
  for (const auto& row : m) {
    json::Value r = json::Value::array();
    for (double v : row) r.push_back(v);
    a.push_back(r);
  }
  return a;
}

json::Value graph_json(const model::GraphCastGeometry& g) {
  json::Value graph = json::Value::object();
  graph["grid_nodes"] = g.num_grid_nodes();
  graph["mesh_nodes"] = g.num_mesh_nodes();
  graph["mesh_edges"] = g.mesh.num_edges();
  graph["g2m_edges"] = g.g2m.num_edges();
  graph["m2g_edges"] = g.m2g.num_edges();
  return graph;
}

json::Value params_json(const model::ParameterCounts& pc) {
  json::Value params = json::Value::object();
  params["total"] = pc.total();
  params["encoder"] = pc.encoder;
  params["processor"] = pc.processor;
  params["decoder"] = pc.decoder;
  return params;
}

json::Value plan_json(const std::string& policy, const RematPlan& chosen) {
  json::Value plan = json::Value::object();
  plan["policy"] = policy;
  json::Value segments = json::Value::array();
  for (const model::StagePlan& p : chosen.stages) {
    json::Value seg = json::Value::object();
    seg["first_stage"] = p.first_stage;
    seg["last_stage"] = p.last_stage;
    seg["checkpoint"] = p.checkpoint;
    segments.push_back(seg);
  }
  plan["segments"] = segments;
  plan["edge_chunks"] = chosen.edge_chunks;
  if (chosen.automatic()) {
    plan["budget"] = chosen.budget;
    plan["description"] = chosen.description;
    plan["predicted_peak_allocated"] = chosen.predicted_peak_allocated;
    plan["predicted_peak_reserved"] = chosen.predicted_peak_reserved;
    plan["predicted_recompute_overhead"] = chosen.predicted_overhead;
  }
  return plan;
}

json::Value memory_json(Device device, const MemorySummary& memory, json::Value plan, size_t steps_run) {
  json::Value mem = json::Value::object();
  const AllocatorStats& s = memory.stats;
  mem["device"] = device_name(device);
  mem["peak_allocated"] = s.peak_allocated;
  mem["peak_reserved"] = s.peak_reserved;
  mem["at_peak"] = categories_json(s.at_peak);
  mem["peak_label"] = s.peak_label;
  mem["category_peak"] = categories_json(s.category_peak);
  mem["segments_peak"] = s.peak_segments;
  mem["ooms"] = s.num_ooms;
  if (memory.device_in_use >= 0) {
    mem["device_in_use"] = memory.device_in_use;
    mem["outside_allocator"] = memory.outside_allocator;
  }
  mem["plan"] = std::move(plan);
  if (!memory.ranks.empty()) {
    // Data parallel: every rank's figures (this object's are the writing rank's, rank 0).
    json::Value ranks = json::Value::array();
    for (const RankSummary& r : memory.ranks) {
      json::Value v = json::Value::object();
      v["rank"] = r.rank;
      v["replica"] = r.replica;
      v["shard"] = r.shard;
      v["batch"] = r.batch;
      v["peak_allocated"] = r.peak_allocated;
      v["peak_reserved"] = r.peak_reserved;
      v["bytes_sent"] = r.bytes_sent;
      v["communication_s"] = r.communication_seconds;
      v["steps_s"] = r.step_seconds;
      // Per step of this run: what went to the other ranks, and the step's wall
      // time split into time inside the communicator (transfer and waiting for
      // the other ranks) and the rest (compute and the step's own work).
      const double steps = std::max<double>(1.0, static_cast<double>(steps_run));
      v["bytes_sent_per_step"] = static_cast<double>(r.bytes_sent) / steps;
      v["communication_ms_per_step"] = 1e3 * r.communication_seconds / steps;
      v["compute_ms_per_step"] = 1e3 * (r.step_seconds - r.communication_seconds) / steps;
      ranks.push_back(v);
    }
    mem["ranks"] = ranks;
  }
  json::Value top = json::Value::array();
  for (const LiveBlock& b : memory.top_live) {
    json::Value t = json::Value::object();
    t["label"] = b.label;
    t["tensor"] = b.shape;
    t["category"] = category_name(b.category);
    t["bytes"] = b.bytes;
    top.push_back(t);
  }
  mem["largest_at_peak"] = top;
  json::Value modules = json::Value::array();
  for (const auto& [module, bytes] : bytes_by_module(memory.by_label)) {
    json::Value m = json::Value::object();
    m["module"] = module;
    m["bytes"] = bytes;
    modules.push_back(m);
  }
  mem["by_module_at_peak"] = modules;
  return mem;
}

json::Value timing_json(const std::vector<StepRecord>& history, const RunSetup& setup) {
  json::Value timing = json::Value::object();
  std::vector<double> ms;
  for (const StepRecord& h : history) ms.push_back(h.ms);
  std::sort(ms.begin(), ms.end());
  const double median_ms = ms.empty() ? 0.0 : ms[ms.size() / 2];
  timing["steps"] = static_cast<int64_t>(history.size());
  timing["step_ms_median"] = median_ms;
  const double flops = history.empty() ? 0.0 : history.back().flops;
  timing["flops_per_step"] = flops;
  timing["achieved_tflops"] = median_ms <= 0 ? 0.0 : flops / (median_ms * 1e-3) / 1e12;
  timing["setup_s"] = setup.seconds;
  timing["graph_build_s"] = setup.graph_seconds;
  return timing;
}

json::Value train_json(const std::vector<StepRecord>& history, const LossScaler& scaler) {
  json::Value train = json::Value::object();
  train["loss_first"] = history.empty() ? 0.0 : history.front().loss;
  train["loss_last"] = history.empty() ? 0.0 : history.back().loss;
  train["skipped_steps"] = scaler.skipped_steps;
  train["loss_scale"] = scaler.scale;
  return train;
}

json::Value eval_json(const EvalResult& eval) {
  json::Value e = json::Value::object();
  json::Value leads = json::Value::array();
  for (int h : eval.lead_hours) leads.push_back(h);
  e["lead_hours"] = leads;
  json::Value vars = json::Value::array();
  for (const std::string& v : eval.variables) vars.push_back(v);
  e["variables"] = vars;
  e["cases"] = eval.cases;
  json::Value rmse = json::Value::object();
  rmse["model"] = matrix_json(eval.rmse_model);
  rmse["persistence"] = matrix_json(eval.rmse_persistence);
  rmse["climatology"] = matrix_json(eval.rmse_climatology);
  e["rmse"] = rmse;
  json::Value acc = json::Value::object();
  acc["model"] = matrix_json(eval.acc_model);
  e["acc"] = acc;
  return e;
}

}  // namespace

json::Value Trainer::report(const EvalResult* eval) const {
  json::Value r = json::Value::object();
  r["config"] = config_json(options_);
  r["graph"] = graph_json(geometry());
  r["params"] = params_json(net_->parameter_counts());
  r["memory"] = memory_json(options_.device, memory_, plan_json(options_.remat, plan()), history_.size());
  r["timing"] = timing_json(history_, setup_);
  if (weather()) {
    r["memory"]["host_data_pipeline_bytes"] = host_data_bytes_;
    r["timing"]["data_waits"] = data_waits();
    r["timing"]["data_wait_ms"] = data_wait_seconds() * 1e3;
    r["config"]["data"] = weather()->data->dir;
    json::Value train_range = json::Value::array(), valid_range = json::Value::array();
    for (int64_t t : {weather()->train.first, weather()->train.last}) train_range.push_back(weather()->data->time_seconds(t));
    for (int64_t t : {weather()->valid.first, weather()->valid.last}) valid_range.push_back(weather()->data->time_seconds(t));
    r["config"]["train_seconds"] = train_range;
    r["config"]["valid_seconds"] = valid_range;
  }
  r["train"] = train_json(history_, loss_scaler_);
  if (profile_sum_.timed) r["time"] = time_json(profile_sum_, profiled_steps_, profiled_wall_ms_);
  // The modelled cost is the cuda device's: a dry run standing for it, or a real run beside its measured time.
  if (options_.device != Device::cpu && profiled_steps_ > 0) r["traffic"] = traffic_json(last_step_profile_, options_.card);
  if (eval && !eval->lead_hours.empty()) r["eval"] = eval_json(*eval);
  return r;
}

}  // namespace gc
