// solar/core/hugepages.h — memory for large arrays streamed end to end.
//
// Decode reads every weight panel once per token, 8 panels side by side. On
// 4 KiB pages that is a TLB miss (a page walk) every 4 KiB of every stream;
// on 2 MiB pages one per 2 MiB (README, "Zen 4 again": BF16 decode 24.2 →
// 29.2 tok/s in back-to-back runs on a noisy VM). Blocks of 2 MiB and more are
// aligned to 2 MiB and offered to the kernel's transparent huge pages
// (madvise MADV_HUGEPAGE, which Debian's default "madvise" mode honours);
// smaller blocks come from malloc. The kernel may still hand out small pages
// (fragmented memory, THP "never"): the contents are the same either way.
// SOLAR_HUGEPAGES=0 turns the advice off (for A/B measurements).
#pragma once
#include <cstddef>
#include <new>

namespace solar {

void* huge_alloc(size_t bytes);  // throws std::bad_alloc
void huge_free(void* p) noexcept;

template <class T>
struct HugePageAllocator {
  using value_type = T;
  HugePageAllocator() = default;
  template <class U>
  HugePageAllocator(const HugePageAllocator<U>&) noexcept {}
  T* allocate(size_t n) { return static_cast<T*>(huge_alloc(n * sizeof(T))); }
  void deallocate(T* p, size_t) noexcept { huge_free(p); }
  template <class U>
  bool operator==(const HugePageAllocator<U>&) const noexcept { return true; }
};

}  // namespace solar
