// grow.h: gc_train --grow-from: a bigger model initialized from a trained smaller one.
//
// Deeper: the old processor layers keep their weights and the new ones (appended
// after them) start as the identity through the residual: the last linear layer
// of their edge and node MLPs is zero, so with LayerNorm's beta at 0 their updates
// are exactly 0 (for every block: a zero message gates to 0 and averages to 0).
// Wider: latent L -> r L (r a whole number) by a function-preserving widening
// (Net2Net with replication): new channel j copies old channel f(j), every old
// channel r times; a weight's input rows are the old rows divided by r plus
// noise that sums to zero over the r copies, its output columns are copied.
// Every latent vector of the wide model is then its narrow self with each
// channel repeated r times, which LayerNorm leaves alone (same mean, same
// variance), so the first forecast equals the smaller model's within rounding,
// and the noise breaks the copies' symmetry from the first gradient on. The
// attention heads keep their channels: f maps head h's channels to head h's.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "model/graphcast.h"
#include "tools/train/options.h"

namespace gc {

// The smaller model: its shape and its f32 master weights (cpu), by name.
struct GrowSource {
  std::string path;  // the weights file read
  int64_t latent = 0;
  int layers = 0;
  std::string processor = "interaction";
  std::vector<std::pair<std::string, Tensor>> weights;
};

// Reads CKPT (a checkpoint directory, or an --out directory whose `latest`
// names one) and checks that this run can grow from it: the same preset, mesh,
// channels, data resolution and processor; a latent that is the same or a whole
// multiple of the old one; no fewer layers; something to grow. UsageError (exit
// 2) otherwise, saying what differs.
GrowSource load_grow_source(const std::string& checkpoint, const TrainOptions& options);

// Writes the grown weights into `net`'s parameters (cpu or cuda). noise_scale:
// the std of the symmetry-breaking noise relative to each weight's rms (0: none).
void grow_parameters(model::GraphCastNet& net, const GrowSource& source, uint64_t seed, double noise_scale = 1e-2);

}  // namespace gc
