#include "tools/study/command.h"

#include <algorithm>

namespace gc::study {
namespace {

std::vector<Command>& registry() {
  static std::vector<Command> all;  // filled before main by the static registrations
  return all;
}

}  // namespace

std::vector<Command> commands() {
  std::vector<Command> all = registry();
  std::sort(all.begin(), all.end(), [](const Command& a, const Command& b) { return a.name < b.name; });
  return all;
}

CommandRegistration::CommandRegistration(const char* name, const char* summary, CommandFn run) {
  registry().push_back(Command{name, summary, run});
}

}  // namespace gc::study
