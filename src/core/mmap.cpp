#include "core/mmap.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"
#include "core/fs.h"

namespace solar {

std::shared_ptr<MappedFile> MappedFile::open(const std::string& path) {
  uint64_t size = 0;
  int fd = open_input(path, &size);  // regular files only: a FIFO would block, a device has no size
  std::shared_ptr<MappedFile> f(new MappedFile());
  f->path_ = path;
  f->size_ = size_t(size);
  if (f->size_ > 0) {
    void* p = mmap(nullptr, f->size_, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      fail(path, "", std::string("cannot mmap: ") + std::strerror(e));
    }
    f->data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
  return f;
}

MappedFile::~MappedFile() {
  if (data_) munmap(const_cast<uint8_t*>(data_), size_);
}

void MappedFile::advise_sequential() const {
  if (data_) madvise(const_cast<uint8_t*>(data_), size_, MADV_SEQUENTIAL);
}

void MappedFile::advise_dontneed(size_t off, size_t len) const {
  if (!data_) return;
  size_t page = size_t(sysconf(_SC_PAGESIZE));
  size_t start = off / page * page;
  if (start >= size_) return;
  len = std::min(len + (off - start), size_ - start);
  madvise(const_cast<uint8_t*>(data_) + start, len, MADV_DONTNEED);
}

void release_pages(const void* p, size_t n) {
#ifndef MADV_PAGEOUT
  constexpr int MADV_PAGEOUT = 21;  // Linux 5.4
#endif
  const uintptr_t page = uintptr_t(sysconf(_SC_PAGESIZE)), a = reinterpret_cast<uintptr_t>(p);
  const uintptr_t start = (a + page - 1) / page * page, end = (a + n) / page * page;
  if (start < end) madvise(reinterpret_cast<void*>(start), end - start, MADV_PAGEOUT);
}

}  // namespace solar
