// The tiny Solar recipe end to end at toy size: every step runs, the report
// has all five arms with finite losses, and a rerun resumes (skips) instead
// of training again.
#include "pipeline/pipeline.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/fs.h"
#include "core/testing.h"

namespace fs = std::filesystem;
using namespace solar;

TEST(Pipeline, ToySizeEndToEndAndResume) {
  std::string shakespeare = std::string(SOLAR_SHARED_DATA) + "/corpus/tinyshakespeare.txt";
  if (!path_exists(shakespeare)) GTEST_SKIP() << "shared data not found: " << shakespeare;
  std::string root = solar::test_util::temp_dir("pipeline_test");
  fs::create_directories(root + "/corpus");
  // A corpus of 40 small documents (one per file, as the Python docs are).
  std::string text = read_file(shakespeare).substr(0, 240000);
  for (int i = 0; i < 40; ++i)
    write_file_atomic(root + "/corpus/doc" + std::to_string(i) + ".txt", text.substr(size_t(i) * 6000, 6000));
  std::string cmd = std::string(SOLAR_BIN) + " pipeline --corpus " + root + "/corpus -o " + root +
                    "/out --vocab-size 320 --layers 3 --drop 1 --hidden-size 32 --intermediate-size 64 --heads 4 "
                    "--kv-heads 2 --seq-len 32 -b 4 --base-steps 6 --dus-steps 4 --eval-every 2 --eval-windows 4 -t 1";
  ASSERT_EQ(std::system((cmd + " > " + root + "/log1.txt 2>&1").c_str()), 0) << read_file(root + "/log1.txt");
  auto results = nlohmann::json::parse(read_file(root + "/out/results.json"));
  ASSERT_EQ(results.size(), 5u);
  for (const auto& r : results) {
    EXPECT_TRUE(std::isfinite(r["heldout_loss"].get<double>())) << r.dump();
    EXPECT_GT(r["heldout_loss"].get<double>(), 0.0);
  }
  // Equal compute: the three final arms report the same training FLOPs (±1 step of rounding).
  double dus = results[2]["train_tflop"], longer = results[3]["train_tflop"], scratch = results[4]["train_tflop"];
  EXPECT_NEAR(longer / dus, 1.0, 0.2);
  EXPECT_NEAR(scratch / dus, 1.0, 0.2);
  EXPECT_EQ(results[1]["layers"], 4);  // 2·(3−1)
  std::string md = read_file(root + "/out/report.md"), html = read_file(root + "/out/report.html");
  EXPECT_NE(md.find("DUS + continued pretraining"), std::string::npos);
  EXPECT_NE(html.find("<table"), std::string::npos);
  EXPECT_NE(read_file(root + "/out/val_loss.svg").find("<polyline"), std::string::npos);
  // A rerun finds every step done and only re-evaluates.
  ASSERT_EQ(std::system((cmd + " > " + root + "/log2.txt 2>&1").c_str()), 0) << read_file(root + "/log2.txt");
  EXPECT_EQ(read_file(root + "/log2.txt").find("== pipeline: phase A"), std::string::npos);
  EXPECT_EQ(nlohmann::json::parse(read_file(root + "/out/results.json")), results);
  fs::remove_all(root);
}
