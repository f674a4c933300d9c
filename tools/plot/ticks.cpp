// ticks.cpp: numbers on axes: nice tick values, tick labels, short number
// and byte formats, value ranges, and the ticks of a logarithmic axis.
//
// Tick values are computed as k * step from integer k (never by accumulating
// step), with a slack of 1e-9 (of a step, or relative on a log axis) wherever a
// comparison decides which ticks fall inside a range, so that 0.1 + 0.2 style
// rounding never adds or drops a tick. Labels carry just the decimals the step needs.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>

#include "tools/plot/axes.h"
#include "tools/plot/plot.h"

namespace gc::plot {

// ---- numbers and ticks --------------------------------------------------------
namespace {

// 1, 2, 5 or 10 times a power of ten, the nearest such to x (x > 0).
double nice_number(double x) {
  const double power = std::pow(10.0, std::floor(std::log10(x)));
  const double fraction = x / power;
  const double nice = fraction < 1.5 ? 1 : fraction < 3 ? 2 : fraction < 7 ? 5 : 10;
  return nice * power;
}

std::string trim_zeros(std::string s) {
  if (s.find('.') == std::string::npos) return s;
  while (!s.empty() && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

// "1.50e+06" -> "1.5e6", "2e-05" -> "2e-5".
std::string tidy_exponent(std::string s) {
  const size_t e = s.find('e');
  if (e == std::string::npos) return s;
  std::string mantissa = trim_zeros(s.substr(0, e));
  const char sign = s[e + 1];
  std::string digits = s.substr(e + 2);
  while (digits.size() > 1 && digits[0] == '0') digits.erase(0, 1);
  return mantissa + "e" + (sign == '-' ? "-" : "") + digits;
}

std::string printf_string(const char* format, int precision, double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, format, precision, value);
  return buffer;
}

}  // namespace

std::vector<double> nice_ticks(double lo, double hi, int target_count) {
  if (!std::isfinite(lo) || !std::isfinite(hi) || lo > hi) {
    throw std::invalid_argument("nice_ticks: need finite lo <= hi, got [" + format_number(lo) +
                                ", " + format_number(hi) + "]");
  }
  target_count = std::clamp(target_count, 2, 50);
  if (lo == hi) {
    const double half_width = lo == 0 ? 1 : std::abs(lo) * 0.1;
    lo -= half_width;
    hi += half_width;
  }
  const double span = hi - lo;
  if (!std::isfinite(span)) throw std::invalid_argument("nice_ticks: range too large");
  const double step = nice_number(span / (target_count - 1));
  // The tolerance keeps 0.30000000000000004 / 0.1 from adding a tick below.
  const double first = std::floor(lo / step + 1e-9), last = std::ceil(hi / step - 1e-9);
  std::vector<double> ticks;
  for (double k = first; k <= last + 0.5; k += 1) {
    const double value = k * step;
    ticks.push_back(std::abs(value) < step * 1e-9 ? 0.0 : value);
  }
  return ticks;
}

std::string format_tick(double value, double step) {
  if (!std::isfinite(value)) return std::isnan(value) ? "nan" : (value > 0 ? "inf" : "-inf");
  step = std::abs(step);
  if (step == 0 || !std::isfinite(step)) return format_number(value);
  if (std::abs(value) < step * 1e-9) return "0";
  if (std::max(std::abs(value), step) >= 1e6 || step < 1e-4) {
    const int digits = std::clamp(
        static_cast<int>(std::floor(std::log10(std::abs(value))) - std::floor(std::log10(step) + 1e-9)),
        0, 15);
    return tidy_exponent(printf_string("%.*e", digits, value));
  }
  int decimals = 0;
  while (decimals < 10) {
    const double scaled = step * std::pow(10.0, decimals);
    if (std::abs(scaled - std::round(scaled)) < 1e-6 * scaled) break;
    ++decimals;
  }
  return printf_string("%.*f", decimals, value);
}

std::string format_number(double value) {
  if (!std::isfinite(value)) return std::isnan(value) ? "nan" : (value > 0 ? "inf" : "-inf");
  if (value == 0) return "0";  // also turns -0 into "0"
  return tidy_exponent(printf_string("%.*g", 3, value));
}

std::string format_bytes_short(double bytes) {
  if (!std::isfinite(bytes)) return format_number(bytes) + " B";
  static const char* const kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  const std::string sign = bytes < 0 ? "-" : "";
  double value = std::abs(bytes);
  int unit = 0;
  while (unit < 5 && value >= 1024) {
    value /= 1024;
    ++unit;
  }
  if (unit == 0) return sign + printf_string("%.*f", 0, value) + " B";
  // Up to 3 significant digits; 1023.7 KiB rounds to 1024 KiB, so step up once more.
  int decimals = value < 10 ? 2 : value < 100 ? 1 : 0;
  if (unit < 5 && std::round(value) >= 1024) {
    value /= 1024;
    ++unit;
    decimals = 2;
  }
  return sign + trim_zeros(printf_string("%.*f", decimals, value)) + " " + kUnits[unit];
}

ValueRange finite_range(const float* values, size_t count) {
  if (values == nullptr && count > 0) throw std::invalid_argument("finite_range: null values");
  bool any = false;
  ValueRange range;
  for (size_t i = 0; i < count; ++i) {
    const double v = values[i];
    if (!std::isfinite(v)) continue;
    if (!any || v < range.min) range.min = v;
    if (!any || v > range.max) range.max = v;
    any = true;
  }
  return any ? range : ValueRange{0, 1};
}

ValueRange symmetric_range(const float* values, size_t count) {
  if (values == nullptr && count > 0) throw std::invalid_argument("symmetric_range: null values");
  double largest = 0;
  for (size_t i = 0; i < count; ++i) {
    if (std::isfinite(values[i])) largest = std::max(largest, std::abs(static_cast<double>(values[i])));
  }
  if (largest == 0) largest = 1;
  return ValueRange{-largest, largest};
}

// ---- logarithmic axis -------------------------------------------------------------
namespace detail {

LogAxis log_axis(double data_min, double data_max) {
  auto decade = [](double v) { return std::floor(std::log10(v) + 1e-9); };
  auto snap_down = [&](double v) {
    const double p = std::pow(10.0, decade(v)), m = v / p * (1 + 1e-9);
    return (m >= 5 ? 5 : m >= 2 ? 2 : 1) * p;
  };
  auto snap_up = [&](double v) {
    const double p = std::pow(10.0, decade(v)), m = v / p * (1 - 1e-9);
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
  };
  LogAxis axis{snap_down(data_min), snap_up(data_max), {}, {}};
  if (axis.hi <= axis.lo) axis.hi = snap_up(axis.lo * 1.5);
  const int e_lo = static_cast<int>(decade(axis.lo)), e_hi = static_cast<int>(std::ceil(std::log10(axis.hi) - 1e-9));
  const int span = e_hi - e_lo;
  const int decade_step = std::max(1, (span + 7) / 8);
  auto inside = [&](double v) { return v >= axis.lo * (1 - 1e-9) && v <= axis.hi * (1 + 1e-9); };
  int decades_inside = 0;
  for (int e = e_lo; e <= e_hi; ++e) decades_inside += inside(std::pow(10.0, e)) ? 1 : 0;
  // Fewer than 3 labelled decades cannot be read: label the 2s and 5s too.
  const bool label_2_and_5 = decades_inside < 3;
  for (int e = e_lo; e <= e_hi; ++e) {
    const double p = std::pow(10.0, e);
    for (int m = 1; m <= 9; ++m) {
      const double v = m * p;
      if (!inside(v)) continue;
      const bool major = (m == 1 && (e - e_lo) % decade_step == 0) || (label_2_and_5 && (m == 2 || m == 5));
      if (major) axis.major.push_back(v);
      else if (span <= 6) axis.minor.push_back(v);
    }
  }
  return axis;
}

std::string log_tick_label(double v) {
  const int e = static_cast<int>(std::floor(std::log10(v) + 1e-9));
  if (e >= -3 && e <= 4) return format_tick(v, std::pow(10.0, e));
  return tidy_exponent(printf_string("%.*e", 0, v));
}

}  // namespace detail
}  // namespace gc::plot
