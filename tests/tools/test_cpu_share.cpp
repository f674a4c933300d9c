// test_cpu_share.cpp: the thread count gc_train takes on a shared machine. With
// as many busy threads in another process as there are cores, one is left; the
// count is always 1..cores.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "tools/train/cpu_share.h"

using namespace gc;

TEST(CpuShare, IsBetweenOneAndTheCores) {
  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  const int threads = threads_for_shared_cores(cores);
  EXPECT_GE(threads, 1);
  EXPECT_LE(threads, cores);
}

TEST(CpuShare, AnotherProcessBusyOnEveryCoreLeavesOne) {
  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // Busy threads on every core for a few seconds at most.
    std::vector<std::thread> busy;
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    for (int i = 0; i < cores; ++i)
      busy.emplace_back([end] {
        volatile unsigned long x = 0;
        while (std::chrono::steady_clock::now() < end) x = x + 1;
      });
    for (std::thread& t : busy) t.join();
    _exit(0);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const int threads = threads_for_shared_cores(cores);
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  EXPECT_EQ(threads, 1);
}
