// chain.h: the GraphCast training step as a chain of stages for the
// rematerialization planner (autograd/remat_planner.h), measured on the meta
// device: exact bytes from the allocator, costs as linear-layer FLOPs (the work
// that dominates every stage).
#pragma once

#include "autograd/remat_planner.h"
#include "model/graphcast.h"

namespace gc {

// The network as a chain of stages for the planner, measured on the meta device:
// for each stage, the bytes of its output state and of its tape (exact, from the
// allocator), its transient bytes in forward and backward, and its linear-layer
// FLOPs in forward and in backward (recomputation of edge chunks included).
// `net` and `geometry` must be on meta.
Chain measure_chain(const model::GraphCastNet& net, const model::DeviceGeometry& geometry);

}  // namespace gc
