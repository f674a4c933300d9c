// pictures.h: the PNG pictures of a training run in --out: the training loss
// curve (loss.png) and, on demo data, forecast maps of one held-out case
// (forecast_<variable>.png: truth / prediction / error at several leads, with
// colour bars and titles).
#pragma once

#include <string>

#include "tools/train/trainer.h"

namespace gc {

void write_pictures(Trainer& trainer, const EvalResult* eval, const std::string& out_dir);

}  // namespace gc
