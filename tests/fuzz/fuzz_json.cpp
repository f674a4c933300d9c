// fuzz_json.cpp: libFuzzer target of the JSON parser (tools/io/json.h).
//
// Contract: any bytes either parse or throw json::ParseError; nothing else may
// escape, crash, hang or trip ASan/UBSan (the nesting limit keeps deep input
// off the stack). A value that parses must survive the writer: dump() compact
// and indented both parse back to an equal value, and dumping that again gives
// the same text (the writer is a fixed point after one round).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "tools/io/json.h"

namespace {

[[noreturn]] void broken(const char* what, const std::string& text) {
  std::fprintf(stderr, "fuzz_json: %s\n  text: %.400s\n", what, text.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using gc::json::Value;
  const std::string text(reinterpret_cast<const char*>(data), size);
  Value value;
  try {
    value = Value::parse(text);
  } catch (const gc::json::ParseError& error) {
    if (error.offset_bytes() > text.size()) broken("ParseError offset beyond the text", text);
    return 0;
  }
  for (int indent : {-1, 2}) {
    const std::string dumped = value.dump(indent);
    Value again;
    try {
      again = Value::parse(dumped);
    } catch (const gc::json::ParseError& error) {
      broken(error.what(), dumped);
    }
    if (again != value) broken("dump() then parse() changed the value", dumped);
    if (again.dump(indent) != dumped) broken("dump() of the reparsed value differs", dumped);
  }
  return 0;
}
