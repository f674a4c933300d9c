// test_json.cpp: the JSON value: dump/parse round trips (nesting, escapes,
// unicode, int64 limits, doubles bit-exact), insertion order, the kinds numbers
// parse to, and parse errors that name the byte offset of the problem.
#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>

#include "tools/io/json.h"

namespace gc::json {
namespace {

uint64_t double_bits(double value) {
  uint64_t bits;
  std::memcpy(&bits, &value, 8);
  return bits;
}

Value nested_example() {
  Value root = Value::object();
  root["name"] = "graphcast";
  root["layers"] = 16;
  root["lr"] = 1e-3;
  root["flags"]["bf16"] = true;
  root["flags"]["remat"] = Value();
  Value levels = Value::array();
  for (int level : {50, 500, 1000}) levels.push_back(level);
  root["levels"] = levels;
  Value matrix = Value::array();
  for (int row = 0; row < 3; ++row) {
    Value cells = Value::array();
    for (int col = 0; col <= row; ++col) cells.push_back(row * 10 + col + 0.5);
    matrix.push_back(cells);
  }
  root["matrix"] = matrix;
  root["empty_object"] = Value::object();
  root["empty_array"] = Value::array();
  return root;
}

TEST(JsonValue, DumpCompactAndIndented) {
  Value root = Value::object();
  root["b"] = 1;
  root["a"]["x"] = Value::array();
  root["a"]["y"].push_back(true);
  root["a"]["y"].push_back("s");
  root["c"] = 2.5;
  EXPECT_EQ(root.dump(), R"({"b":1,"a":{"x":[],"y":[true,"s"]},"c":2.5})");
  EXPECT_EQ(root.dump(2),
            "{\n  \"b\": 1,\n  \"a\": {\n    \"x\": [],\n    \"y\": [\n      true,\n      \"s\"\n    ]\n  },\n"
            "  \"c\": 2.5\n}");
  EXPECT_EQ(Value().dump(), "null");
  EXPECT_EQ(Value::object().dump(4), "{}");
}

TEST(JsonValue, InsertionOrderKept) {
  Value object = Value::object();
  object["zeta"] = 1;
  object["alpha"] = 2;
  object["mid"] = 3;
  object["alpha"] = 20;  // existing key: updated in place, not moved
  ASSERT_EQ(object.size(), 3u);
  EXPECT_EQ(object.as_object()[0].first, "zeta");
  EXPECT_EQ(object.as_object()[1].first, "alpha");
  EXPECT_EQ(object.as_object()[1].second.as_int(), 20);
  EXPECT_EQ(object.as_object()[2].first, "mid");
  EXPECT_EQ(object.dump(), R"({"zeta":1,"alpha":20,"mid":3})");

  const Value parsed = Value::parse(R"({"z":1,"b":2,"y":3,"a":4})");
  std::string order;
  for (const auto& member : parsed.as_object()) order += member.first;
  EXPECT_EQ(order, "zbya");
  EXPECT_EQ(parsed.dump(), R"({"z":1,"b":2,"y":3,"a":4})");
}

TEST(JsonValue, NullBecomesObjectOrArray) {
  Value object;
  object["k"] = "v";
  EXPECT_TRUE(object.is_object());
  Value array;
  array.push_back(1);
  EXPECT_TRUE(array.is_array());
  EXPECT_EQ(array.size(), 1u);
}

TEST(JsonValue, AccessorsAndTypeErrors) {
  const Value text("hello");
  EXPECT_THROW(text.as_int(), TypeError);
  EXPECT_THROW(text.as_double(), TypeError);
  EXPECT_THROW(Value(1).as_string(), TypeError);
  EXPECT_THROW(Value(true).as_array(), TypeError);
  Value array = Value::array();
  EXPECT_THROW(array["key"], TypeError);
  Value object = Value::object();
  EXPECT_THROW(object.push_back(1), TypeError);
  EXPECT_EQ(text.find("x"), nullptr);
  EXPECT_EQ(object.find("x"), nullptr);
  EXPECT_THROW(object.at("x"), TypeError);

  EXPECT_EQ(Value(3.0).as_int(), 3);  // exact integer stored as a double
  EXPECT_THROW(Value(2.5).as_int(), TypeError);
  EXPECT_THROW(Value(1e19).as_int(), TypeError);
  EXPECT_DOUBLE_EQ(Value(7).as_double(), 7.0);
  EXPECT_TRUE(Value(7).is_number());
  EXPECT_FALSE(Value(7.0).is_int());
  EXPECT_TRUE(Value(false).is_bool());
  EXPECT_FALSE(Value(false).as_bool());
}

TEST(JsonValue, IntegerConstructorsOfEveryWidth) {
  EXPECT_EQ(Value(size_t{12345678901}).as_int(), 12345678901);
  EXPECT_EQ(Value(static_cast<unsigned>(4000000000u)).as_int(), 4000000000);
  EXPECT_EQ(Value(static_cast<long long>(-5)).as_int(), -5);
  EXPECT_EQ(Value(static_cast<int16_t>(-7)).as_int(), -7);
  EXPECT_EQ(Value(std::numeric_limits<uint64_t>::max() / 2).as_int(), INT64_MAX);
  EXPECT_THROW(Value(std::numeric_limits<uint64_t>::max()), std::out_of_range);
}

TEST(JsonRoundTrip, NestedObjectsAndArrays) {
  const Value original = nested_example();
  for (int indent : {-1, 0, 2}) {
    const std::string text = original.dump(indent);
    const Value parsed = Value::parse(text);
    EXPECT_EQ(parsed, original) << text;
    EXPECT_EQ(parsed.dump(indent), text);
  }
  const Value parsed = Value::parse(original.dump());
  EXPECT_EQ(parsed.at("flags").at("bf16").as_bool(), true);
  EXPECT_TRUE(parsed.at("flags").at("remat").is_null());
  EXPECT_EQ(parsed.at("matrix").as_array()[2].as_array()[1].as_double(), 21.5);
  EXPECT_EQ(parsed.at("levels").as_array()[1].as_int(), 500);
}

TEST(JsonRoundTrip, EscapesAndControlCharacters) {
  std::string every_control;
  for (int c = 1; c < 0x20; ++c) every_control += static_cast<char>(c);
  every_control += "\"\\/\x7f";
  every_control += std::string(1, '\0') + "end";
  const std::string dumped = Value(every_control).dump();
  const std::string expected_prefix = R"("\u0001\u0002\u0003\u0004\u0005\u0006\u0007\b\t\n\u000b\f\r\u000e)";
  EXPECT_EQ(dumped.substr(0, expected_prefix.size()), expected_prefix);
  for (char c : dumped) EXPECT_GE(static_cast<unsigned char>(c), 0x20) << "raw control character in " << dumped;
  EXPECT_NE(dumped.find(R"(\"\\/)"), std::string::npos);
  EXPECT_NE(dumped.find(R"(\u0000end)"), std::string::npos);
  EXPECT_EQ(Value::parse(dumped).as_string(), every_control);
  EXPECT_EQ(Value::parse(R"("a\/b\f\r")").as_string(), "a/b\f\r");
}

TEST(JsonRoundTrip, UnicodeEscapesAndSurrogatePairs) {
  // e-acute, a CJK character, and U+1F600 written as a surrogate pair.
  const Value parsed = Value::parse(R"("\u00e9\u4E2D\ud83d\ude00 \u0041")");
  EXPECT_EQ(parsed.as_string(), "\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80 A");
  // Raw UTF-8 is written as is and reads back unchanged.
  EXPECT_EQ(parsed.dump(), "\"\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80 A\"");
  EXPECT_EQ(Value::parse(parsed.dump()), parsed);
  // Bytes that are not UTF-8 cannot appear in JSON text: they become U+FFFD.
  EXPECT_EQ(Value(std::string("a\xff" "b")).dump(), R"("a\ufffdb")");
  EXPECT_EQ(Value::parse(Value(std::string("a\xff" "b")).dump()).as_string(), "a\xef\xbf\xbd" "b");
}

TEST(JsonRoundTrip, LargeIntegersStayExact) {
  for (int64_t value : {INT64_MAX, INT64_MIN, int64_t{9007199254740993}, int64_t{-1}, int64_t{0}}) {
    const Value parsed = Value::parse(Value(value).dump());
    ASSERT_TRUE(parsed.is_int()) << value;
    EXPECT_EQ(parsed.as_int(), value);
  }
  EXPECT_EQ(Value(INT64_MIN).dump(), "-9223372036854775808");
  // One past the int64 range: still a number, now a double.
  const Value too_big = Value::parse("9223372036854775808");
  EXPECT_FALSE(too_big.is_int());
  EXPECT_EQ(too_big.as_double(), 9223372036854775808.0);
  const Value too_small = Value::parse("-9223372036854775809");
  EXPECT_FALSE(too_small.is_int());
  EXPECT_EQ(too_small.as_double(), -9223372036854775808.0);
  // A fraction or exponent makes a double even when the value is integral.
  EXPECT_FALSE(Value::parse("1.0").is_int());
  EXPECT_FALSE(Value::parse("1e2").is_int());
  EXPECT_EQ(Value::parse("-0").as_int(), 0);
}

TEST(JsonRoundTrip, DoublesBitExact) {
  std::vector<double> values = {0.1,     1.0 / 3.0, -0.0,           1.0,           -2.0,     1e300,
                                1e-300,  DBL_MAX,   DBL_MIN,        DBL_TRUE_MIN,  -DBL_MAX, 123456789012345678.0,
                                0.5e-7,  6.02214076e23, 2.0 / 3.0 * 1e-310};
  std::mt19937_64 rng(12345);
  while (values.size() < 2000) {
    const uint64_t bits = rng();
    double value;
    std::memcpy(&value, &bits, 8);
    if (std::isfinite(value)) values.push_back(value);
  }
  for (double value : values) {
    const std::string text = Value(value).dump();
    const Value parsed = Value::parse(text);
    ASSERT_TRUE(parsed.is_number() && !parsed.is_int()) << text;
    ASSERT_EQ(double_bits(parsed.as_double()), double_bits(value)) << text;
  }
  EXPECT_EQ(Value(1.0).dump(), "1.0");
  EXPECT_EQ(Value(-0.0).dump(), "-0.0");
  EXPECT_EQ(Value(0.1).dump(), "0.1");
}

TEST(JsonDump, NonFiniteIsNull) {
  Value array = Value::array();
  array.push_back(std::nan(""));
  array.push_back(std::numeric_limits<double>::infinity());
  array.push_back(-std::numeric_limits<double>::infinity());
  EXPECT_EQ(array.dump(), "[null,null,null]");
}

TEST(JsonParse, WhitespaceLiteralsAndUnderflow) {
  const Value parsed = Value::parse(" \t\n\r{ \"a\" : [ 1 , -2.5e+1 , true , false , null ] }\r\n ");
  ASSERT_TRUE(parsed.is_object());
  const auto& items = parsed.at("a").as_array();
  ASSERT_EQ(items.size(), 5u);
  EXPECT_EQ(items[1].as_double(), -25.0);
  EXPECT_TRUE(items[4].is_null());
  // Below the smallest subnormal the nearest double is zero, with its sign.
  EXPECT_EQ(double_bits(Value::parse("1e-400").as_double()), double_bits(0.0));
  EXPECT_EQ(double_bits(Value::parse("-0.0000001e-400").as_double()), double_bits(-0.0));
  EXPECT_EQ(Value::parse("1E2").as_double(), 100.0);
}

struct MalformedCase {
  size_t offset;
  const char* phrase;
};

TEST(JsonParse, ErrorsCarryTheByteOffset) {
  const std::string deep(1000, '[');
  const std::vector<std::pair<std::string, MalformedCase>> cases = {
      {"", {0, "end of input"}},
      {"   ", {3, "end of input"}},
      {R"({"a":1,})", {7, "expected a string key"}},
      {"[1 2]", {3, "expected ',' or ']'"}},
      {"[1,]", {3, "expected a value"}},
      {"tru", {0, "invalid literal"}},
      {"nul", {0, "invalid literal"}},
      {"01", {1, "leading zero"}},
      {"1.e5", {2, "after '.'"}},
      {"1e", {2, "exponent"}},
      {"-", {1, "expected a digit"}},
      {"+1", {0, "unexpected character"}},
      {"\"abc", {0, "unterminated string"}},
      {"\"a\x01\"", {2, "control character"}},
      {R"("\x")", {1, "invalid escape"}},
      {R"("\u12G4")", {5, "hex digit"}},
      {R"(["\ud800"])", {2, "high surrogate"}},
      {R"("\ud800\u0041")", {1, "high surrogate"}},
      {R"("\udc00")", {1, "low surrogate"}},
      {"\"\xff\"", {1, "UTF-8"}},
      {"\"\xc0\xaf\"", {1, "UTF-8"}},  // overlong '/'
      {R"({"a" 1})", {5, "expected ':'"}},
      {R"({"a":1 "b":2})", {7, "expected ',' or '}'"}},
      {R"({1:2})", {1, "string key"}},
      {"[1] x", {4, "trailing"}},
      {"{} {}", {3, "trailing"}},
      {R"({"a":1,"a":2})", {7, "duplicate key"}},
      {"1e400", {0, "out of the range"}},
      {"-1e400", {0, "out of the range"}},
      {deep, {512, "nesting deeper"}},
  };
  for (const auto& [text, expected] : cases) {
    try {
      Value::parse(text);
      ADD_FAILURE() << "parsed malformed input: " << text.substr(0, 40);
    } catch (const ParseError& error) {
      EXPECT_EQ(error.offset_bytes(), expected.offset) << text.substr(0, 40) << " -> " << error.what();
      const std::string message = error.what();
      EXPECT_NE(message.find("at byte " + std::to_string(expected.offset)), std::string::npos) << message;
      EXPECT_NE(message.find(expected.phrase), std::string::npos) << text.substr(0, 40) << " -> " << message;
    }
  }
}

TEST(JsonParse, ParseErrorIsARuntimeError) {
  EXPECT_THROW(Value::parse("{"), std::runtime_error);
  // Nesting right at the limit is fine.
  EXPECT_NO_THROW(Value::parse(std::string(512, '[') + std::string(512, ']')));
}

TEST(JsonLines, OneCompactValuePerLine) {
  std::FILE* file = std::tmpfile();
  ASSERT_NE(file, nullptr);
  Value first = Value::object();
  first["step"] = 1;
  first["note"] = "line\nbreak";
  Value second = Value::object();
  second["step"] = 2;
  second["loss"] = 0.25;
  write_json_line(file, first);
  write_json_line(file, second);
  std::rewind(file);
  char buffer[256] = {};
  const size_t bytes = std::fread(buffer, 1, sizeof(buffer) - 1, file);
  std::fclose(file);
  const std::string text(buffer, bytes);
  EXPECT_EQ(text, "{\"step\":1,\"note\":\"line\\nbreak\"}\n{\"step\":2,\"loss\":0.25}\n");
  const size_t newline = text.find('\n');
  EXPECT_EQ(Value::parse(text.substr(0, newline)), first);
  EXPECT_EQ(Value::parse(text.substr(newline + 1)), second);
}

}  // namespace
}  // namespace gc::json
