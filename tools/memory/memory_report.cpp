// memory_report.cpp: formatting of the memory table and OOM explanation.
#include "tools/memory/memory_report.h"

#include <cstdio>
#include <algorithm>
#include <map>
#include <sstream>

namespace gc {

namespace {
std::string pad(const std::string& s, size_t width) { return s.size() >= width ? s : s + std::string(width - s.size(), ' '); }
std::string lpad(const std::string& s, size_t width) { return s.size() >= width ? s : std::string(width - s.size(), ' ') + s; }
std::string percent(int64_t part, int64_t whole) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%5.1f%%", whole > 0 ? 100.0 * static_cast<double>(part) / static_cast<double>(whole) : 0.0);
  return buf;
}
}  // namespace

std::string module_of(const std::string& label) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= label.size()) {
    const size_t dot = label.find('.', start);
    parts.push_back(label.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  std::vector<std::string> kept;
  for (size_t i = 0; i < parts.size(); ++i) {
    if ((parts[i] == "rollout" || parts[i] == "edge_block" || parts[i] == "edge_chunk") && i + 1 < parts.size()) {
      ++i;  // and its number
      continue;
    }
    kept.push_back(parts[i]);
  }
  std::string key;
  for (size_t i = 0; i < kept.size() && i < 2; ++i) key += (i ? "." : "") + kept[i];
  return key.empty() ? std::string("(unlabelled)") : key;
}

std::vector<std::pair<std::string, int64_t>> bytes_by_module(const std::vector<LiveBlock>& by_label) {
  std::map<std::string, int64_t> sums;
  for (const LiveBlock& b : by_label) sums[module_of(b.label)] += b.bytes;
  std::vector<std::pair<std::string, int64_t>> out(sums.begin(), sums.end());
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  return out;
}

std::string memory_table(Device device, const AllocatorStats& s, const std::vector<LiveBlock>& largest,
                         const std::vector<LiveBlock>& by_label, int64_t outside_allocator) {
  std::ostringstream o;
  o << "memory on " << device_name(device) << ": peak allocated " << format_bytes(s.peak_allocated) << " ("
    << s.peak_allocated << " B), peak reserved " << format_bytes(s.peak_reserved) << " (" << s.peak_reserved
    << " B); at the peak, '" << (s.peak_label.empty() ? std::string("-") : s.peak_label) << "' was allocating\n";
  o << "  " << pad("category", 18) << lpad("at peak", 14) << lpad("share", 8) << lpad("own peak", 14) << "\n";
  for (int c = 0; c < kNumCategories; ++c) {
    // A single-process run never communicates: its table keeps the seven rows it always had.
    if (static_cast<Category>(c) == Category::communication && s.category_peak[static_cast<size_t>(c)] == 0) continue;
    o << "  " << pad(category_name(static_cast<Category>(c)), 18) << lpad(format_bytes(s.at_peak[static_cast<size_t>(c)]), 14)
      << lpad(percent(s.at_peak[static_cast<size_t>(c)], s.peak_allocated), 8)
      << lpad(format_bytes(s.category_peak[static_cast<size_t>(c)]), 14) << "\n";
  }
  o << "  " << pad("cached at end", 18) << lpad(format_bytes(s.reserved - s.allocated), 14) << "   (reserved - allocated)\n";
  if (outside_allocator >= 0)
    o << "  " << pad("not gc's", 18) << lpad(format_bytes(outside_allocator), 14)
      << "   (GPU bytes in use minus reserved at the end: CUDA context, cuBLAS, other processes)\n";
  const int64_t params = s.at_peak[static_cast<size_t>(Category::parameter)];
  const int64_t acts = s.at_peak[static_cast<size_t>(Category::activation)];
  char ratio[64];
  std::snprintf(ratio, sizeof ratio, "%.1fx", params > 0 ? static_cast<double>(acts) / static_cast<double>(params) : 0.0);
  o << "  parameters " << format_bytes(params) << " vs activations " << format_bytes(acts) << " at the peak (" << ratio
    << " the parameters)\n";
  if (!by_label.empty()) {
    o << "  bytes at the peak by module:\n";
    const auto modules = bytes_by_module(by_label);
    for (size_t i = 0; i < modules.size() && i < 12; ++i)
      o << "    " << lpad(format_bytes(modules[i].second), 11) << "  " << lpad(percent(modules[i].second, s.peak_allocated), 6)
        << "  " << modules[i].first << "\n";
    if (modules.size() > 12) o << "    (" << modules.size() - 12 << " more modules)\n";
  }
  if (!largest.empty()) {
    o << "  largest live tensors at the peak:\n";
    for (const LiveBlock& b : largest)
      o << "    " << lpad(format_bytes(b.bytes), 11) << "  " << pad(category_name(b.category), 16) << pad(b.shape, 26)
        << b.label << "\n";
  }
  return o.str();
}

std::string oom_explanation(const OutOfMemory& oom, int64_t smallest_passing_limit) {
  const OutOfMemory::Report& r = oom.report();
  std::ostringstream o;
  o << "out of memory on " << device_name(r.device) << "\n";
  o << "  while allocating " << format_bytes(r.requested_bytes) << " for '" << (r.label.empty() ? "(unlabelled)" : r.label)
    << "' (" << category_name(r.category) << "), which needed a new segment of " << format_bytes(r.segment_bytes) << "\n";
  o << "  limit " << (r.limit > 0 ? format_bytes(r.limit) : std::string("(the device's own memory)")) << ", reserved "
    << format_bytes(r.reserved) << ", allocated " << format_bytes(r.allocated) << "\n";
  o << "  live bytes by category:\n";
  for (int c = 0; c < kNumCategories; ++c)
    if (r.category_allocated[static_cast<size_t>(c)] > 0)
      o << "    " << pad(category_name(static_cast<Category>(c)), 18) << format_bytes(r.category_allocated[static_cast<size_t>(c)])
        << "\n";
  if (smallest_passing_limit > 0)
    o << "  the smallest --mem-limit this configuration runs in (from a dry run): " << format_bytes(smallest_passing_limit)
      << " (" << smallest_passing_limit << " B)\n";
  o << "  remedies: --precision bf16, --remat all or --remat auto --mem-budget SIZE, --edge-chunks N, a smaller --batch "
       "with --accum\n";
  return o.str();
}

}  // namespace gc
