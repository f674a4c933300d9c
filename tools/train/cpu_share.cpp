// cpu_share.cpp: see cpu_share.h.
#include "tools/train/cpu_share.h"

#include <dirent.h>
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace gc {

namespace {

// Runnable threads of the whole machine, or -1.
int machine_running() {
  std::ifstream stat("/proc/stat");
  std::string key;
  long value = 0;
  while (stat >> key) {
    if (key == "procs_running" && stat >> value) return static_cast<int>(value);
    stat.ignore(1 << 20, '\n');
  }
  return -1;
}

// This process's threads in state R.
int own_running() {
  int running = 0;
  DIR* tasks = ::opendir("/proc/self/task");
  if (!tasks) return 0;
  while (const dirent* entry = ::readdir(tasks)) {
    if (entry->d_name[0] == '.') continue;
    std::ifstream stat(std::string("/proc/self/task/") + entry->d_name + "/stat");
    std::string line;
    std::getline(stat, line);
    const size_t close = line.rfind(')');
    if (close != std::string::npos && close + 2 < line.size() && line[close + 2] == 'R') ++running;
  }
  ::closedir(tasks);
  return running;
}

}  // namespace

int threads_for_shared_cores(int cores) {
  // The median of three samples a millisecond apart: a single one often catches a
  // short-lived process, or this process's own threads on their way to sleep.
  std::vector<int> others;
  for (int i = 0; i < 3; ++i) {
    const int all = machine_running(), own = own_running();
    if (all < 0) return cores;
    others.push_back(std::max(0, all - own));
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::sort(others.begin(), others.end());
  return std::clamp(cores - others[1], 1, cores);
}

void share_cores_every_few_steps(int step) {
  static const bool chosen_by_user = std::getenv("OMP_NUM_THREADS") != nullptr;
  static const int cores = omp_get_num_procs();
  if (chosen_by_user || step % 10 != 0) return;
  omp_set_num_threads(threads_for_shared_cores(cores));
}

}  // namespace gc
