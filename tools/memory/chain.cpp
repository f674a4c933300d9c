// chain.cpp: measure_chain (see chain.h).
#include <stdexcept>

#include "tools/memory/chain.h"

namespace gc {

using model::DeviceGeometry;
using model::GraphCastConfig;
using model::GraphCastNet;

namespace {
int64_t bytes_of(const std::vector<Var>& vars) {
  int64_t total = 0;
  for (const Var& v : vars)
    if (v.defined() && v.value().storage() && v.value().storage()->block())
      total += static_cast<int64_t>(v.value().storage()->block()->size);
  return total;
}
}  // namespace

Chain measure_chain(const GraphCastNet& net, const DeviceGeometry& geometry) {
  if (geometry.g2m.senders.index.device() != Device::meta)
    throw std::invalid_argument("measure_chain: the geometry must be on the meta device");
  CachingAllocator& meta = allocator_for(Device::meta);
  const GraphCastConfig& c = net.config();
  Chain chain;
  chain.input_needs_gradient = false;
  std::vector<Var> state;
  {
    MemoryScope scope(Category::input, "chain_input");
    state = {Var(Tensor::empty({geometry.grid_nodes * geometry.batch, c.in_channels - 3}, c.compute_dtype, Device::meta))};
  }
  chain.input_bytes = bytes_of(state);
  for (int stage = 0; stage < net.num_stages(); ++stage) {
    ChainStage s;
    s.name = stage == 0 ? "encoder" : stage > c.layers ? "decoder" : "processor." + std::to_string(stage - 1);
    Tape& tape = current_tape();
    if (tape.size() != 0) throw std::logic_error("measure_chain: the tape must be empty");
    meta.reset_peak();
    const int64_t before = meta.stats().allocated;
    const double flops_before = linear_flops();
    std::vector<Var> outputs = net.run_stage(stage, state, geometry);
    const int64_t after = meta.stats().allocated;
    s.forward_cost = linear_flops() - flops_before;
    s.forward_temp_bytes = std::max<int64_t>(0, meta.stats().peak_allocated - after);
    // Outputs that are the inputs passed through (the grid latents in the processor)
    // are not new bytes of this stage.
    std::vector<Var> fresh;
    for (const Var& o : outputs) {
      bool passed_through = false;
      for (const Var& i : state)
        if (i.defined() && o.defined() && i.value().storage() == o.value().storage()) passed_through = true;
      if (!passed_through) fresh.push_back(o);
    }
    s.output_bytes = bytes_of(outputs);
    s.tape_bytes = std::max(after - before + (bytes_of(outputs) - bytes_of(fresh)), s.output_bytes);
    // Backward of the stage alone, seeded with output gradients, for its costs and transients.
    std::vector<std::pair<std::shared_ptr<GradSlot>, Tensor>> seeds;
    {
      MemoryScope scope(Category::temporary, "chain_seed");
      for (const Var& o : outputs)
        if (o.requires_grad()) seeds.push_back({o.slot(), Tensor::empty(o.shape(), o.dtype(), Device::meta)});
    }
    const int64_t backward_base = meta.stats().allocated;
    meta.reset_peak();
    const double flops_backward = linear_flops();
    tape.run_backward(seeds);
    seeds.clear();
    s.backward_cost = linear_flops() - flops_backward;
    s.backward_temp_bytes = std::max<int64_t>(0, meta.stats().peak_allocated - backward_base);
    for (Var& p : net.parameters()) p.zero_grad();
    // The next stage starts from fresh leaves holding these values.
    std::vector<Var> next;
    for (const Var& o : outputs) next.push_back(Var(o.value(), true));
    state = next;
    chain.stages.push_back(s);
  }
  return chain;
}

}  // namespace gc
