#include "core/hugepages.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <numeric>
#include <vector>

namespace solar {
namespace {

TEST(HugePages, LargeBlocksAre2MiBAlignedAndHoldTheirBytes) {
  for (size_t n : {size_t(1), size_t(4095), (size_t(2) << 20) - 1, size_t(2) << 20, (size_t(5) << 20) + 123}) {
    std::vector<uint8_t, HugePageAllocator<uint8_t>> v(n);
    ASSERT_EQ(v.size(), n);
    if (n >= (size_t(2) << 20)) {
      EXPECT_EQ(reinterpret_cast<uintptr_t>(v.data()) % (size_t(2) << 20), 0u) << n;
    }
    for (size_t i = 0; i < n; ++i) v[i] = uint8_t(i * 7 + 3);
    size_t bad = 0;
    for (size_t i = 0; i < n; ++i) bad += v[i] != uint8_t(i * 7 + 3);
    EXPECT_EQ(bad, 0u) << n;
  }
}

TEST(HugePages, VectorOperationsKeepContents) {
  std::vector<uint8_t, HugePageAllocator<uint8_t>> v;
  v.assign(size_t(3) << 20, 0);
  std::iota(v.begin(), v.begin() + 256, uint8_t(0));
  auto w = v;  // copy through the allocator
  w.resize(w.size() + 1000, 9);
  EXPECT_TRUE(std::equal(v.begin(), v.end(), w.begin()));
  EXPECT_EQ(w.back(), 9);
  EXPECT_EQ(w[255], 255);
}

TEST(HugePages, ZeroBytesIsAValidBlock) {
  void* p = huge_alloc(0);
  EXPECT_NE(p, nullptr);
  huge_free(p);
  huge_free(nullptr);
}

}  // namespace
}  // namespace solar
