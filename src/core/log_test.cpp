#include "core/log.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <thread>
#include <vector>

#include "core/error.h"
#include "testing/testing.h"

namespace solar {
namespace {

using testing::SinkGuard;

TEST(Log, LevelFiltersAndSinkReceivesFields) {
  SinkGuard g;
  std::vector<std::string> got;
  set_log_sink([&](const LogRecord& r) { got.push_back(std::string(r.source) + "|" + std::string(r.message) + "|" + r.fields.dump()); });
  set_log_level(LogLevel::Warn);
  log_info("train", "hidden");
  log_warn("train", "shown", {{"step", 3}});
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], "train|shown|{\"step\":3}");
  set_log_level(LogLevel::Off);
  log(LogLevel::Error, "x", "dropped");
  EXPECT_EQ(got.size(), 1u);
}

TEST(Log, EmptySinkDropsEverything) {
  SinkGuard g;
  log_info("x", "nobody hears this");  // must not crash
}

TEST(Log, JsonSinkWritesOneObjectPerLine) {
  SinkGuard g;
  FILE* f = std::tmpfile();
  set_log_sink(json_log_sink(f));
  log_info("pipeline", "step \"A\" done", {{"seconds", 1.5}});
  log_warn("pipeline", "bad utf-8 \xff kept");
  std::rewind(f);
  char buf[512];
  std::vector<nlohmann::json> lines;
  while (std::fgets(buf, sizeof buf, f)) lines.push_back(nlohmann::json::parse(buf));
  std::fclose(f);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["level"], "info");
  EXPECT_EQ(lines[0]["message"], "step \"A\" done");
  EXPECT_EQ(lines[0]["seconds"], 1.5);
  EXPECT_EQ(lines[1]["level"], "warn");
}

TEST(Log, PlainSinkNamesSourceAndSeverity) {
  SinkGuard g;
  FILE* f = std::tmpfile();
  set_log_sink(plain_log_sink(f));
  log_warn("chat", "context full");
  std::rewind(f);
  char buf[256] = {};
  ASSERT_NE(std::fgets(buf, sizeof buf, f), nullptr);
  std::fclose(f);
  EXPECT_STREQ(buf, "solar chat: warning: context full\n");
}

TEST(Log, ConcurrentRecordsArriveWhole) {
  SinkGuard g;
  int count = 0;  // the sink runs under the log's lock: no race here
  set_log_sink([&](const LogRecord&) { ++count; });
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([] {
      for (int i = 0; i < 1000; ++i) log_info("t", "x");
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(count, 4000);
}

TEST(Log, ParseLevelNamesTheFlag) {
  EXPECT_EQ(parse_log_level("debug"), LogLevel::Debug);
  try {
    parse_log_level("loud", "--log-level");
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("--log-level"), std::string::npos);
  }
}

}  // namespace
}  // namespace solar
