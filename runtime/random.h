// random.h: gc's own pseudo-random numbers: a splitmix64 stream, uniform
// doubles in (0, 1) and standard normals (Box-Muller, one value per call).
//
// Why not <random>'s distributions: std::normal_distribution's algorithm is left
// to each standard library, so the same seed would give other parameters with
// libc++ than with libstdc++. These functions are fixed here, so a seed gives the
// same model, inputs and data everywhere. The state is a plain integer: the seed
// is the initial state and every call advances it.
#pragma once

#include <cmath>
#include <cstdint>

namespace gc {

inline uint64_t next_random(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// In (0, 1): never 0, so its logarithm is finite.
inline double next_uniform_open(uint64_t& state) {
  return (static_cast<double>(next_random(state) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

inline double next_normal(uint64_t& state) {
  constexpr double kPi = 3.14159265358979323846;
  const double u1 = next_uniform_open(state), u2 = next_uniform_open(state);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * kPi * u2);
}

}  // namespace gc
