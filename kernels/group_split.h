// kernels/group_split.h: how a long CSR group is summed, on every device.
//
// A group sum (segment_sum_forward, gather_rows_backward) adds a group's rows in
// CSR order. A group of more than kGroupSplit rows (a grid2mesh receiver at 0.25
// deg has up to 3,753 senders, a mesh2grid sender 6,159 edges) is summed in fixed
// sub-ranges of kGroupSplit rows: the first from the starting value (zero, or
// the output when accumulating), each later one from zero, then the sub-range
// sums are added to the first in order. A GPU then spreads a long group over a
// block's warps instead of leaving it to one warp (the long tail of a launch);
// the cpu sums the same sub-ranges in the same order, so the results stay bitwise
// equal between devices and independent of threads and launch shapes. Groups of
// kGroupSplit rows or fewer are summed straight through, as before.
#pragma once

#include <cstdint>

namespace gc::kernels {

constexpr int64_t kGroupSplit = 512;

}  // namespace gc::kernels
