#include "core/hugepages.h"

#include <sys/mman.h>

#include <cstdlib>
#include <cstring>

namespace solar {

namespace {
constexpr size_t kHuge = size_t(2) << 20;

bool advise() {
  static const bool on = [] {
    const char* v = std::getenv("SOLAR_HUGEPAGES");
    return !(v && std::strcmp(v, "0") == 0);
  }();
  return on;
}
}  // namespace

void* huge_alloc(size_t bytes) {
  if (bytes == 0) bytes = 1;
  if (bytes < kHuge) {
    if (void* p = std::malloc(bytes)) return p;
    throw std::bad_alloc();
  }
  // Not rounded up to 2 MiB: a partial last 2 MiB stays on small pages, so
  // no block holds more memory than it asked for.
  // posix_memalign: C11's aligned_alloc wants a size that is a multiple of
  // the alignment (ASan enforces it).
  void* p = nullptr;
  if (posix_memalign(&p, kHuge, bytes) != 0) throw std::bad_alloc();
  // Before the first touch, so the faults themselves can map 2 MiB pages.
  if (advise()) madvise(p, bytes, MADV_HUGEPAGE);
  return p;
}

void huge_free(void* p) noexcept { std::free(p); }

}  // namespace solar
