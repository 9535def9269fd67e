// solar/core/fs.h — files that are never half-written.
//
// Every output (checkpoint, shard, report) goes to a temporary name in the
// same directory, is fsync'ed, then renamed over the final name. Folders are
// built as "<out>.tmp-<pid>" and renamed into place when complete, so a
// crash never leaves a folder that looks complete.
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace solar {

// A file written to "<path>.tmp-<pid>" and renamed to path by commit().
// Destroyed without commit(): the temporary is removed.
class AtomicFile {
 public:
  explicit AtomicFile(std::string path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t n);  // throws solar::Error on short write (disk full)
  void write(std::string_view s) { write(s.data(), s.size()); }
  uint64_t written() const { return written_; }
  void commit();  // flush + fsync + rename

 private:
  std::string path_, tmp_;
  FILE* f_ = nullptr;
  uint64_t written_ = 0;
};

void write_file_atomic(const std::string& path, std::string_view content);
std::string read_file(const std::string& path);  // throws naming path
bool path_exists(const std::string& path);
bool is_dir(const std::string& path);
void make_dirs(const std::string& path);
void remove_all(const std::string& path);
// Renames a finished temporary folder into place (replacing `dst` if it exists
// and replace is true), fsyncing the parent. Throws on failure.
void commit_dir(const std::string& tmp, const std::string& dst, bool replace);
// Free bytes on the filesystem holding path (or its nearest existing parent).
uint64_t free_disk_bytes(const std::string& path);
void fsync_dir(const std::string& dir);
std::string join_path(const std::string& a, const std::string& b);
std::string parent_dir(const std::string& path);
std::string base_name(const std::string& path);

}  // namespace solar

namespace solar {
// The first n bytes of a file (fewer if it is shorter); throws naming path.
std::string read_file_prefix(const std::string& path, size_t n);
}  // namespace solar
