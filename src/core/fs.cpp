#include "core/fs.h"

#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace fs = std::filesystem;

namespace solar {

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  tmp_ = path_ + ".tmp-" + std::to_string(getpid());
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

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, "", std::string("cannot open: ") + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
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
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, "", std::string("cannot open: ") + std::strerror(errno));
  std::string s(n, '\0');
  in.read(s.data(), std::streamsize(n));
  s.resize(size_t(in.gcount()));
  return s;
}
}  // namespace solar
