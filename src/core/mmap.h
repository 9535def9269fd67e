// solar/core/mmap.h — read-only memory-mapped files.
//
// Checkpoints are never loaded whole: readers map the file and hand out
// pointers into it (TensorView). Keep the shared_ptr alive as long as views.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace solar {

class MappedFile {
 public:
  // Throws solar::Error "<path>: cannot open: <strerror>" on failure, and
  // refuses what is not a regular file (core/fs.h open_input).
  static std::shared_ptr<MappedFile> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // Hints the kernel to read ahead / drop pages (streaming tools use both).
  void advise_sequential() const;
  void advise_dontneed(size_t off, size_t len) const;

 private:
  MappedFile() = default;
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Asks the kernel to reclaim the whole pages inside [p, p + n) now
// (MADV_PAGEOUT): pages of a mapped file return to the page cache with their
// contents kept (read back on the next touch), so a process that copied what
// it needs stops holding them; anonymous memory stays as it is where there
// is no swap. Never changes what the memory reads. A no-op where unsupported.
void release_pages(const void* p, size_t n);

}  // namespace solar
