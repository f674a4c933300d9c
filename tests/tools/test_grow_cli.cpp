// test_grow_cli.cpp: ./gc_train --grow-from end to end: a small model trained
// and saved, grown into a wider and deeper one that trains (exit 0, "grown
// from" said, its report naming the source), and impossible grows refused with
// exit 2 and the reason; a checkpoint of one processor resumed as another fails
// naming both.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace {

const char* const kProgram = "./gc_train";
const std::string kTiny = "--preset graphcast-small --grid 30 --mesh 1 --no-eval --quiet --steps 3";

struct Result {
  int exit_code = -1;
  std::string err;
};

class GrowCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access(kProgram, X_OK) != 0) GTEST_SKIP() << kProgram << " is not built in the current directory";
    char pattern[] = "/tmp/gc_grow_cli.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    std::error_code ignored;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ignored);
  }
  Result run(const std::string& args) {
    const std::string err = dir_ + "/stderr.txt";
    const int status = std::system(("exec " + std::string(kProgram) + " " + args + " >/dev/null 2>" + err).c_str());
    Result r;
    if (status != -1 && WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
    std::ifstream in(err);
    std::ostringstream s;
    s << in.rdbuf();
    r.err = s.str();
    return r;
  }
  std::string dir_;
};

TEST_F(GrowCli, GrowsAndRefusesWhatCannotGrow) {
  const std::string small = dir_ + "/small";
  ASSERT_EQ(run(kTiny + " --processor attention --latent 8 --layers 1 --out " + small).exit_code, 0);
  const Result grown = run(kTiny + " --processor attention --latent 16 --layers 2 --grow-from " + small +
                           " --out " + dir_ + "/big --report " + dir_ + "/big.json --quiet=false");
  EXPECT_EQ(grown.exit_code, 0) << grown.err;
  EXPECT_NE(grown.err.find("grown from"), std::string::npos) << grown.err;
  std::ifstream report(dir_ + "/big.json");
  std::ostringstream text;
  text << report.rdbuf();
  EXPECT_NE(text.str().find("\"grow_from\""), std::string::npos);

  const struct {
    std::string args, reason;
  } refusals[] = {
      {"--processor attention --latent 4 --layers 1", "smaller"},
      {"--processor attention --latent 12 --layers 2", "whole multiple"},
      {"--processor gated --latent 16 --layers 2", "--processor attention model"},
      {"--processor attention --latent 16 --layers 2 --mesh 2", "mesh=1"},
      {"--processor attention --latent 16 --layers 2 --device meta", "meta"},
      {"--processor attention --latent 16 --layers 2 --resume " + small, "without --resume"},
  };
  for (const auto& r : refusals) {
    const Result got = run(kTiny + " " + r.args + " --grow-from " + small + " --out " + dir_ + "/refused");
    EXPECT_EQ(got.exit_code, 2) << r.args << "\n" << got.err;
    EXPECT_NE(got.err.find(r.reason), std::string::npos) << r.args << "\n" << got.err;
  }
  const Result missing = run(kTiny + " --latent 16 --grow-from " + dir_ + "/nothing --out " + dir_ + "/refused");
  EXPECT_EQ(missing.exit_code, 2) << missing.err;
}

TEST_F(GrowCli, AnotherProcessorsCheckpointIsRefusedOnResume) {
  const std::string out = dir_ + "/gated";
  ASSERT_EQ(run(kTiny + " --processor gated --latent 8 --layers 1 --out " + out).exit_code, 0);
  const Result r = run(kTiny + " --steps 6 --latent 8 --layers 1 --resume " + out + " --out " + out);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("processor=gated"), std::string::npos) << r.err;
}

}  // namespace
