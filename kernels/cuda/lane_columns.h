// kernels/cuda/lane_columns.h: which columns of a row a lane holds, for the
// kernels where a warp keeps a row (or a pass of 32 * Slots columns of it) in
// registers: the group sums, the segment sum's backward, LayerNorm (nvcc only).
//
// A lane holds packs of kPack = 16 / sizeof(T) consecutive columns (8 for bf16
// and f16, 4 for f32, 2 for f64): its slot j is column
//   c0 + (32 (j / kPack) + lane) kPack + j % kPack
// of a pass starting at column c0. When the rows are whole 16-byte packs and
// every tensor starts on 16 bytes (the allocator's blocks do; a view may not),
// a pack is one 16-byte load or store; otherwise the same slots are loaded one
// element at a time. The slots, so every sum's order, are the same on both
// paths: the bits cannot depend on which one ran.
#pragma once

#include <cstdint>
#include <initializer_list>

#include "kernels/cuda/common.h"

namespace gc::cuda {

template <class T>
struct alignas(16) LanePack {
  T v[16 / sizeof(T)];
};

// M names the mapping (its element size sets kPack); the rows read and written
// through it may hold another dtype (a group sum from f32 into bf16, say), but
// only rows of M's element size move as packs.
template <class M, int Slots>
struct LaneColumns {
  static constexpr int kPack = static_cast<int>(16 / sizeof(M));
  static constexpr int kPacks = Slots / kPack;  // packs a lane holds
  static_assert(Slots % kPack == 0, "a lane holds whole packs");
  static constexpr int64_t kPassColumns = 32 * static_cast<int64_t>(Slots);

  // The first column of the lane's pack p (0 <= p < kPacks) in a pass starting at c0.
  __device__ static int64_t pack_column(int64_t c0, int lane, int p) {
    return c0 + (32 * static_cast<int64_t>(p) + lane) * kPack;
  }
  __device__ static int64_t column(int64_t c0, int lane, int j) { return pack_column(c0, lane, j / kPack) + j % kPack; }

  // The raw stored values (no conversion), T{} (zero) past the end. Packed:
  // cols % kPack == 0 and row 16-byte aligned (so a pack that starts inside the
  // row ends inside it).
  template <bool kPacked, class T>
  __device__ static void load_raw(T (&v)[Slots], const T* row, int64_t cols, int64_t c0, int lane) {
    static_assert(!kPacked || sizeof(T) == sizeof(M), "packs of 16 bytes");
#pragma unroll
    for (int p = 0; p < kPacks; ++p) {
      const int64_t first = pack_column(c0, lane, p);
      if constexpr (kPacked) {
        LanePack<T> pack{};
        if (first < cols) pack = *reinterpret_cast<const LanePack<T>*>(row + first);
#pragma unroll
        for (int i = 0; i < kPack; ++i) v[p * kPack + i] = pack.v[i];
      } else {
#pragma unroll
        for (int i = 0; i < kPack; ++i) v[p * kPack + i] = first + i < cols ? row[first + i] : T{};
      }
    }
  }

  // v[j] = row[column j] in Acc (0 past the end): the raw values, widened.
  template <bool kPacked, class T, class Acc>
  __device__ static void load(Acc (&v)[Slots], const T* row, int64_t cols, int64_t c0, int lane) {
    T raw[Slots];
    load_raw<kPacked>(raw, row, cols, c0, lane);
#pragma unroll
    for (int j = 0; j < Slots; ++j) v[j] = static_cast<Acc>(load_value(raw[j]));
  }

  // row[column j] = v[j] for the columns inside the row.
  template <bool kPacked, class T>
  __device__ static void store(T* row, const T (&v)[Slots], int64_t cols, int64_t c0, int lane) {
    static_assert(!kPacked || sizeof(T) == sizeof(M), "packs of 16 bytes");
#pragma unroll
    for (int p = 0; p < kPacks; ++p) {
      const int64_t first = pack_column(c0, lane, p);
      if constexpr (kPacked) {
        if (first < cols) {
          LanePack<T> pack;
#pragma unroll
          for (int i = 0; i < kPack; ++i) pack.v[i] = v[p * kPack + i];
          *reinterpret_cast<LanePack<T>*>(row + first) = pack;
        }
      } else {
#pragma unroll
        for (int i = 0; i < kPack; ++i)
          if (first + i < cols) row[first + i] = v[p * kPack + i];
      }
    }
  }
};

// Whether rows of `cols` elements of T, in tensors starting at these addresses,
// are whole 16-byte packs.
template <class T>
inline bool row_packs_fit(int64_t cols, std::initializer_list<const void*> starts) {
  if ((cols * static_cast<int64_t>(sizeof(T))) % 16 != 0) return false;
  for (const void* p : starts)
    if (reinterpret_cast<uintptr_t>(p) % 16 != 0) return false;
  return true;
}

}  // namespace gc::cuda
