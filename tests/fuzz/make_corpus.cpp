// make_corpus.cpp: writes the binary seeds of tests/fuzz/corpus/ with gc's own
// writers, so that the seeds are files gc really produces (`make fuzz-corpus`;
// the text seeds of json/ and options/ are written by hand). Each seed is as
// small as its format allows, since libFuzzer mutates every byte of it.
//
//   safetensors/: every dtype, odd shapes, a zero-size tensor, metadata, and a
//                 file with no tensors;
//   swe_dataset/: data caches of the smallest settings that validate (T1 and
//                 T2, a few trajectories and frames: 216 to 1,272 bytes).
#include <cstdio>
#include <exception>
#include <string>

#include "runtime/tensor.h"
#include "tools/data/swe_dataset.h"
#include "tools/io/safetensors.h"

namespace {

gc::Tensor counting(const gc::Shape& shape, gc::DType dtype) {
  std::vector<double> values(static_cast<size_t>(gc::shape_numel(shape)));
  for (size_t i = 0; i < values.size(); ++i) values[i] = 0.5 * static_cast<double>(i) - 1.0;
  return gc::Tensor::from_doubles(values, shape, dtype, gc::Device::cpu);
}

void write_swe(const std::string& path, int truncation, int train, int validation, int test, int frames) {
  gc::data::SweDatasetConfig config;
  config.truncation = truncation;
  config.train_trajectories = train;
  config.validation_trajectories = validation;
  config.test_trajectories = test;
  config.frames_per_trajectory = frames;
  config.spinup_days = 0.25;
  gc::data::save_swe_dataset(gc::data::generate_swe_dataset(config, 1, false), path);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_corpus DIR (writes DIR/safetensors/* and DIR/swe_dataset/*)\n");
    return 2;
  }
  const std::string dir = argv[1];
  try {
    using gc::DType;
    const std::string st = dir + "/safetensors/";
    gc::save_safetensors(st + "one_f32.safetensors", {{"w", counting({3}, DType::f32)}});
    gc::save_safetensors(st + "every_dtype.safetensors",
                         {{"f32", counting({2, 3}, DType::f32)},
                          {"f64", counting({1}, DType::f64)},
                          {"bf16", counting({3, 1}, DType::bf16)},
                          {"f16", counting({1, 1, 3}, DType::f16)},
                          {"i32", counting({2, 1, 1, 2}, DType::i32)},
                          {"i64", counting({2}, DType::i64)}},
                         {{"format", "pt"}, {"step", "7"}});
    gc::save_safetensors(st + "scalar_and_empty.safetensors",
                         {{"scalar", counting({}, DType::f32)}, {"empty", counting({0, 4}, DType::f16)},
                          {"encoder.mlp.0.weight", counting({4, 2}, DType::bf16)}});
    gc::save_safetensors(st + "metadata_only.safetensors", {}, {{"gc", "checkpoint"}});
    gc::save_safetensors(st + "nothing.safetensors", {});

    const std::string swe = dir + "/swe_dataset/";
    write_swe(swe + "t1_one_frame.bin", 1, 1, 0, 0, 1);
    write_swe(swe + "t2_splits.bin", 2, 1, 1, 1, 1);
    write_swe(swe + "t1_frames.bin", 1, 2, 0, 0, 3);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "make_corpus: %s\n", error.what());
    return 1;
  }
  return 0;
}
