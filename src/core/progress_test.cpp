#include "core/progress.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <vector>

using solar::Progress;

namespace {

std::vector<std::string> lines_of(FILE* f) {
  std::fflush(f);
  std::rewind(f);
  std::vector<std::string> v;
  char b[512];
  while (std::fgets(b, sizeof b, f)) v.emplace_back(b);
  return v;
}

}  // namespace

// A run resumed at step 90 whose first step pays 7 s of one-time warm-up
// (oneDNN JIT, page faults), then runs at 1000 tok/s: the rate and ETA must
// be those of the steady work, not 3000 tok / 10 s.
TEST(Progress, RateAndEtaCountFromTheFirstUpdate) {
  FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  double now = 0;
  Progress bar("train", 100, "tok", f, 1);
  bar.set_clock([&] { return now; });
  now = 8, bar.update(91, 1000);
  now = 9, bar.update(92, 2000);
  now = 10, bar.update(93, 3000);
  auto l = lines_of(f);
  std::fclose(f);
  ASSERT_EQ(l.size(), 3u);
  EXPECT_EQ(l[0].find("tok/s"), std::string::npos) << l[0];  // one step: nothing steady to measure yet
  EXPECT_NE(l[0].find("ETA ?"), std::string::npos) << l[0];
  EXPECT_NE(l[2].find("93/100"), std::string::npos) << l[2];
  EXPECT_NE(l[2].find("| 1.0k tok/s |"), std::string::npos) << l[2];
  EXPECT_NE(l[2].find("ETA 7s"), std::string::npos) << l[2];  // 7 steps left at 1 s each
}

// One update for the whole job (a one-file tokenize): its average rate.
TEST(Progress, SingleUpdateShowsTheAverage) {
  FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  double now = 0;
  Progress bar("tokenize", 5000, "B", f, 10);
  bar.set_clock([&] { return now; });
  now = 2, bar.update(5000, 5000);
  bar.finish(5000);
  auto l = lines_of(f);
  std::fclose(f);
  ASSERT_EQ(l.size(), 1u);
  EXPECT_NE(l[0].find("| 2.5k B/s | 2s"), std::string::npos) << l[0];
}

TEST(Progress, HumanAndDuration) {
  EXPECT_EQ(Progress::human(950), "950");
  EXPECT_EQ(Progress::human(3040), "3.0k");
  EXPECT_EQ(Progress::duration(125), "2m05s");
  EXPECT_EQ(Progress::duration(-1), "?");
}
