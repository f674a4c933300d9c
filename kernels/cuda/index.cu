// kernels/cuda/index.cu: gather and segment sums over CSR groups on the gpu,
// mirroring kernels/cpu/index.cpp, plus the device-side range checks.
//
// One warp owns one output row. A group sum starts from zero (or from out's value
// when accumulating) and adds the group's rows in CSR order, one column per lane,
// exactly the cpu's order (a long group in the fixed sub-ranges of
// kernels/group_split.h, spread over a block): the sums are bitwise the cpu's,
// and repeatable. Lanes
// hold kColumnsPerLane (16) accumulators so one pass over a group's edges serves
// 512 columns, GraphCast's latent width: each edge row is read once, its loads all
// in flight together, two rows at a time.
//
// The range checks write a small verdict into the caller's scratch (scratch.h;
// integer atomics only: the smallest bad position wins, whatever the timing) and
// copy it back into a host variable, so an error names the same position and
// value as on the cpu.
#include "kernels/cuda/index.h"

#include <cstdint>
#include <initializer_list>

#include "kernels/cuda/common.h"
#include "kernels/cuda/lane_columns.h"
#include "kernels/cuda/scratch.h"
#include "kernels/group_split.h"

namespace gc::cuda {
namespace {

constexpr int kColumnsPerLane = 16;
constexpr unsigned long long kNoBadPosition = ~0ull;
// The longest index tensor check_index_values takes: a position must fit the top
// 32 bits of the verdict, and position 2^32 - 1 with value -1 would pack to
// kNoBadPosition itself (a bad index reported as none), so the last position is
// 2^32 - 2.
constexpr int64_t kMaxCheckedIndexCount = (int64_t(1) << 32) - 1;

struct IndexVerdict {
  // Smallest bad position: (position << 32) | value bits for index values,
  // the position alone for offsets; kNoBadPosition when none.
  unsigned long long first_bad;
  int32_t first_value;  // offsets[0]
  int32_t last_value;   // offsets[N]
};
static_assert(sizeof(IndexVerdict) == index_check_scratch_bytes(), "scratch.h sizes the verdict");

// The verdict in the caller's scratch tensor (a cuda tensor, checked by the caller).
IndexVerdict* verdict_in(const Tensor& scratch) { return static_cast<IndexVerdict*>(scratch.data()); }

__global__ void reset_verdict_kernel(IndexVerdict* verdict) {
  verdict->first_bad = kNoBadPosition;
  verdict->first_value = 0;
  verdict->last_value = 0;
}

__global__ void find_bad_index_kernel(const int32_t* values,  // [count]
                                      int64_t count, int64_t limit, IndexVerdict* verdict) {
  for (int64_t i = global_thread(); i < count; i += total_threads()) {
    const int32_t v = values[i];
    if (v < 0 || v >= limit)
      atomicMin(&verdict->first_bad, static_cast<unsigned long long>(i) << 32 | static_cast<uint32_t>(v));
  }
}

__global__ void find_offsets_decrease_kernel(const int32_t* offsets,  // [count]
                                             int64_t count, IndexVerdict* verdict) {
  if (global_thread() == 0) {
    verdict->first_value = offsets[0];
    verdict->last_value = offsets[count - 1];
  }
  for (int64_t i = global_thread() + 1; i < count; i += total_threads())
    if (offsets[i] < offsets[i - 1]) atomicMin(&verdict->first_bad, static_cast<unsigned long long>(i));
}

// Into a host variable (pageable): the copy waits for the check on the one stream.
IndexVerdict read_verdict(const IndexVerdict* device_verdict) {
  IndexVerdict verdict;
  GC_CUDA_CHECK(cudaMemcpy(&verdict, device_verdict, sizeof(verdict), cudaMemcpyDeviceToHost));
  return verdict;
}

int32_t read_element(const Tensor& t, int64_t i) {
  int32_t value = 0;
  GC_CUDA_CHECK(cudaMemcpy(&value, t.data_as<int32_t>() + i, sizeof(value), cudaMemcpyDeviceToHost));
  return value;
}

// A same-dtype row copy keeps the bits (NaN payloads included); otherwise one rounding.
template <class S, class D>
__device__ __forceinline__ D convert_element(S value) {
  if constexpr (std::is_same_v<S, D>)
    return value;
  else
    return to_storage<D>(load_value(value));
}

template <class S, class D>
__global__ void gather_rows_kernel(D* out,                // [E, C]
                                   const S* x,            // [N, C]
                                   const int32_t* index,  // [E]
                                   int64_t edges, int64_t cols) {
  for (int64_t e = global_warp(); e < edges; e += total_warps()) {
    const S* source = x + static_cast<int64_t>(index[e]) * cols;
    D* destination = out + e * cols;
    for (int64_t c = lane_id(); c < cols; c += 32) destination[c] = convert_element<S, D>(source[c]);
  }
}

// A same-dtype gather whose rows are whole 16-byte packs (cols * sizeof(T) a
// multiple of 16, both tensors 16-byte aligned): each lane copies packs, not
// elements. A copy keeps the bits, so it is the one-element kernel's result.
struct alignas(16) RowPack {
  uint32_t words[4];
};

__global__ void gather_row_packs_kernel(RowPack* out,          // [E, packs]
                                        const RowPack* x,      // [N, packs]
                                        const int32_t* index,  // [E]
                                        int64_t edges, int64_t packs) {
  for (int64_t e = global_warp(); e < edges; e += total_warps()) {
    const RowPack* source = x + static_cast<int64_t>(index[e]) * packs;
    RowPack* destination = out + e * packs;
    for (int64_t p = lane_id(); p < packs; p += 32) destination[p] = source[p];
  }
}

// The columns a lane holds in a group sum: packs of 16 bytes of the summed rows'
// dtype S (lane_columns.h), a pass of 512 columns.
template <class S>
using GroupColumns = LaneColumns<S, kColumnsPerLane>;

// acc[j] += rows first .. last - 1 of a group (in CSR order), at the lane's
// slot j of the pass starting at column c0. Two rows are loaded before either is
// added (the loads overlap); each column still adds its rows one at a time in
// order, so the sums are the same.
template <bool kPacked, class S, class Acc>
__device__ __forceinline__ void add_group_rows(Acc (&acc)[kColumnsPerLane], const S* in, const int32_t* order,
                                               int64_t first, int64_t last, int64_t cols, int64_t c0, int lane) {
  using Columns = GroupColumns<S>;
  int64_t i = first;
  for (; i + 1 < last; i += 2) {
    const S* row0 = in + (order ? static_cast<int64_t>(order[i]) : i) * cols;
    const S* row1 = in + (order ? static_cast<int64_t>(order[i + 1]) : i + 1) * cols;
    Acc v0[kColumnsPerLane], v1[kColumnsPerLane];
    Columns::template load<kPacked>(v0, row0, cols, c0, lane);
    Columns::template load<kPacked>(v1, row1, cols, c0, lane);
#pragma unroll
    for (int j = 0; j < kColumnsPerLane; ++j) {
      if (Columns::column(c0, lane, j) < cols) {
        acc[j] += v0[j];
        acc[j] += v1[j];
      }
    }
  }
  if (i < last) {
    const S* row = in + (order ? static_cast<int64_t>(order[i]) : i) * cols;
    Acc v[kColumnsPerLane];
    Columns::template load<kPacked>(v, row, cols, c0, lane);
#pragma unroll
    for (int j = 0; j < kColumnsPerLane; ++j)
      if (Columns::column(c0, lane, j) < cols) acc[j] += v[j];
  }
}

// out[n] (+)= sum of in rows order[i] (i when order is null) for i in group n.
// A block takes kWarpsPerBlock consecutive groups, one warp each; a group of
// more than kGroupSplit rows is then summed by the whole block, in sub-ranges
// of kGroupSplit rows (kernels/group_split.h): each warp sums a sub-range (the
// first from the starting value, the others from zero) into shared memory and
// warp 0 adds them to the first in order, kWarpsPerBlock at a time. The cpu sums
// the same sub-ranges in the same order: bitwise the cpu's, whatever the grid.
// kPacked (S == D, rows of whole 16-byte packs, both tensors aligned): the rows
// move as packs; the sums are the same either way.
template <bool kPacked, class S, class D>
__global__ void sum_groups_kernel(D* out,                  // [N, C]
                                  const S* in,             // [E, C]
                                  const int32_t* order,    // [E] or null for the identity
                                  const int32_t* offsets,  // [N + 1]
                                  int64_t nodes, int64_t cols, bool accumulate) {
  using Acc = compute_t<S>;
  using Columns = GroupColumns<S>;
  constexpr int64_t kPassColumns = Columns::kPassColumns;
  __shared__ Acc parts[kWarpsPerBlock][kPassColumns];
  const int lane = lane_id(), warp = static_cast<int>(threadIdx.x) / 32;
  auto start = [&](Acc (&acc)[kColumnsPerLane], const D* out_row, int64_t c0, bool from_out) {
    if (from_out) {
      Columns::template load<kPacked>(acc, out_row, cols, c0, lane);
    } else {
#pragma unroll
      for (int j = 0; j < kColumnsPerLane; ++j) acc[j] = Acc(0);
    }
  };
  auto store = [&](const Acc (&acc)[kColumnsPerLane], D* out_row, int64_t c0) {
    D rounded[kColumnsPerLane];
#pragma unroll
    for (int j = 0; j < kColumnsPerLane; ++j) rounded[j] = to_storage<D>(acc[j]);
    Columns::template store<kPacked>(out_row, rounded, cols, c0, lane);
  };
  // Every warp of a block runs the same batches (no early exit), so the block's barriers are uniform.
  for (int64_t first_group = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock; first_group < nodes;
       first_group += static_cast<int64_t>(gridDim.x) * kWarpsPerBlock) {
    const int64_t n = first_group + warp;
    if (n < nodes && offsets[n + 1] - offsets[n] <= kernels::kGroupSplit) {
      D* out_row = out + n * cols;
      for (int64_t c0 = 0; c0 < cols; c0 += kPassColumns) {
        Acc acc[kColumnsPerLane];
        start(acc, out_row, c0, accumulate);
        add_group_rows<kPacked>(acc, in, order, offsets[n], offsets[n + 1], cols, c0, lane);
        store(acc, out_row, c0);
      }
    }
    const int64_t last_group = first_group + kWarpsPerBlock < nodes ? first_group + kWarpsPerBlock : nodes;
    for (int64_t g = first_group; g < last_group; ++g) {
      const int64_t begin = offsets[g], end = offsets[g + 1];
      if (end - begin <= kernels::kGroupSplit) continue;
      const int64_t sub_ranges = (end - begin + kernels::kGroupSplit - 1) / kernels::kGroupSplit;
      D* out_row = out + g * cols;
      for (int64_t c0 = 0; c0 < cols; c0 += kPassColumns) {
        Acc total[kColumnsPerLane] = {};  // warp 0's
        for (int64_t round = 0; round < sub_ranges; round += kWarpsPerBlock) {
          const int64_t p = round + warp;
          if (p < sub_ranges) {
            Acc acc[kColumnsPerLane];
            start(acc, out_row, c0, accumulate && p == 0);
            const int64_t sub_begin = begin + p * kernels::kGroupSplit;
            const int64_t sub_end = sub_begin + kernels::kGroupSplit < end ? sub_begin + kernels::kGroupSplit : end;
            add_group_rows<kPacked>(acc, in, order, sub_begin, sub_end, cols, c0, lane);
#pragma unroll
            for (int j = 0; j < kColumnsPerLane; ++j) parts[warp][lane + 32 * j] = acc[j];
          }
          __syncthreads();
          if (warp == 0) {
            for (int64_t q = round; q < sub_ranges && q < round + kWarpsPerBlock; ++q) {
#pragma unroll
              for (int j = 0; j < kColumnsPerLane; ++j) {
                const Acc part = parts[q - round][lane + 32 * j];
                total[j] = q == 0 ? part : total[j] + part;
              }
            }
          }
          __syncthreads();
        }
        if (warp == 0) store(total, out_row, c0);
      }
    }
  }
}

// An edge's element of the fused edge sum: base plus the sender row's element,
// rounded, plus the receiver row's, rounded (as two add kernels round). Both the
// one-element and the 16-byte kernels call it, so their bits cannot differ.
template <class T>
__device__ __forceinline__ T edge_sum_element(T base, T sender, T receiver) {
  const T first = to_storage<T>(load_value(base) + load_value(sender));
  return to_storage<T>(load_value(first) + load_value(receiver));
}

// acc + x, rounded once (accumulate's sum), for both row-add kernels.
template <class T>
__device__ __forceinline__ T row_add_element(T acc, T x) {
  return to_storage<T>(load_value(acc) + load_value(x));
}

// One warp per edge, one element per lane at a time.
template <class T>
__global__ void add_gathered_rows_kernel(T* out,                  // [E, C]
                                         const T* base,           // [E, C]
                                         const T* s,              // [Ns, C]
                                         const int32_t* s_index,  // [E]
                                         const T* r,              // [Nr, C]
                                         const int32_t* r_index,  // [E]
                                         int64_t edges, int64_t cols) {
  for (int64_t e = global_warp(); e < edges; e += total_warps()) {
    const T* s_row = s + static_cast<int64_t>(s_index[e]) * cols;
    const T* r_row = r + static_cast<int64_t>(r_index[e]) * cols;
    const T* base_row = base + e * cols;
    T* out_row = out + e * cols;
    for (int64_t c = lane_id(); c < cols; c += 32) out_row[c] = edge_sum_element(base_row[c], s_row[c], r_row[c]);
  }
}

// The same with 16-byte packs (rows of whole packs, every tensor 16-byte aligned):
// each lane takes packs of the row; every element's arithmetic is as above.
template <class T>
struct alignas(16) ElementPack {
  T v[16 / sizeof(T)];
};

template <class T>
__global__ void add_gathered_row_packs_kernel(T* out,                  // [E, C]
                                              const T* base,           // [E, C]
                                              const T* s,              // [Ns, C]
                                              const int32_t* s_index,  // [E]
                                              const T* r,              // [Nr, C]
                                              const int32_t* r_index,  // [E]
                                              int64_t edges, int64_t cols) {
  using Pack = ElementPack<T>;
  constexpr int kPack = 16 / sizeof(T);
  const int64_t packs = cols / kPack;
  for (int64_t e = global_warp(); e < edges; e += total_warps()) {
    const Pack* s_row = reinterpret_cast<const Pack*>(s + static_cast<int64_t>(s_index[e]) * cols);
    const Pack* r_row = reinterpret_cast<const Pack*>(r + static_cast<int64_t>(r_index[e]) * cols);
    const Pack* base_row = reinterpret_cast<const Pack*>(base + e * cols);
    Pack* out_row = reinterpret_cast<Pack*>(out + e * cols);
    for (int64_t p = lane_id(); p < packs; p += 32) {
      const Pack b = base_row[p], sv = s_row[p], rv = r_row[p];
      Pack o;
#pragma unroll
      for (int j = 0; j < kPack; ++j) o.v[j] = edge_sum_element(b.v[j], sv.v[j], rv.v[j]);
      out_row[p] = o;
    }
  }
}

template <class T>
__global__ void index_add_row_packs_kernel(T* acc,               // [N, C]
                                           const T* x,           // [U, C]
                                           const int32_t* rows,  // [U]
                                           int64_t count, int64_t cols) {
  using Pack = ElementPack<T>;
  constexpr int kPack = 16 / sizeof(T);
  const int64_t packs = cols / kPack;
  for (int64_t u = global_warp(); u < count; u += total_warps()) {
    Pack* destination = reinterpret_cast<Pack*>(acc + static_cast<int64_t>(rows[u]) * cols);
    const Pack* source = reinterpret_cast<const Pack*>(x + u * cols);
    for (int64_t p = lane_id(); p < packs; p += 32) {
      const Pack a = destination[p], v = source[p];
      Pack o;
#pragma unroll
      for (int j = 0; j < kPack; ++j) o.v[j] = row_add_element(a.v[j], v.v[j]);
      destination[p] = o;
    }
  }
}

// acc row rows[u] += x row u: one warp per listed row (rows are distinct, so no
// two warps write one row), the sum rounded once as accumulate rounds it.
template <class T>
__global__ void index_add_rows_kernel(T* acc,               // [N, C]
                                      const T* x,           // [U, C]
                                      const int32_t* rows,  // [U]
                                      int64_t count, int64_t cols) {
  for (int64_t u = global_warp(); u < count; u += total_warps()) {
    T* destination = acc + static_cast<int64_t>(rows[u]) * cols;
    const T* source = x + u * cols;
    for (int64_t c = lane_id(); c < cols; c += 32)
      destination[c] = row_add_element(destination[c], source[c]);
  }
}

// grad_x rows of group n = grad_out row n (converted to D); with an addend, the
// addend's row plus that, rounded again (as accumulate after the broadcast).
// Rows of at most one pass (512 columns): the node's row is read once into
// registers at the lane's slots (lane_columns.h, packs of D), then each edge's
// row is written from them (kPacked: S == D, rows of whole 16-byte packs, every
// tensor aligned: as packs). Wider rows: one element per lane at a time.
template <bool kPacked, class S, class D>
__global__ void broadcast_groups_kernel(D* grad_x,               // [E, C]
                                        const S* grad_out,       // [N, C]
                                        const int32_t* offsets,  // [N + 1]
                                        const D* addend,         // [E, C] or null
                                        int64_t nodes, int64_t cols) {
  using Columns = LaneColumns<D, kColumnsPerLane>;
  for (int64_t n = global_warp(); n < nodes; n += total_warps()) {
    const S* source = grad_out + n * cols;
    if (cols <= Columns::kPassColumns) {
      const int lane = lane_id();
      D row[kColumnsPerLane];
      if constexpr (kPacked) {
        Columns::template load_raw<true>(row, source, cols, 0, lane);
      } else {
#pragma unroll
        for (int j = 0; j < kColumnsPerLane; ++j) {
          const int64_t c = Columns::column(0, lane, j);
          row[j] = c < cols ? convert_element<S, D>(source[c]) : D{};
        }
      }
      for (int64_t e = offsets[n]; e < offsets[n + 1]; ++e) {
        D* destination = grad_x + e * cols;
        if (addend) {
          D b[kColumnsPerLane];
          Columns::template load_raw<kPacked>(b, addend + e * cols, cols, 0, lane);
#pragma unroll
          for (int j = 0; j < kColumnsPerLane; ++j) b[j] = to_storage<D>(load_value(b[j]) + load_value(row[j]));
          Columns::template store<kPacked>(destination, b, cols, 0, lane);
        } else {
          Columns::template store<kPacked>(destination, row, cols, 0, lane);
        }
      }
      continue;
    }
    for (int64_t e = offsets[n]; e < offsets[n + 1]; ++e) {
      D* destination = grad_x + e * cols;
      if (addend) {
        const D* base = addend + e * cols;
        for (int64_t c = lane_id(); c < cols; c += 32)
          destination[c] = to_storage<D>(load_value(base[c]) + load_value(convert_element<S, D>(source[c])));
      } else {
        for (int64_t c = lane_id(); c < cols; c += 32) destination[c] = convert_element<S, D>(source[c]);
      }
    }
  }
}

// Calls visit(S{}, D{}) for a (source, destination) pair: equal float dtypes, or
// f32 with a 16-bit float either way round (validated by kernels/index.cpp).
template <class Visit>
void visit_float_pair(const char* op, DType source, DType destination, Visit&& visit) {
  auto is_half = [](DType d) { return d == DType::bf16 || d == DType::f16; };
  const bool allowed = source == destination || (source == DType::f32 && is_half(destination)) ||
                       (destination == DType::f32 && is_half(source));
  if (!allowed)
    throw std::invalid_argument(std::string(op) + ": unsupported dtype pair " + dtype_name(source) + " -> " +
                                dtype_name(destination));
  visit_float_dtypes(op, source, destination, [&](auto s, auto d) {
    using S = decltype(s);
    using D = decltype(d);
    // Only the allowed pairs are instantiated: f64 never pairs with another dtype,
    // two different 16-bit floats never pair.
    constexpr bool same = std::is_same_v<S, D>;
    constexpr bool with_f32 = std::is_same_v<S, float> || std::is_same_v<D, float>;
    constexpr bool with_f64 = std::is_same_v<S, double> || std::is_same_v<D, double>;
    if constexpr (same || (with_f32 && !with_f64)) visit(s, d);
  });
}

void launch_sum_groups(const char* op, Tensor& out, const Tensor& in, const int32_t* order, const Tensor& offsets,
                       bool accumulate) {
  const int64_t nodes = out.rows(), cols = out.cols();
  if (out.numel() == 0) return;
  visit_float_pair(op, in.dtype(), out.dtype(), [&](auto s, auto d) {
    using S = decltype(s);
    using D = decltype(d);
    const S* rows = in.numel() ? in.data_as<S>() : nullptr;  // E may be 0
    bool packed = false;
    if constexpr (std::is_same_v<S, D>) packed = row_packs_fit<S>(cols, {out.data(), rows});
    constexpr bool kSame = std::is_same_v<S, D>;  // the packed kernel exists for one dtype only
    if (packed)
      sum_groups_kernel<kSame, S, D><<<row_blocks(nodes), kThreadsPerBlock>>>(
          out.data_as<D>(), rows, order, offsets.data_as<int32_t>(), nodes, cols, accumulate);
    else
      sum_groups_kernel<false, S, D><<<row_blocks(nodes), kThreadsPerBlock>>>(
          out.data_as<D>(), rows, order, offsets.data_as<int32_t>(), nodes, cols, accumulate);
  });
  GC_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void check_index_values(const Tensor& index, int64_t limit, const char* op, const char* name, const Tensor& scratch) {
  require_on_cuda(op, {&index});
  const int64_t count = index.numel();
  if (count == 0) return;
  if (count > kMaxCheckedIndexCount)
    throw std::invalid_argument(std::string(op) + ": " + name + " " + index.describe() +
                                " is too long to check (at most " + std::to_string(kMaxCheckedIndexCount) + " values)");
  require_scratch(op, scratch, index_check_scratch_bytes());
  IndexVerdict* device_verdict = verdict_in(scratch);
  reset_verdict_kernel<<<1, 1>>>(device_verdict);
  GC_CUDA_CHECK(cudaGetLastError());
  find_bad_index_kernel<<<element_blocks(count), kThreadsPerBlock>>>(index.data_as<int32_t>(), count, limit,
                                                                     device_verdict);
  GC_CUDA_CHECK(cudaGetLastError());
  const IndexVerdict verdict = read_verdict(device_verdict);
  if (verdict.first_bad == kNoBadPosition) return;
  const int64_t position = static_cast<int64_t>(verdict.first_bad >> 32);
  const int32_t value = static_cast<int32_t>(static_cast<uint32_t>(verdict.first_bad & 0xffffffffu));
  throw std::invalid_argument(std::string(op) + ": " + name + " value " + std::to_string(value) + " at " +
                              std::to_string(position) + " outside [0, " + std::to_string(limit) + ") in " +
                              index.describe());
}

void check_offsets(const Tensor& offsets, int64_t total, const char* op, const Tensor& scratch) {
  require_on_cuda(op, {&offsets});
  const int64_t count = offsets.numel();  // N + 1 >= 1, validated by the caller
  auto fail = [&](const std::string& why) {
    throw std::invalid_argument(std::string(op) + ": offsets " + offsets.describe() + " " + why);
  };
  if (count == 0) fail("must hold at least one value");
  require_scratch(op, scratch, index_check_scratch_bytes());
  IndexVerdict* device_verdict = verdict_in(scratch);
  reset_verdict_kernel<<<1, 1>>>(device_verdict);
  GC_CUDA_CHECK(cudaGetLastError());
  find_offsets_decrease_kernel<<<element_blocks(count), kThreadsPerBlock>>>(offsets.data_as<int32_t>(), count,
                                                                            device_verdict);
  GC_CUDA_CHECK(cudaGetLastError());
  const IndexVerdict verdict = read_verdict(device_verdict);
  if (verdict.first_value != 0) fail("must start at 0; starts at " + std::to_string(verdict.first_value));
  if (verdict.first_bad != kNoBadPosition) {
    const int64_t i = static_cast<int64_t>(verdict.first_bad);
    fail("decrease at " + std::to_string(i) + " (" + std::to_string(read_element(offsets, i - 1)) + " then " +
         std::to_string(read_element(offsets, i)) + ")");
  }
  if (verdict.last_value != total)
    fail("must end at the edge count " + std::to_string(total) + "; ends at " + std::to_string(verdict.last_value));
}

void gather_rows_forward(Tensor& out, const Tensor& x, const Tensor& index) {
  const char* op = "gather_rows_forward";
  require_on_cuda(op, {&out, &x, &index});
  if (out.numel() == 0) return;
  const int64_t edges = out.rows(), cols = out.cols();
  const int64_t row_bytes = cols * static_cast<int64_t>(dtype_size(x.dtype()));
  const auto aligned16 = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
  if (x.dtype() == out.dtype() && row_bytes % 16 == 0 && aligned16(x.data()) && aligned16(out.data())) {
    gather_row_packs_kernel<<<row_blocks(edges), kThreadsPerBlock>>>(
        static_cast<RowPack*>(out.data()), static_cast<const RowPack*>(x.data()), index.data_as<int32_t>(), edges,
        row_bytes / 16);
    GC_CUDA_CHECK(cudaGetLastError());
    return;
  }
  visit_float_pair(op, x.dtype(), out.dtype(), [&](auto s, auto d) {
    using S = decltype(s);
    using D = decltype(d);
    gather_rows_kernel<S, D><<<row_blocks(edges), kThreadsPerBlock>>>(out.data_as<D>(), x.data_as<S>(),
                                                                      index.data_as<int32_t>(), edges, cols);
  });
  GC_CUDA_CHECK(cudaGetLastError());
}

void gather_rows_backward(Tensor& grad_x, const Tensor& grad_out, const Tensor& order, const Tensor& offsets) {
  const char* op = "gather_rows_backward";
  require_on_cuda(op, {&grad_x, &grad_out, &order, &offsets});
  const int32_t* order_ids = order.numel() ? order.data_as<int32_t>() : nullptr;
  // A null order means the identity; with E = 0 no group has an edge, so it is never read.
  launch_sum_groups(op, grad_x, grad_out, order_ids, offsets, false);
}

void add_gathered_rows(Tensor& out, const Tensor& base, const Tensor& s, const Tensor& s_index, const Tensor& r,
                       const Tensor& r_index) {
  const char* op = "add_gathered_rows";
  require_on_cuda(op, {&out, &base, &s, &s_index, &r, &r_index});
  if (out.numel() == 0) return;
  const int64_t edges = out.rows(), cols = out.cols();
  visit_float_dtype(op, out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if (row_packs_fit<T>(cols, {out.data(), base.data(), s.data(), r.data()})) {
      add_gathered_row_packs_kernel<T><<<row_blocks(edges), kThreadsPerBlock>>>(
          out.data_as<T>(), base.data_as<T>(), s.data_as<T>(), s_index.data_as<int32_t>(), r.data_as<T>(),
          r_index.data_as<int32_t>(), edges, cols);
      return;
    }
    add_gathered_rows_kernel<T><<<row_blocks(edges), kThreadsPerBlock>>>(
        out.data_as<T>(), base.data_as<T>(), s.data_as<T>(), s_index.data_as<int32_t>(), r.data_as<T>(),
        r_index.data_as<int32_t>(), edges, cols);
  });
  GC_CUDA_CHECK(cudaGetLastError());
}

void index_add_rows(Tensor& acc, const Tensor& x, const Tensor& rows) {
  const char* op = "index_add_rows";
  require_on_cuda(op, {&acc, &x, &rows});
  if (x.numel() == 0) return;
  const int64_t count = x.rows(), cols = x.cols();
  visit_float_dtype(op, x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if (row_packs_fit<T>(cols, {acc.data(), x.data()})) {
      index_add_row_packs_kernel<T><<<row_blocks(count), kThreadsPerBlock>>>(acc.data_as<T>(), x.data_as<T>(),
                                                                             rows.data_as<int32_t>(), count, cols);
      return;
    }
    index_add_rows_kernel<T><<<row_blocks(count), kThreadsPerBlock>>>(acc.data_as<T>(), x.data_as<T>(),
                                                                      rows.data_as<int32_t>(), count, cols);
  });
  GC_CUDA_CHECK(cudaGetLastError());
}

void segment_sum_forward(Tensor& out, const Tensor& x, const Tensor& offsets, bool accumulate) {
  const char* op = "segment_sum_forward";
  require_on_cuda(op, {&out, &x, &offsets});
  launch_sum_groups(op, out, x, nullptr, offsets, accumulate);
}

void segment_sum_backward(Tensor& grad_x, const Tensor& grad_out, const Tensor& offsets, const Tensor& addend) {
  const char* op = "segment_sum_backward";
  require_on_cuda(op, {&grad_x, &grad_out, &offsets});
  if (addend.defined()) require_on_cuda(op, {&addend});
  if (grad_x.numel() == 0) return;
  const int64_t nodes = grad_out.rows(), cols = grad_x.cols();
  visit_float_pair(op, grad_out.dtype(), grad_x.dtype(), [&](auto s, auto d) {
    using S = decltype(s);
    using D = decltype(d);
    const D* addend_rows = addend.defined() ? addend.data_as<D>() : nullptr;
    bool packed = false;
    if constexpr (std::is_same_v<S, D>)
      packed = row_packs_fit<D>(cols, {grad_x.data(), grad_out.data(), addend_rows ? addend_rows : grad_x.data()});
    constexpr bool kSame = std::is_same_v<S, D>;
    if (packed)
      broadcast_groups_kernel<kSame, S, D><<<row_blocks(nodes), kThreadsPerBlock>>>(
          grad_x.data_as<D>(), grad_out.data_as<S>(), offsets.data_as<int32_t>(), addend_rows, nodes, cols);
    else
      broadcast_groups_kernel<false, S, D><<<row_blocks(nodes), kThreadsPerBlock>>>(
          grad_x.data_as<D>(), grad_out.data_as<S>(), offsets.data_as<int32_t>(), addend_rows, nodes, cols);
  });
  GC_CUDA_CHECK(cudaGetLastError());
}

}  // namespace gc::cuda
