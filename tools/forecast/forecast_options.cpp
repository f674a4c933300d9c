// forecast_options.cpp: parse_forecast_options (forecast_options.h).
#include "tools/forecast/forecast_options.h"

#include "tools/usage_error.h"

namespace gc::forecast {

std::string forecast_usage() {
  return R"(usage: gc_forecast --checkpoint FILE --stats FILE --inputs FILE [options]

Runs GraphCast's predictor (DeepMind's autoregressive.Predictor over
normalization.InputsAndResiduals) for N steps of 6 h, without a tape.

  --checkpoint FILE    DeepMind's checkpoint (.npz, np.savez) or a converted one (.safetensors);
                       the model and the task come from it
  --stats FILE         normalization statistics .npz (mean/, stddev/, diffs_stddev/<var>)
  --inputs FILE        input frames .npz (<var>, lat, lon, datetime)
  --forcings FILE      forcings at the target times .npz (default: computed: TOA solar
                       radiation and year/day progress at 6 h after the last input, ...)
  --graphs FILE        the three edge lists .npz (a published model's own graphs;
                       default: gc builds them)
  --steps N            autoregressive steps (default 1)
  --precision P        fp32 | bf16 | fp16 compute (f32 weights, normalization, residual add)
  --device D           cpu | cuda | meta (meta: dry run, the peak of the real run to the byte)
  --meta-target D      which device a meta run stands for: cuda (default) | cpu
  --out FILE           the forecast, safetensors: <var> f32 [steps, levels, lat, lon]
                       (default runs/forecast/forecast.safetensors)
  --plot VAR[@HPA],... PNG maps of these variables (at that pressure level), one panel a step
  --plot-dir DIR       where the maps go (default: the folder of --out)
  --report FILE.json   configuration, graphs, parameters, memory at the peak, timing
  --trace FILE.json    Chrome trace of the run (--trace-png FILE.png: its memory timeline)
  --convert-to FILE    write --checkpoint as a gc checkpoint (.safetensors) and stop
  --quiet              print nothing but errors
  --help
)";
}

DType ForecastOptions::compute_dtype() const {
  if (precision == "bf16") return DType::bf16;
  if (precision == "fp16") return DType::f16;
  return DType::f32;
}

bool parse_forecast_options(const std::vector<std::string>& args, ForecastOptions* o, std::string* help) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& flag = args[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= args.size()) throw UsageError(flag + " needs a value");
      return args[++i];
    };
    auto device = [&](const std::string& value) {
      if (value == "cpu") return Device::cpu;
      if (value == "cuda") return Device::cuda;
      if (value == "meta") return Device::meta;
      throw UsageError(flag + " must be cpu, cuda or meta, got '" + value + "'");
    };
    if (flag == "--help" || flag == "-h") {
      *help = forecast_usage();
      return false;
    } else if (flag == "--checkpoint") o->checkpoint = next();
    else if (flag == "--stats") o->stats = next();
    else if (flag == "--inputs") o->inputs = next();
    else if (flag == "--forcings") o->forcings = next();
    else if (flag == "--graphs") o->graphs = next();
    else if (flag == "--convert-to") o->convert_to = next();
    else if (flag == "--out") o->out = next();
    else if (flag == "--plot-dir") o->plot_dir = next();
    else if (flag == "--report") o->report_path = next();
    else if (flag == "--trace") o->trace_path = next();
    else if (flag == "--trace-png") o->trace_png = next();
    else if (flag == "--quiet") o->quiet = true;
    else if (flag == "--device") o->device = device(next());
    else if (flag == "--meta-target") {
      o->meta_target = device(next());
      if (o->meta_target == Device::meta) throw UsageError("--meta-target must be cpu or cuda");
    } else if (flag == "--precision") {
      o->precision = next();
      if (o->precision != "fp32" && o->precision != "bf16" && o->precision != "fp16")
        throw UsageError("--precision must be fp32, bf16 or fp16, got '" + o->precision + "'");
    } else if (flag == "--steps") {
      const std::string v = next();
      if (v.empty() || v.size() > 6 || v.find_first_not_of("0123456789") != std::string::npos || std::stoi(v) < 1)
        throw UsageError("--steps must be a whole number from 1 to 999999, got '" + v + "'");
      o->steps = std::stoi(v);
    } else if (flag == "--plot") {
      const std::string list = next();
      size_t start = 0;
      while (start <= list.size()) {
        const size_t comma = std::min(list.find(',', start), list.size());
        const std::string item = list.substr(start, comma - start);
        PlotRequest p;
        const size_t at = item.find('@');
        p.variable = item.substr(0, at);
        if (p.variable.empty()) throw UsageError("--plot: an empty variable name in '" + list + "'");
        if (at != std::string::npos) {
          const std::string level = item.substr(at + 1);
          if (level.empty() || level.size() > 6 || level.find_first_not_of("0123456789") != std::string::npos)
            throw UsageError("--plot: '" + item + "' needs VAR@HPA with a whole number of hPa");
          p.level = std::stoi(level);
        }
        o->plots.push_back(p);
        start = comma + 1;
      }
    } else {
      throw UsageError("unknown flag '" + flag + "' (see --help)");
    }
  }
  if (o->checkpoint.empty()) throw UsageError("--checkpoint FILE is required (see --help)");
  if (!o->convert_to.empty()) return true;
  if (o->stats.empty()) throw UsageError("--stats FILE is required (see --help)");
  if (o->inputs.empty()) throw UsageError("--inputs FILE is required (see --help)");
  return true;
}

}  // namespace gc::forecast
