// test_leaks.cpp: no test may leave tensors allocated on the shared device
// allocators (allocator_for(cpu / meta / cuda)). A listener compares each
// device's allocated bytes before and after every test; a test that leaves bytes
// behind (a global cache that outlives its model, a tensor kept in a static)
// would skew the figures of the tests that run after it, so the run fails at the
// end, naming the test, the device, the bytes and the labels left.
#include <gtest/gtest.h>

#include <array>
#include <string>
#include <vector>

#include "runtime/allocator.h"
#include "runtime/device.h"

namespace gc {
namespace {

constexpr std::array<Device, 3> kDevices = {Device::cpu, Device::meta, Device::cuda};

std::vector<std::string>& leaks() {
  static std::vector<std::string> found;
  return found;
}

bool device_in_use(Device device) { return device != Device::cuda || cuda_available(); }

class LiveBytesListener : public ::testing::EmptyTestEventListener {
 public:
  void OnTestStart(const ::testing::TestInfo&) override {
    for (size_t i = 0; i < kDevices.size(); ++i)
      before_[i] = device_in_use(kDevices[i]) ? allocator_for(kDevices[i]).stats().allocated : 0;
  }
  void OnTestEnd(const ::testing::TestInfo& info) override {
    for (size_t i = 0; i < kDevices.size(); ++i) {
      if (!device_in_use(kDevices[i])) continue;
      CachingAllocator& alloc = allocator_for(kDevices[i]);
      const int64_t left = alloc.stats().allocated - before_[i];
      if (left <= 0) continue;
      std::string labels;
      int shown = 0;
      for (const LiveBlock& b : alloc.live_blocks())
        if (shown++ < 4) labels += " '" + b.label + "'";
      leaks().push_back(std::string(info.test_suite_name()) + "." + info.name() + " left " + std::to_string(left) +
                        " bytes allocated on " + device_name(kDevices[i]) + " (live blocks:" + labels + " ...)");
    }
  }

 private:
  std::array<int64_t, kDevices.size()> before_{};
};

class LeakReport : public ::testing::Environment {
 public:
  void TearDown() override {
    for (const std::string& leak : leaks()) ADD_FAILURE() << leak;
  }
};

const bool kRegistered = [] {
  ::testing::UnitTest::GetInstance()->listeners().Append(new LiveBytesListener);
  ::testing::AddGlobalTestEnvironment(new LeakReport);
  return true;
}();

}  // namespace
}  // namespace gc
