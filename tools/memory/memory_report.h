// memory_report.h: the end-of-run memory table and the out-of-memory
// explanation, as text for people.
#pragma once

#include <string>
#include <vector>

#include "runtime/allocator.h"

namespace gc {

// Bytes per category at the peak, reserved vs allocated, the largest live
// tensors at the peak, and parameters vs activations in one line.
// outside_allocator (>= 0 on cuda): the GPU's bytes in use that gc did not reserve.
std::string memory_table(Device device, const AllocatorStats& stats, const std::vector<LiveBlock>& largest,
                         const std::vector<LiveBlock>& by_label = {}, int64_t outside_allocator = -1);

// Bytes at the peak grouped by module: a label's first two components after
// dropping the chunking and rollout components ("rollout.1", "edge_block.3",
// "edge_chunk.0"): "processor.7", "decoder.m2g_edge_mlp", "graph.g2m", "batch".
// Largest first.
std::vector<std::pair<std::string, int64_t>> bytes_by_module(const std::vector<LiveBlock>& by_label);
std::string module_of(const std::string& label);

// What was being allocated, the live bytes per category, the limit, and (when
// known, > 0) the smallest limit that would have passed.
std::string oom_explanation(const OutOfMemory& oom, int64_t smallest_passing_limit);

}  // namespace gc
