// `solar quantize` end to end: the summary, usage errors (exit 2), refusals (exit 1).
#include <gtest/gtest.h>

#include <string>

#include "core/fs.h"
#include "formats/gguf.h"
#include "testing/models.h"
#include "testing/testing.h"

namespace solar::quantize {
namespace {

struct Fixture {
  std::string dir = testing::temp_dir("quantize_cli");
  std::string hf = dir + "/model", out = dir + "/model-q4_k_m.gguf";
  Fixture() {
    model::ModelConfig c = testing::small_config(256, 512, 64, false, 2);
    testing::write_random_model(hf, c, 3);
  }
};

TEST(QuantizeCli, WritesTheFileAndASummary) {
  Fixture f;
  std::string log;
  ASSERT_EQ(testing::run_solar("quantize -m " + f.hf + " -o " + f.out + " --type q4_k_m -q", &log), 0) << log;
  EXPECT_NE(log.find("(Q4_K_M)"), std::string::npos) << log;
  EXPECT_NE(log.find("bits per weight"), std::string::npos) << log;
  EXPECT_NE(log.find("F32 5, Q4_K"), std::string::npos) << log;  // 2 layers' norms + the final one
  EXPECT_EQ(formats::read_gguf(f.out).get("lm_head.weight").dtype, DType::Q6_K);
  // Again without --force: refused, the file kept.
  EXPECT_EQ(testing::run_solar("quantize -m " + f.hf + " -o " + f.out + " --type q8_0", &log), 1);
  EXPECT_NE(log.find("already exists (pass --force"), std::string::npos) << log;
  EXPECT_EQ(formats::read_gguf(f.out).get("lm_head.weight").dtype, DType::Q6_K);
  ASSERT_EQ(testing::run_solar("quantize -m " + f.hf + " --type q4_0 --dry-run", &log), 0) << log;
  EXPECT_NE(log.find("blk.0.attn_q.weight"), std::string::npos) << log;
  EXPECT_NE(log.find("would quantize"), std::string::npos) << log;
}

TEST(QuantizeCli, UsageErrorsExitTwo) {
  Fixture f;
  std::string log;
  EXPECT_EQ(testing::run_solar("quantize -m " + f.hf + " -o " + f.out, &log), 2);
  EXPECT_NE(log.find("--type"), std::string::npos) << log;
  EXPECT_EQ(testing::run_solar("quantize -m " + f.hf + " -o " + f.out + " --type q3_k_s", &log), 2);
  EXPECT_NE(log.find("expected q8_0, q4_0, q4_k_m or q6_k, got 'q3_k_s'"), std::string::npos) << log;
  EXPECT_EQ(testing::run_solar("quantize -m " + f.hf + " -o " + f.out + " --type q4_0 --output-tensor-type q9", &log), 2);
  EXPECT_EQ(testing::run_solar("quantize -m " + f.hf + " -o " + f.hf + "/x.gguf --type q4_0", &log), 2);  // inside the input
  EXPECT_FALSE(path_exists(f.out));
}

}  // namespace
}  // namespace solar::quantize
