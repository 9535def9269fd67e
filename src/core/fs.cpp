#include "core/fs.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/error.h"

namespace fs = std::filesystem;

namespace solar {

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  tmp_ = temp_path_for(path_);
  f_ = std::fopen(tmp_.c_str(), "wb");
  if (!f_) fail(path_, "", std::string("cannot create: ") + std::strerror(errno));
}

AtomicFile::~AtomicFile() {
  if (f_) {
    std::fclose(f_);
    std::remove(tmp_.c_str());
  }
}

void AtomicFile::write(const void* data, size_t n) {
  if (n && std::fwrite(data, 1, n, f_) != n)
    fail(path_, "", std::string("write failed (disk full?): ") + std::strerror(errno));
  written_ += n;
}

void AtomicFile::commit() {
  if (std::fflush(f_) != 0 || fsync(fileno(f_)) != 0)
    fail(path_, "", std::string("flush failed (disk full?): ") + std::strerror(errno));
  std::fclose(f_);
  f_ = nullptr;
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
    std::remove(tmp_.c_str());
    fail(path_, "", std::string("rename failed: ") + std::strerror(errno));
  }
}

void write_file_atomic(const std::string& path, std::string_view content) {
  AtomicFile f(path);
  f.write(content);
  f.commit();
}

namespace {

const char* file_kind(mode_t m) {
  if (S_ISDIR(m)) return "a folder";
  if (S_ISFIFO(m)) return "a FIFO (named pipe)";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  if (S_ISSOCK(m)) return "a socket";
  return "not a regular file";
}

[[noreturn]] void fail_errno(const std::string& path, const char* what) {
  fail(path, "", std::string(what) + ": " + std::strerror(errno));
}

}  // namespace

void check_input_file(const std::string& path) {
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) fail_errno(path, "cannot open");
  if (!S_ISREG(st.st_mode)) fail(path, "", std::string("expected a regular file, got ") + file_kind(st.st_mode));
}

int open_input(const std::string& path, uint64_t* size) {
  check_input_file(path);  // refuses a FIFO before open() could block on it
  // O_NONBLOCK too: the path may have become a FIFO since stat().
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) fail_errno(path, "cannot open");
  struct stat st{};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(path, "", std::string("expected a regular file, got ") + file_kind(st.st_mode));
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  *size = uint64_t(st.st_size);
  return fd;
}

namespace {
// Up to max bytes of fd (closed here); throws naming path on a read error.
std::string read_fd(int fd, const std::string& path, uint64_t max, uint64_t expect = 0) {
  std::string s;
  s.reserve(size_t(std::min(expect, max)));
  char buf[1 << 16];
  while (s.size() < max) {
    ssize_t n = ::read(fd, buf, size_t(std::min<uint64_t>(sizeof buf, max - s.size())));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      ::close(fd);
      errno = e;
      fail_errno(path, "read failed");
    }
    if (n == 0) break;
    s.append(buf, size_t(n));
  }
  ::close(fd);
  return s;
}
}  // namespace

std::string read_file(const std::string& path, uint64_t max_bytes) {
  uint64_t size = 0;
  int fd = open_input(path, &size);
  auto too_big = [&](uint64_t got) {
    fail(path, "", "expected at most " + std::to_string(max_bytes) + " bytes (the file is read whole), got " +
                       std::to_string(got) + (got > size ? "+" : ""));
  };
  if (size > max_bytes) {
    ::close(fd);
    too_big(size);
  }
  // One byte beyond the bound: a file that grows (or reports size 0, as /proc does) is still caught.
  std::string s = read_fd(fd, path, max_bytes == UINT64_MAX ? max_bytes : max_bytes + 1, size);
  if (s.size() > max_bytes) too_big(s.size());
  return s;
}

bool path_exists(const std::string& path) {
  std::error_code ec;
  return fs::exists(path, ec);
}
bool is_dir(const std::string& path) {
  std::error_code ec;
  return fs::is_directory(path, ec);
}
void make_dirs(const std::string& path) {
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec) fail(path, "", "cannot create folder: " + ec.message());
}
void remove_all(const std::string& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
}

void fsync_dir(const std::string& dir) {
  int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    fsync(fd);
    ::close(fd);
  }
}

void commit_dir(const std::string& tmp, const std::string& dst, bool replace) {
  std::error_code ec;
  std::string old;
  check_output_target(dst);
  if (fs::exists(dst, ec)) {
    if (!replace) fail(dst, "", "already exists (use --force to replace)");
    old = dst + ".old-" + std::to_string(getpid());
    fs::rename(dst, old, ec);
    if (ec) fail(dst, "", "cannot move old folder aside: " + ec.message());
  }
  fs::rename(tmp, dst, ec);
  if (ec) fail(dst, "", "cannot rename finished folder into place: " + ec.message());
  fsync_dir(parent_dir(dst));
  if (!old.empty()) fs::remove_all(old, ec);
}

// The PID is checked on this machine only: two hosts must not write one output
// on a shared filesystem at the same time.
std::vector<std::string> remove_dead_leftovers(const std::string& dir,
                                               const std::function<bool(const std::string&)>& is_ours) {
  std::vector<std::string> removed;
  std::error_code ec;
  for (auto& e : fs::directory_iterator(dir.empty() ? "." : dir, ec)) {
    const std::string n = e.path().filename().string();
    size_t at = std::max(n.rfind(".tmp-") == std::string::npos ? 0 : n.rfind(".tmp-") + 1,
                         n.rfind(".old-") == std::string::npos ? 0 : n.rfind(".old-") + 1);
    if (at == 0) continue;
    const std::string digits = n.substr(at + 4);
    // Linux PIDs are below 2^22: anything else is not a name we wrote.
    if (digits.empty() || digits.size() > 7 || !std::all_of(digits.begin(), digits.end(), ::isdigit)) continue;
    const long pid = std::stol(digits);
    if (pid <= 0 || pid > (1 << 22) || pid == long(getpid()) || !is_ours(n.substr(0, at - 1))) continue;
    if (kill(pid_t(pid), 0) == 0 || errno != ESRCH) continue;  // alive (or not ours to signal): in use
    fs::remove_all(e.path(), ec);
    if (!ec) removed.push_back(n);
  }
  return removed;
}

void check_output_target(const std::string& path) {
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) return;  // absent (or unreadable: creating it will say why)
  if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
    fail(path, "", std::string("expected an output path that is absent, a regular file or a folder, got ") +
                       file_kind(st.st_mode) + " (it is never replaced, even with --force)");
}

std::string temp_path_for(const std::string& path) {
  check_output_target(path);
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();  // "out/" must not put the temporary inside out
  const std::string base = base_name(p);
  remove_dead_leftovers(parent_dir(p), [&](const std::string& stem) { return stem == base; });
  return p + ".tmp-" + std::to_string(getpid());
}

bool paths_overlap(const std::string& a, const std::string& b) {
  std::error_code ec;
  fs::path x = fs::weakly_canonical(fs::absolute(a), ec), y = fs::weakly_canonical(fs::absolute(b), ec);
  if (ec) return false;
  auto under = [](const fs::path& in, const fs::path& outer) {
    auto o = std::mismatch(in.begin(), in.end(), outer.begin(), outer.end()).second;
    return o == outer.end() || (std::next(o) == outer.end() && o->empty());  // "dir/" ends in an empty part
  };
  return under(x, y) || under(y, x);
}

uint64_t free_disk_bytes(const std::string& path) {
  fs::path p = fs::absolute(path);
  std::error_code ec;
  while (!p.empty() && !fs::exists(p, ec)) p = p.parent_path();
  struct statvfs s{};
  if (statvfs(p.empty() ? "." : p.c_str(), &s) != 0) return UINT64_MAX;
  return uint64_t(s.f_bavail) * s.f_frsize;
}

std::string join_path(const std::string& a, const std::string& b) {
  return (fs::path(a) / b).string();
}
std::string parent_dir(const std::string& path) {
  std::string p = fs::path(path).parent_path().string();
  return p.empty() ? "." : p;
}
std::string base_name(const std::string& path) { return fs::path(path).filename().string(); }

}  // namespace solar

namespace solar {
std::string read_file_prefix(const std::string& path, size_t n) {
  uint64_t size = 0;
  return read_fd(open_input(path, &size), path, n);
}
}  // namespace solar
