// json.h: a small JSON value (RFC 8259) for reports, configs, traces and
// checkpoint headers, with a strict parser and a writer.
//
// Invariants: object keys keep insertion order (dump prints them in that order,
// parse keeps the order of the text); a number literal without fraction or
// exponent that fits int64 parses as an int, everything else as a double, and
// dump writes doubles so that they parse back to the same bits and the same
// kind ("1.0", never "1"). NaN and infinities have no JSON form and dump as null.
#pragma once

#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace gc::json {

// Malformed JSON text; the message names the byte offset of the problem.
class ParseError : public std::runtime_error {
 public:
  ParseError(size_t offset_bytes, const std::string& what);
  size_t offset_bytes() const { return offset_bytes_; }

 private:
  size_t offset_bytes_;
};

// A value used as the wrong kind (as_int() of a string, operator[] of an array...).
class TypeError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Value {
 public:
  enum class Kind : uint8_t { null, boolean, integer, number, string, array, object };

  Value() = default;  // null
  Value(bool value) : kind_(Kind::boolean), bool_(value) {}
  Value(int value) : kind_(Kind::integer), int_(value) {}
  Value(int64_t value) : kind_(Kind::integer), int_(value) {}
  // Every other integer type (size_t, unsigned, long long...); an unsigned value
  // above INT64_MAX throws std::out_of_range rather than silently changing.
  template <class T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>, int> = 0>
  Value(T value) : kind_(Kind::integer), int_(checked_int64(value)) {}
  Value(double value) : kind_(Kind::number), double_(value) {}
  Value(const char* value) : kind_(Kind::string), string_(value) {}
  Value(std::string value) : kind_(Kind::string), string_(std::move(value)) {}

  static Value object();
  static Value array();

  Kind kind() const { return kind_; }
  bool is_null() const { return kind_ == Kind::null; }
  bool is_bool() const { return kind_ == Kind::boolean; }
  bool is_int() const { return kind_ == Kind::integer; }
  bool is_number() const { return kind_ == Kind::integer || kind_ == Kind::number; }  // int or double
  bool is_string() const { return kind_ == Kind::string; }
  bool is_array() const { return kind_ == Kind::array; }
  bool is_object() const { return kind_ == Kind::object; }

  // Accessors throw TypeError on the wrong kind. as_int() also accepts a double
  // holding an exact integer in int64 range; as_double() converts ints.
  bool as_bool() const;
  int64_t as_int() const;
  double as_double() const;
  const std::string& as_string() const;
  const std::vector<Value>& as_array() const;
  const std::vector<std::pair<std::string, Value>>& as_object() const;

  // Object member: found, or appended as null (a null value becomes an empty object first).
  // Lookup is linear (objects here are configs and headers, not big maps); like
  // std::vector, appending a member invalidates references to earlier members.
  Value& operator[](const std::string& key);
  // Object member or nullptr (also nullptr when this is not an object).
  const Value* find(const std::string& key) const;
  // Object member; throws TypeError when this is not an object or the key is missing.
  const Value& at(const std::string& key) const;
  // Appends to an array (a null value becomes an empty array first).
  void push_back(Value value);
  // Members of an object or elements of an array; 0 for anything else.
  size_t size() const;

  // indent < 0: compact, no spaces. indent >= 0: one member per line, nested
  // levels indented by `indent` spaces, ": " between key and value.
  std::string dump(int indent = -1) const;
  // Whole text must be one JSON value (surrounding whitespace allowed).
  // Duplicate keys in an object are rejected. Nesting is limited to 512 levels.
  static Value parse(const std::string& text);

  friend bool operator==(const Value& a, const Value& b);
  friend bool operator!=(const Value& a, const Value& b) { return !(a == b); }

 private:
  template <class T>
  static int64_t checked_int64(T value) {
    if constexpr (std::is_unsigned_v<T>) {
      if (value > static_cast<std::make_unsigned_t<int64_t>>(INT64_MAX)) throw_unsigned_out_of_range();
    }
    return static_cast<int64_t>(value);
  }
  [[noreturn]] static void throw_unsigned_out_of_range();
  void dump_to(std::string& out, int indent, int depth) const;
  const char* kind_name() const;

  Kind kind_ = Kind::null;
  bool bool_ = false;
  int64_t int_ = 0;
  double double_ = 0.0;
  std::string string_;
  std::vector<Value> array_;
  std::vector<std::pair<std::string, Value>> object_;
};

// One compact JSON value and '\n', flushed so that a crash keeps every finished line.
// Throws std::runtime_error when the write fails.
void write_json_line(std::FILE* file, const Value& value);

}  // namespace gc::json
