#include <gtest/gtest.h>

#include <chrono>
#include <fstream>

#include "core/json.h"
#include "testing/testing.h"

using namespace solar;
using solar::testing::error_of;

static std::string nested(size_t depth, const char* open, const char* close, const char* core = "1") {
  std::string s;
  for (size_t i = 0; i < depth; ++i) s += open;
  s += core;
  for (size_t i = 0; i < depth; ++i) s += close;
  return s;
}

TEST(Json, DepthIsBoundedBeforeParsing) {
  EXPECT_EQ(parse_json(nested(kMaxJsonDepth, "[", "]"), "a.json").dump().size(), 2 * kMaxJsonDepth + 1);
  std::string e = error_of([] { parse_json(nested(kMaxJsonDepth + 1, "[", "]"), "a.json"); });
  EXPECT_NE(e.find("a.json: nesting deeper than 128 levels at byte 128"), std::string::npos) << e;
  // 100,000 deep: refused without touching the stack (the parse, dump and
  // destructor of such a value would otherwise recurse 100,000 times).
  e = error_of([] { parse_json("{\"hidden_size\": " + nested(100000, "[", "]") + "}", "config.json"); });
  EXPECT_NE(e.find("config.json: nesting deeper than"), std::string::npos) << e;
  // Brackets inside strings (escaped quotes too) are not nesting.
  auto j = parse_json("{\"k\": \"" + nested(1000, "[", "{") + "\\\"[[[\"}", "b.json");
  EXPECT_EQ(j["k"].get<std::string>().size(), 2001 + 4);
}

TEST(Json, SyntaxErrorsNameTheSourceAndStayShort) {
  std::string e = error_of([] { parse_json("{\"a\": 1,}", "c.json"); });
  EXPECT_EQ(e.rfind("c.json: JSON syntax error: parse error at line 1", 0), 0u) << e;
  // An unterminated megabyte string: the library quotes the token it read.
  e = error_of([] { parse_json("{\"a\": \"" + std::string(1 << 20, 'x'), "d.json"); });
  EXPECT_NE(e.find("d.json: JSON syntax error"), std::string::npos);
  EXPECT_LT(e.size(), 300u) << e.size();
  e = error_of([] { parse_json("[1e99999]", "e.json"); });
  EXPECT_NE(e.find("e.json: JSON syntax error: number overflow"), std::string::npos) << e;
}

TEST(Json, ReadFileIsBounded) {
  std::string d = solar::testing::temp_dir("json_read");
  std::string f = d + "/big.json";
  std::ofstream(f) << "[" << std::string(1000, ' ') << "]";
  EXPECT_TRUE(read_json_file(f).is_array());
  std::string e = error_of([&] { read_json_file(f, 500); });
  EXPECT_NE(e.find(f + ": larger than 500 bytes"), std::string::npos) << e;
  // A device that never ends is not read at all.
  e = error_of([] { read_json_file("/dev/zero", 1000); });
  EXPECT_NE(e.find("/dev/zero: expected a regular file"), std::string::npos) << e;
}

TEST(Json, BriefIsTypePlusAShortPrefix) {
  EXPECT_EQ(json_brief(nlohmann::json(3.5)), "number 3.5");
  EXPECT_EQ(json_brief(nlohmann::json(nullptr)), "null");
  EXPECT_EQ(json_brief(nlohmann::json("abc")), "string \"abc\"");
  EXPECT_EQ(json_brief(nlohmann::json::parse("{\"a\": [1, 2]}")), "object {\"a\": [1, 2]}");
  // A long string and a deep array are cut, not dumped whole.
  std::string s = json_brief(nlohmann::json(std::string(100000, 'y')));
  EXPECT_EQ(s, "string \"" + std::string(59, 'y') + "…");
  auto deep = parse_json(nested(kMaxJsonDepth, "[", "]"), "x");
  EXPECT_EQ(json_brief(deep), "array " + std::string(60, '[') + "…");
  // Never cuts inside a UTF-8 character: "é" is 2 bytes.
  std::string u;
  for (int i = 0; i < 40; ++i) u += "é";
  EXPECT_EQ(json_brief(nlohmann::json(u)), "string \"" + u.substr(0, 58) + "…");
}

TEST(Yaml, TypesAndSyntaxErrors) {
  auto j = parse_yaml("a: 1\nb: 2.5\nc: true\nd: ~\ne: '7'\nf: [x, y]\n", "r.yaml");
  EXPECT_EQ(j.dump(), R"({"a":1,"b":2.5,"c":true,"d":null,"e":"7","f":["x","y"]})");
  std::string e = error_of([] { parse_yaml("a: [1, 2\nb: 3\n", "r.yaml"); });
  EXPECT_NE(e.find("r.yaml: line "), std::string::npos) << e;
  EXPECT_NE(e.find("YAML syntax error"), std::string::npos) << e;
  e = error_of([] { parse_yaml("? [a, b]\n: 1\n", "k.yaml"); });
  EXPECT_NE(e.find("k.yaml: line 1: expected a plain string as a mapping key"), std::string::npos) << e;
}

TEST(Yaml, AliasBombFailsFast) {
  std::string y = solar::testing::yaml_alias_bomb();
  auto t0 = std::chrono::steady_clock::now();
  std::string e = error_of([&] { parse_yaml(y, "bomb.yaml"); });
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_NE(e.find("bomb.yaml: line "), std::string::npos) << e;
  EXPECT_NE(e.find("expands past 16 MiB (YAML aliases"), std::string::npos) << e;
  EXPECT_LT(s, 5.0);
  // A few aliases, as recipes use them, are fine.
  EXPECT_EQ(parse_yaml("m: &m {model: a}\nmodels: [*m, *m]\n", "ok.yaml")["models"][1]["model"], "a");
}

TEST(Yaml, DeepNestingIsRefused) {
  for (const std::string& y : {nested(100000, "[", "]"), nested(100000, "{a: ", "}"), nested(kMaxJsonDepth + 1, "[", "]")}) {
    std::string e = error_of([&] { parse_yaml(y, "deep.yaml"); });
    EXPECT_EQ(e.rfind("deep.yaml: ", 0), 0u) << e;
    EXPECT_NE(e.find("nesting deeper than"), std::string::npos) << e;
  }
  std::string block;  // block style, 3,000 levels of indentation
  for (int i = 0; i < 3000; ++i) block += std::string(size_t(i), ' ') + "a:\n";
  std::string e = error_of([&] { parse_yaml(block, "block.yaml"); });
  EXPECT_EQ(e.rfind("block.yaml: line ", 0), 0u) << e.substr(0, 200);
  EXPECT_NE(e.find("nesting deeper than"), std::string::npos) << e;
}
