// atomic_file.cpp: write-to-temporary, fsync, rename, fsync-directory.
//
// A directory fsync that the file system does not support (EINVAL, as on some
// network and FUSE mounts) is not an error: the rename has already happened and
// nothing better can be done there.
#include "tools/io/atomic_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace gc {

namespace {

std::string errno_text(int error) { return std::strerror(error); }

[[noreturn]] void fail(const std::string& what, const std::string& path, int error) {
  throw std::runtime_error("write_file_atomic: " + what + " " + path + ": " + errno_text(error));
}

std::string directory_of(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

void fsync_directory(const std::string& path) {
  const std::string directory = directory_of(path);
  const int fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) fail("cannot open the directory of", path, errno);
  if (::fsync(fd) != 0 && errno != EINVAL) {
    const int error = errno;
    ::close(fd);
    fail("cannot fsync the directory of", path, error);
  }
  ::close(fd);
}

}  // namespace

void write_file_atomic(const std::string& path, const std::function<void(std::FILE*)>& writer) {
  if (path.empty()) throw std::invalid_argument("write_file_atomic: empty path");
  // Unique per process and call, so concurrent writers (other processes racing on
  // one data cache, threads of this one) never share a temporary.
  static std::atomic<unsigned> calls{0};
  const std::string temporary = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(calls++);
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) fail("cannot create", temporary, errno);
  std::FILE* file = ::fdopen(fd, "wb");
  if (!file) {
    const int error = errno;
    ::close(fd);
    ::unlink(temporary.c_str());
    fail("cannot open a stream on", temporary, error);
  }
  // Any exit before the rename closes and removes the temporary.
  auto abandon = [&]() {
    std::fclose(file);
    ::unlink(temporary.c_str());
  };
  try {
    writer(file);
  } catch (...) {
    abandon();
    throw;
  }
  if (std::ferror(file) || std::fflush(file) != 0) {
    const int error = errno ? errno : EIO;
    abandon();
    fail("cannot write", temporary, error);
  }
  if (::fsync(::fileno(file)) != 0) {
    const int error = errno;
    abandon();
    fail("cannot fsync", temporary, error);
  }
  if (std::fclose(file) != 0) {
    const int error = errno;
    ::unlink(temporary.c_str());
    fail("cannot close", temporary, error);
  }
  if (::rename(temporary.c_str(), path.c_str()) != 0) {
    const int error = errno;
    ::unlink(temporary.c_str());
    fail("cannot rename " + temporary + " over", path, error);
  }
  fsync_directory(path);
}

void write_file_atomic(const std::string& path, const std::string& contents) {
  write_file_atomic(path, [&](std::FILE* file) {
    if (!contents.empty() && std::fwrite(contents.data(), 1, contents.size(), file) != contents.size())
      throw std::runtime_error("write_file_atomic: cannot write " + path + ": " + errno_text(errno));
  });
}

int remove_stale_temporaries(const std::string& folder) {
  DIR* dir = ::opendir(folder.c_str());
  if (!dir) return 0;
  int removed = 0;
  while (const dirent* entry = ::readdir(dir)) {
    const std::string name = entry->d_name;
    const size_t mark = name.rfind(".tmp.");
    if (mark == std::string::npos || mark == 0) continue;
    // <pid> or <pid>.<n>, digits only.
    const std::string tail = name.substr(mark + 5);
    const std::string pid_text = tail.substr(0, tail.find('.'));
    if (pid_text.empty() || pid_text.size() > 9 || tail.find_first_not_of("0123456789.") != std::string::npos) continue;
    const long pid = std::stol(pid_text);
    if (pid <= 0 || pid == ::getpid() || ::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;
    if (::unlink((folder + "/" + name).c_str()) == 0) ++removed;
  }
  ::closedir(dir);
  return removed;
}

void make_directories(const std::string& path) {
  if (path.empty()) throw std::invalid_argument("make_directories: empty path");
  std::string partial;
  for (size_t i = 0; i < path.size(); ++i) {
    partial += path[i];
    if (path[i] == '/' || i + 1 == path.size()) ::mkdir(partial.c_str(), 0755);
  }
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    throw std::runtime_error("cannot create directory '" + path + "'");
}

}  // namespace gc
