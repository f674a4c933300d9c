// gc_study: the practical questions of fitting GraphCast, one sub-command each
// (tools/study/). `gc_study --help` lists them; `gc_study NAME --help` tells a
// sub-command's flags. Exit codes: 0 done, 1 runtime error, 2 bad usage.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "tools/study/command.h"
#include "tools/usage_error.h"

namespace {

void print_help(std::FILE* out) {
  std::fprintf(out,
               "usage: gc_study COMMAND [flags]    (gc_study COMMAND --help for its flags)\n\n"
               "The practical questions of fitting GraphCast, answered from gc's dry runs and\n"
               "short trainings on the built-in data. Commands:\n");
  for (const auto& c : gc::study::commands()) std::fprintf(out, "  %-10s %s\n", c.name.c_str(), c.summary.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    print_help(stderr);
    return 2;
  }
  const std::string name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") {
    print_help(stdout);
    return 0;
  }
  for (const auto& c : gc::study::commands()) {
    if (c.name != name) continue;
    try {
      return c.run(argc - 1, argv + 1);
    } catch (const gc::UsageError& e) {
      std::fprintf(stderr, "gc_study %s: %s\n", name.c_str(), e.what());
      return 2;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "gc_study %s: %s\n", name.c_str(), e.what());
      return 1;
    }
  }
  std::fprintf(stderr, "gc_study: unknown command '%s'\n\n", name.c_str());
  print_help(stderr);
  return 2;
}
