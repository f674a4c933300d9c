// json.cpp: the JSON value, its writer and a strict recursive-descent parser.
//
// Numbers go through std::to_chars / std::from_chars, which ignore the C locale,
// so a program that calls setlocale() still writes "0.5" and not "0,5".
// Recursion depth is bounded (kMaxDepth) so that hostile input such as a
// corrupted checkpoint header of 10^8 '[' throws instead of overflowing the stack.
#include "tools/io/json.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <unordered_set>

namespace gc::json {

namespace {

constexpr int kMaxDepth = 512;

// Length of the well-formed UTF-8 sequence at p (1..4), or 0 when the bytes are
// not one (overlong forms, encoded surrogates and code points above U+10FFFF
// are rejected, as RFC 3629 requires).
size_t utf8_sequence_length(const unsigned char* p, size_t remaining) {
  const unsigned char lead = p[0];
  if (lead < 0x80) return 1;
  size_t length = 0;
  unsigned char second_min = 0x80, second_max = 0xbf;
  if (lead >= 0xc2 && lead <= 0xdf) {
    length = 2;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    length = 3;
    if (lead == 0xe0) second_min = 0xa0;
    if (lead == 0xed) second_max = 0x9f;
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    length = 4;
    if (lead == 0xf0) second_min = 0x90;
    if (lead == 0xf4) second_max = 0x8f;
  } else {
    return 0;
  }
  if (remaining < length) return 0;
  if (p[1] < second_min || p[1] > second_max) return 0;
  for (size_t i = 2; i < length; ++i)
    if (p[i] < 0x80 || p[i] > 0xbf) return 0;
  return length;
}

void append_utf8(std::string& out, uint32_t code_point) {
  if (code_point < 0x80) {
    out += static_cast<char>(code_point);
  } else if (code_point < 0x800) {
    out += static_cast<char>(0xc0 | (code_point >> 6));
    out += static_cast<char>(0x80 | (code_point & 0x3f));
  } else if (code_point < 0x10000) {
    out += static_cast<char>(0xe0 | (code_point >> 12));
    out += static_cast<char>(0x80 | ((code_point >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (code_point & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (code_point >> 18));
    out += static_cast<char>(0x80 | ((code_point >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((code_point >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (code_point & 0x3f));
  }
}

// Bytes that are not well-formed UTF-8 become U+FFFD: the output must stay valid
// JSON text whatever a caller put in a std::string.
void dump_string(std::string& out, const std::string& text) {
  static const char kHex[] = "0123456789abcdef";
  out += '"';
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  size_t i = 0;
  while (i < text.size()) {
    const unsigned char c = bytes[i];
    switch (c) {
      case '"': out += "\\\""; ++i; continue;
      case '\\': out += "\\\\"; ++i; continue;
      case '\b': out += "\\b"; ++i; continue;
      case '\f': out += "\\f"; ++i; continue;
      case '\n': out += "\\n"; ++i; continue;
      case '\r': out += "\\r"; ++i; continue;
      case '\t': out += "\\t"; ++i; continue;
      default: break;
    }
    if (c < 0x20) {
      out += "\\u00";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
      ++i;
      continue;
    }
    const size_t length = utf8_sequence_length(bytes + i, text.size() - i);
    if (length == 0) {
      out += "\\ufffd";
      ++i;
      continue;
    }
    out.append(text, i, length);
    i += length;
  }
  out += '"';
}

void dump_double(std::string& out, double value) {
  if (!std::isfinite(value)) {
    out += "null";
    return;
  }
  char buffer[64];
  // Without a format argument to_chars writes the shortest text that reads back
  // to the same double.
  const auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  const std::string text(buffer, result.ptr);
  out += text;
  if (text.find_first_of(".e") == std::string::npos) out += ".0";  // stays a double when parsed
}

void newline_and_indent(std::string& out, int indent, int depth) {
  out += '\n';
  out.append(static_cast<size_t>(indent) * static_cast<size_t>(depth), ' ');
}

std::string describe_byte(char c) {
  const auto byte = static_cast<unsigned char>(c);
  if (byte >= 0x20 && byte < 0x7f) return std::string("'") + c + "'";
  char buffer[8];
  std::snprintf(buffer, sizeof(buffer), "0x%02x", byte);
  return buffer;
}

class Parser {
 public:
  explicit Parser(const std::string& text) : text_(text) {}

  Value parse_document() {
    Value value = parse_value(0);
    skip_whitespace();
    if (pos_ != text_.size()) fail("trailing characters after the JSON value, starting with " + describe_byte(text_[pos_]));
    return value;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const { fail_at(pos_, what); }
  [[noreturn]] void fail_at(size_t offset, const std::string& what) const { throw ParseError(offset, what); }

  bool at_end() const { return pos_ >= text_.size(); }
  char peek() const { return text_[pos_]; }

  void skip_whitespace() {
    while (!at_end()) {
      const char c = peek();
      if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
      ++pos_;
    }
  }

  void expect(char c, const char* context) {
    if (at_end()) fail(std::string("unexpected end of input, expected '") + c + "' " + context);
    if (peek() != c) fail(std::string("expected '") + c + "' " + context + ", got " + describe_byte(peek()));
    ++pos_;
  }

  Value parse_value(int depth) {
    skip_whitespace();
    if (at_end()) fail("unexpected end of input, expected a value");
    const char c = peek();
    switch (c) {
      case '{': return parse_object(depth + 1);
      case '[': return parse_array(depth + 1);
      case '"': return Value(parse_string());
      case 't': parse_literal("true"); return Value(true);
      case 'f': parse_literal("false"); return Value(false);
      case 'n': parse_literal("null"); return Value();
      default:
        if (c == '-' || (c >= '0' && c <= '9')) return parse_number();
        fail("unexpected character " + describe_byte(c) + ", expected a value");
    }
  }

  void parse_literal(const char* literal) {
    const size_t length = std::strlen(literal);
    if (text_.compare(pos_, length, literal) != 0) fail(std::string("invalid literal, expected '") + literal + "'");
    pos_ += length;
  }

  Value parse_object(int depth) {
    if (depth > kMaxDepth) fail("nesting deeper than " + std::to_string(kMaxDepth) + " levels");
    ++pos_;  // '{'
    Value object = Value::object();
    std::unordered_set<std::string> seen_keys;
    skip_whitespace();
    if (!at_end() && peek() == '}') {
      ++pos_;
      return object;
    }
    while (true) {
      skip_whitespace();
      const size_t key_offset = pos_;
      if (at_end()) fail("unexpected end of input, expected a string key");
      if (peek() != '"') fail("expected a string key, got " + describe_byte(peek()));
      std::string key = parse_string();
      if (!seen_keys.insert(key).second) fail_at(key_offset, "duplicate key \"" + key + "\"");
      skip_whitespace();
      expect(':', "after an object key");
      Value member = parse_value(depth);
      object[key] = std::move(member);
      skip_whitespace();
      if (at_end()) fail("unexpected end of input, expected ',' or '}' in an object");
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() == '}') {
        ++pos_;
        return object;
      }
      fail("expected ',' or '}' in an object, got " + describe_byte(peek()));
    }
  }

  Value parse_array(int depth) {
    if (depth > kMaxDepth) fail("nesting deeper than " + std::to_string(kMaxDepth) + " levels");
    ++pos_;  // '['
    Value array = Value::array();
    skip_whitespace();
    if (!at_end() && peek() == ']') {
      ++pos_;
      return array;
    }
    while (true) {
      array.push_back(parse_value(depth));
      skip_whitespace();
      if (at_end()) fail("unexpected end of input, expected ',' or ']' in an array");
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() == ']') {
        ++pos_;
        return array;
      }
      fail("expected ',' or ']' in an array, got " + describe_byte(peek()));
    }
  }

  uint32_t parse_hex4() {
    if (text_.size() - pos_ < 4) fail("unexpected end of input in a \\u escape");
    uint32_t value = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = text_[pos_];
      uint32_t digit;
      if (c >= '0' && c <= '9') digit = static_cast<uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f') digit = static_cast<uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') digit = static_cast<uint32_t>(c - 'A' + 10);
      else fail("invalid hex digit " + describe_byte(c) + " in a \\u escape");
      value = value * 16 + digit;
      ++pos_;
    }
    return value;
  }

  std::string parse_string() {
    const size_t start = pos_;
    ++pos_;  // opening quote
    std::string out;
    while (true) {
      if (at_end()) fail_at(start, "unterminated string");
      const auto c = static_cast<unsigned char>(peek());
      if (c == '"') {
        ++pos_;
        return out;
      }
      if (c < 0x20) fail("unescaped control character " + describe_byte(static_cast<char>(c)) + " in a string");
      if (c == '\\') {
        parse_escape(out);
        continue;
      }
      const size_t length =
          utf8_sequence_length(reinterpret_cast<const unsigned char*>(text_.data()) + pos_, text_.size() - pos_);
      if (length == 0) fail("invalid UTF-8 byte " + describe_byte(static_cast<char>(c)) + " in a string");
      out.append(text_, pos_, length);
      pos_ += length;
    }
  }

  void parse_escape(std::string& out) {
    const size_t escape_offset = pos_;
    ++pos_;  // backslash
    if (at_end()) fail("unexpected end of input in an escape");
    const char c = peek();
    ++pos_;
    switch (c) {
      case '"': out += '"'; return;
      case '\\': out += '\\'; return;
      case '/': out += '/'; return;
      case 'b': out += '\b'; return;
      case 'f': out += '\f'; return;
      case 'n': out += '\n'; return;
      case 'r': out += '\r'; return;
      case 't': out += '\t'; return;
      case 'u': break;
      default: fail_at(escape_offset, "invalid escape \\" + std::string(1, c));
    }
    uint32_t code_point = parse_hex4();
    if (code_point >= 0xdc00 && code_point <= 0xdfff) fail_at(escape_offset, "unpaired low surrogate in a \\u escape");
    if (code_point >= 0xd800 && code_point <= 0xdbff) {
      // A code point above U+FFFF is written as a UTF-16 surrogate pair: \uD83D\uDE00.
      if (text_.compare(pos_, 2, "\\u") != 0) fail_at(escape_offset, "high surrogate not followed by a low surrogate");
      pos_ += 2;
      const uint32_t low = parse_hex4();
      if (low < 0xdc00 || low > 0xdfff) fail_at(escape_offset, "high surrogate not followed by a low surrogate");
      code_point = 0x10000 + ((code_point - 0xd800) << 10) + (low - 0xdc00);
    }
    append_utf8(out, code_point);
  }

  size_t skip_digits() {
    const size_t start = pos_;
    while (!at_end() && peek() >= '0' && peek() <= '9') ++pos_;
    return pos_ - start;
  }

  Value parse_number() {
    const size_t start = pos_;
    if (peek() == '-') ++pos_;
    if (at_end() || peek() < '0' || peek() > '9') fail("invalid number: expected a digit");
    if (peek() == '0') {
      ++pos_;
      if (!at_end() && peek() >= '0' && peek() <= '9') fail("invalid number: leading zero");
    } else {
      skip_digits();
    }
    bool integral = true;
    if (!at_end() && peek() == '.') {
      ++pos_;
      integral = false;
      if (skip_digits() == 0) fail("invalid number: expected a digit after '.'");
    }
    if (!at_end() && (peek() == 'e' || peek() == 'E')) {
      ++pos_;
      integral = false;
      if (!at_end() && (peek() == '+' || peek() == '-')) ++pos_;
      if (skip_digits() == 0) fail("invalid number: expected a digit in the exponent");
    }
    const char* first = text_.data() + start;
    const char* last = text_.data() + pos_;
    if (integral) {
      int64_t value = 0;
      const auto result = std::from_chars(first, last, value);
      if (result.ec == std::errc() && result.ptr == last) return Value(value);
      // Too large for int64: falls through to a double, as the format allows.
    }
    double value = 0.0;
    const auto result = std::from_chars(first, last, value);
    if (result.ec == std::errc::result_out_of_range) {
      if (decimal_exponent(first, last) > 0) fail_at(start, "number out of the range of a double");
      return Value(*first == '-' ? -0.0 : 0.0);  // underflow: the nearest double is zero
    }
    if (result.ec != std::errc() || result.ptr != last) fail_at(start, "invalid number");
    return Value(value);
  }

  // Base-10 exponent of the leading digit of a valid non-zero number literal
  // (1.5e300 -> 300, 0.002e-400 -> -403), to tell overflow from underflow when
  // from_chars reports out of range; only huge exponents get there, so the
  // saturation of the exponent text at 2^40 changes nothing.
  static int64_t decimal_exponent(const char* first, const char* last) {
    const char* p = first;
    if (*p == '-') ++p;
    int64_t integer_digits = 0, zeros_after_point = 0;
    bool in_fraction = false, leading = true;
    for (; p < last && *p != 'e' && *p != 'E'; ++p) {
      if (*p == '.') {
        in_fraction = true;
      } else if (!in_fraction) {
        if (*p != '0' || !leading) ++integer_digits, leading = false;
      } else if (integer_digits == 0 && leading) {
        if (*p == '0') ++zeros_after_point;
        else leading = false;
      }
    }
    const int64_t magnitude = integer_digits > 0 ? integer_digits - 1 : -zeros_after_point - 1;
    int64_t exponent = 0;
    bool negative = false;
    if (p < last) {
      ++p;
      if (*p == '+' || *p == '-') negative = *p++ == '-';
      for (; p < last; ++p) exponent = std::min<int64_t>(exponent * 10 + (*p - '0'), int64_t{1} << 40);
    }
    return magnitude + (negative ? -exponent : exponent);
  }

  const std::string& text_;
  size_t pos_ = 0;
};

}  // namespace

ParseError::ParseError(size_t offset_bytes, const std::string& what)
    : std::runtime_error("JSON parse error at byte " + std::to_string(offset_bytes) + ": " + what),
      offset_bytes_(offset_bytes) {}

void Value::throw_unsigned_out_of_range() {
  throw std::out_of_range("json::Value: unsigned integer above INT64_MAX has no exact JSON integer form here");
}

Value Value::object() {
  Value value;
  value.kind_ = Kind::object;
  return value;
}

Value Value::array() {
  Value value;
  value.kind_ = Kind::array;
  return value;
}

const char* Value::kind_name() const {
  switch (kind_) {
    case Kind::null: return "null";
    case Kind::boolean: return "bool";
    case Kind::integer: return "int";
    case Kind::number: return "double";
    case Kind::string: return "string";
    case Kind::array: return "array";
    case Kind::object: return "object";
  }
  return "?";
}

bool Value::as_bool() const {
  if (kind_ != Kind::boolean) throw TypeError(std::string("json: expected a bool, got ") + kind_name());
  return bool_;
}

int64_t Value::as_int() const {
  if (kind_ == Kind::integer) return int_;
  // 2^63 is exactly representable; anything at or beyond it is not an int64.
  if (kind_ == Kind::number && std::trunc(double_) == double_ && double_ >= -9223372036854775808.0 &&
      double_ < 9223372036854775808.0)
    return static_cast<int64_t>(double_);
  if (kind_ == Kind::number) throw TypeError("json: expected an integer, got the double " + dump());
  throw TypeError(std::string("json: expected an integer, got ") + kind_name());
}

double Value::as_double() const {
  if (kind_ == Kind::number) return double_;
  if (kind_ == Kind::integer) return static_cast<double>(int_);
  throw TypeError(std::string("json: expected a number, got ") + kind_name());
}

const std::string& Value::as_string() const {
  if (kind_ != Kind::string) throw TypeError(std::string("json: expected a string, got ") + kind_name());
  return string_;
}

const std::vector<Value>& Value::as_array() const {
  if (kind_ != Kind::array) throw TypeError(std::string("json: expected an array, got ") + kind_name());
  return array_;
}

const std::vector<std::pair<std::string, Value>>& Value::as_object() const {
  if (kind_ != Kind::object) throw TypeError(std::string("json: expected an object, got ") + kind_name());
  return object_;
}

Value& Value::operator[](const std::string& key) {
  if (kind_ == Kind::null) kind_ = Kind::object;
  if (kind_ != Kind::object)
    throw TypeError("json: operator[](\"" + key + "\") on " + kind_name() + ", expected an object");
  for (auto& member : object_)
    if (member.first == key) return member.second;
  object_.emplace_back(key, Value());
  return object_.back().second;
}

const Value* Value::find(const std::string& key) const {
  if (kind_ != Kind::object) return nullptr;
  for (const auto& member : object_)
    if (member.first == key) return &member.second;
  return nullptr;
}

const Value& Value::at(const std::string& key) const {
  if (kind_ != Kind::object) throw TypeError("json: at(\"" + key + "\") on " + kind_name() + ", expected an object");
  const Value* member = find(key);
  if (!member) throw TypeError("json: missing key \"" + key + "\"");
  return *member;
}

void Value::push_back(Value value) {
  if (kind_ == Kind::null) kind_ = Kind::array;
  if (kind_ != Kind::array) throw TypeError(std::string("json: push_back on ") + kind_name() + ", expected an array");
  array_.push_back(std::move(value));
}

size_t Value::size() const {
  if (kind_ == Kind::array) return array_.size();
  if (kind_ == Kind::object) return object_.size();
  return 0;
}

void Value::dump_to(std::string& out, int indent, int depth) const {
  switch (kind_) {
    case Kind::null: out += "null"; return;
    case Kind::boolean: out += bool_ ? "true" : "false"; return;
    case Kind::integer: out += std::to_string(int_); return;
    case Kind::number: dump_double(out, double_); return;
    case Kind::string: dump_string(out, string_); return;
    case Kind::array:
      if (array_.empty()) {
        out += "[]";
        return;
      }
      out += '[';
      for (size_t i = 0; i < array_.size(); ++i) {
        if (i) out += ',';
        if (indent >= 0) newline_and_indent(out, indent, depth + 1);
        array_[i].dump_to(out, indent, depth + 1);
      }
      if (indent >= 0) newline_and_indent(out, indent, depth);
      out += ']';
      return;
    case Kind::object:
      if (object_.empty()) {
        out += "{}";
        return;
      }
      out += '{';
      for (size_t i = 0; i < object_.size(); ++i) {
        if (i) out += ',';
        if (indent >= 0) newline_and_indent(out, indent, depth + 1);
        dump_string(out, object_[i].first);
        out += indent >= 0 ? ": " : ":";
        object_[i].second.dump_to(out, indent, depth + 1);
      }
      if (indent >= 0) newline_and_indent(out, indent, depth);
      out += '}';
      return;
  }
}

std::string Value::dump(int indent) const {
  std::string out;
  dump_to(out, indent, 0);
  return out;
}

Value Value::parse(const std::string& text) { return Parser(text).parse_document(); }

bool operator==(const Value& a, const Value& b) {
  if (a.kind_ != b.kind_) return false;
  switch (a.kind_) {
    case Value::Kind::null: return true;
    case Value::Kind::boolean: return a.bool_ == b.bool_;
    case Value::Kind::integer: return a.int_ == b.int_;
    case Value::Kind::number: return a.double_ == b.double_;
    case Value::Kind::string: return a.string_ == b.string_;
    case Value::Kind::array: return a.array_ == b.array_;
    case Value::Kind::object: return a.object_ == b.object_;
  }
  return false;
}

void write_json_line(std::FILE* file, const Value& value) {
  if (!file) throw std::invalid_argument("write_json_line: null FILE*");
  std::string line = value.dump();
  line += '\n';
  if (std::fwrite(line.data(), 1, line.size(), file) != line.size() || std::fflush(file) != 0)
    throw std::runtime_error(std::string("write_json_line: write failed: ") + std::strerror(errno));
}

}  // namespace gc::json
