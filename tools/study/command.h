// command.h: gc_study's sub-commands. Each sub-command lives in its own file of
// tools/study/ and registers itself with GC_STUDY_COMMAND; gc_study links every
// object of the folder, so adding a study is adding a file.
#pragma once

#include <string>
#include <vector>

namespace gc::study {

// A sub-command's entry point: argv[0] is the sub-command's name. Returns the
// exit code (0 done, 1 runtime error, 2 bad usage).
using CommandFn = int (*)(int argc, char** argv);

struct Command {
  std::string name;
  std::string summary;  // one line, for gc_study --help
  CommandFn run = nullptr;
};

// Every registered sub-command, sorted by name.
std::vector<Command> commands();

struct CommandRegistration {
  CommandRegistration(const char* name, const char* summary, CommandFn run);
};

}  // namespace gc::study

#define GC_STUDY_CONCAT_(a, b) a##b
#define GC_STUDY_CONCAT(a, b) GC_STUDY_CONCAT_(a, b)
// GC_STUDY_COMMAND("scaling", "latent x layers: parameters, peaks, time, skill", run_scaling);
#define GC_STUDY_COMMAND(name, summary, fn) \
  static const ::gc::study::CommandRegistration GC_STUDY_CONCAT(gc_study_command_, __LINE__)(name, summary, fn)
