// solar/core/fs.h — files that are never half-written.
//
// Every output (checkpoint, shard, report) goes to a temporary name in the
// same directory, is fsync'ed, then renamed over the final name. Folders are
// built as "<out>.tmp-<pid>" and renamed into place when complete, so a
// crash never leaves a folder that looks complete. A process killed midway
// leaves "<out>.tmp-<pid>" (and, while replacing, "<out>.old-<pid>"); the next
// writer of the same output removes those whose process is gone.
//
// Inputs are opened through open_input(): a path a user hands the program may
// name a FIFO (opening it blocks until a writer comes), a device (/dev/zero
// never ends) or a folder (reads as empty). Only regular files are accepted,
// and what is read whole is bounded.
#pragma once
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

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

// Opens a regular file for reading (O_CLOEXEC); *size gets its size. Never
// blocks: a FIFO, socket, device or folder is refused, naming path and what
// it is ("expected a regular file, got a FIFO"). Throws naming path.
int open_input(const std::string& path, uint64_t* size);
// Throws unless path is a regular file (or a symlink to one), like open_input.
void check_input_file(const std::string& path);
// Files read whole (configs, recipes, prompts, tokenizers, trainer state) are
// small; a larger one is refused before it is read.
constexpr uint64_t kMaxReadBytes = uint64_t(1) << 30;
// The whole of a regular file of at most max_bytes; throws naming path.
std::string read_file(const std::string& path, uint64_t max_bytes = kMaxReadBytes);
bool path_exists(const std::string& path);
bool is_dir(const std::string& path);
void make_dirs(const std::string& path);
void remove_all(const std::string& path);
// Renames a finished temporary folder into place (replacing `dst` if it exists
// and replace is true), fsyncing the parent. Throws on failure.
void commit_dir(const std::string& tmp, const std::string& dst, bool replace);

// Throws naming path when it exists and is neither a regular file nor a folder:
// renaming an output over /dev/full or a FIFO (run as root, with --force)
// would replace the device node or pipe itself.
void check_output_target(const std::string& path);
// "<path>.tmp-<pid>" of this process, after check_output_target(path) and
// removing the leftovers of dead processes beside path (remove_dead_leftovers). Every atomic writer uses it.
std::string temp_path_for(const std::string& path);
// Removes the entries of dir named "<stem>.tmp-<pid>" or "<stem>.old-<pid>"
// with is_ours(stem) whose process no longer exists (kill(pid, 0) fails with
// ESRCH): what an interrupted writer left. Returns the names removed.
std::vector<std::string> remove_dead_leftovers(const std::string& dir, const std::function<bool(const std::string&)>& is_ours);
// Whether a and b name the same file or folder, or one lies inside the other
// (after resolving symlinks and "..": for refusing an output that would
// replace or sit inside its own input).
bool paths_overlap(const std::string& a, const std::string& b);
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
