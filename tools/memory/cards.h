// cards.h: the GPUs gc plans for, from their vendors' data sheets.
//
// One table serves the roofline estimate of a step (peak FLOP/s and memory
// bandwidth) and the question "which card fits" (memory). Figures are the
// data sheets' dense (no sparsity) tensor-core rates and nominal memory; a
// card's usable memory is less by what the CUDA context and cuBLAS take, which
// callers subtract as a stated margin (kCudaContextMargin), never silently.
//
// Sources (data sheets):
//   A100 40/80 GB SXM: NVIDIA A100 Tensor Core GPU data sheet (bf16 312 TFLOP/s,
//     TF32 156, fp32 19.5; HBM2 1,555 GB/s (40 GB), HBM2e 2,039 GB/s (80 GB)).
//   H100 SXM 80 GB: NVIDIA H100 Tensor Core GPU data sheet (bf16 989 TFLOP/s dense,
//     TF32 495, fp32 67; HBM3 3.35 TB/s).
//   H200 SXM 141 GB: NVIDIA H200 data sheet (bf16 989 dense, TF32 495, fp32 67;
//     HBM3e 4.8 TB/s).
//   L40S 48 GB: NVIDIA L40S data sheet (bf16 362 dense, TF32 183, fp32 91.6;
//     GDDR6 864 GB/s).
//   RTX 4090 24 GB: NVIDIA Ada GPU architecture whitepaper, appendix (bf16 with fp32
//     accumulate 165.2 dense, TF32 82.6, fp32 82.6; GDDR6X 1,008 GB/s).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace gc {

struct Card {
  const char* name;          // the --card spelling
  int64_t memory_bytes;      // total memory as the driver reports it (H200: 143,771 MiB, about 140 GiB)
  double bf16_flops;         // dense tensor-core FLOP/s, bf16/fp16 inputs, fp32 accumulate
  double tf32_flops;         // dense TF32 tensor-core FLOP/s (fp32 GEMMs under --tf32)
  double fp32_flops;         // non-tensor fp32 FLOP/s (fp32 GEMMs without TF32)
  double memory_bandwidth;   // bytes/s
};

// What lives outside gc's allocator on a card: the CUDA context, cuBLAS's
// handle and workspace, the driver's reservations (about 0.5-1.5 GB on the
// cards above; 2 GB is the margin every planning command states).
constexpr int64_t kCudaContextMargin = 2000000000;

inline const std::vector<Card>& known_cards() {
  constexpr int64_t GiB = int64_t(1) << 30;
  static const std::vector<Card> cards = {
      {"A100-40GB", 40 * GiB, 312e12, 156e12, 19.5e12, 1555e9},
      {"A100-80GB", 80 * GiB, 312e12, 156e12, 19.5e12, 2039e9},
      {"H100-80GB", 80 * GiB, 989e12, 495e12, 67e12, 3350e9},
      {"H200-141GB", 140 * GiB, 989e12, 495e12, 67e12, 4800e9},
      {"L40S", 48 * GiB, 362e12, 183e12, 91.6e12, 864e9},
      {"RTX4090", 24 * GiB, 165.2e12, 82.6e12, 82.6e12, 1008e9},
  };
  return cards;
}

// The card of that name (case-insensitive), or nullptr.
inline const Card* find_card(const std::string& name) {
  auto lower = [](std::string s) {
    for (char& c : s) c = (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : c;
    return s;
  };
  for (const Card& card : known_cards())
    if (lower(card.name) == lower(name)) return &card;
  return nullptr;
}

// The card a device of that name (as cudaGetDeviceProperties gives it) and total
// memory is, or nullptr: "NVIDIA H100 80GB HBM3" is H100-80GB, an A100 with more
// than 48 GiB the 80 GB one.
inline const Card* card_for_device(const std::string& device_name, int64_t total_bytes) {
  auto has = [&](const char* part) { return device_name.find(part) != std::string::npos; };
  const char* name = nullptr;
  if (has("H200")) name = "H200-141GB";
  else if (has("H100")) name = "H100-80GB";
  else if (has("A100")) name = total_bytes > (int64_t(48) << 30) ? "A100-80GB" : "A100-40GB";
  else if (has("L40S")) name = "L40S";
  else if (has("4090")) name = "RTX4090";
  return name ? find_card(name) : nullptr;
}

// "A100-40GB, A100-80GB, ...": for error messages and --help.
inline std::string card_names() {
  std::string names;
  for (const Card& card : known_cards()) names += (names.empty() ? "" : ", ") + std::string(card.name);
  return names;
}

}  // namespace gc
