// atomic_file.h: the one way gc writes a file (checkpoints, metrics, reports,
// traces, pictures, the data cache), and the one mkdir -p.
//
// Replace a file so that readers (and a later run after a crash)
// see either the complete old contents or the complete new contents, never a mix.
//
// The data goes to `path.tmp.<pid>.<n>` in the same directory, is flushed and
// fsync'ed, renamed over `path` (atomic within one file system), and the
// directory is fsync'ed so the rename itself survives a power loss. Until the
// rename, the previous file at `path` is untouched.
#pragma once

#include <cstdio>
#include <functional>
#include <string>

namespace gc {

// `writer` fills the temporary file. On any failure the temporary is removed:
// an exception from `writer` propagates unchanged; a failed open, write, sync or
// rename throws std::runtime_error naming the path and the errno text.
void write_file_atomic(const std::string& path, const std::function<void(std::FILE*)>& writer);
void write_file_atomic(const std::string& path, const std::string& contents);

// Removes the temporaries (`NAME.tmp.<pid>[.<n>]`) that writers killed before
// their rename left in `folder`: those whose process no longer exists. Returns
// how many went. Files of live processes (a concurrent writer) stay.
int remove_stale_temporaries(const std::string& folder);

// mkdir -p: creates `path` and its missing parents (mode 0755). Throws
// std::runtime_error naming the path when it does not end up a directory.
void make_directories(const std::string& path);

}  // namespace gc
