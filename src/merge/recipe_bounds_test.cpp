// Recipes come from anyone: their reading is bounded (core/json.h). These
// are the issue-10 cases through parse_recipe / read_recipe.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "core/fs.h"
#include "merge/recipe.h"
#include "testing/testing.h"

using namespace solar;
using solar::testing::error_of;

TEST(RecipeBounds, YamlAliasBombFailsFast) {
  std::string y = solar::testing::yaml_alias_bomb("merge_method: passthrough\n");
  auto t0 = std::chrono::steady_clock::now();
  std::string e = error_of([&] { merge::parse_recipe(y, "bomb.yaml", false); });
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 5.0);
  EXPECT_NE(e.find("bomb.yaml: line "), std::string::npos) << e;
  EXPECT_NE(e.find("expands past 16 MiB (YAML aliases"), std::string::npos) << e;
}

TEST(RecipeBounds, DeepNestingIsRefusedAndValuesAreNotDumped) {
  std::string deep = std::string(100000, '[') + std::string(100000, ']');
  std::string e = error_of([&] { merge::parse_recipe("{\"merge_method\": " + deep + "}", "r.json", true); });
  EXPECT_NE(e.find("r.json: nesting deeper than 128 levels"), std::string::npos) << e;
  e = error_of([&] { merge::parse_recipe("merge_method: " + deep + "\n", "r.yaml", false); });
  EXPECT_EQ(e.rfind("r.yaml: ", 0), 0u) << e.substr(0, 300);
  // Within the depth limit the bad value is shown in a few characters.
  std::string wide = "[1";
  for (int i = 0; i < 100000; ++i) wide += ", 1";
  wide += "]";
  e = error_of([&] { merge::parse_recipe("{\"merge_method\": " + wide + "}", "w.json", true); });
  EXPECT_NE(e.find("w.json: merge_method: expected a non-empty string, got array [1, 1, 1"), std::string::npos) << e;
  EXPECT_LT(e.size(), 150u) << e.size();
}

TEST(RecipeBounds, HugeFileIsRefusedWithoutReadingIt) {
  // A sparse 1 TB file: refused by its size, so not a byte of it is read.
  std::string d = solar::testing::temp_dir("recipe_huge");
  std::string f = d + "/r.yaml";
  std::ofstream(f) << "merge_method: linear\n";
  std::filesystem::resize_file(f, uint64_t(1) << 40);
  std::string e = error_of([&] { merge::read_recipe(f); });
  EXPECT_NE(e.find(f + ": larger than"), std::string::npos) << e;
  e = error_of([] { merge::read_recipe("/dev/zero"); });
  EXPECT_NE(e.find("/dev/zero: expected a regular file"), std::string::npos) << e;
  std::filesystem::remove_all(d);
}
