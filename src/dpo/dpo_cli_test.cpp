// `solar dpo` end to end: a tiny random model learns a preference, resumes
// with the cached reference log-probs, and refuses a cache of another model.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/fs.h"
#include "testing/models.h"
#include "testing/testing.h"

namespace solar::dpo {
namespace {

const std::string kTok = std::string(SOLAR_SHARED_DATA) + "/models/stories260K/tok512.bin";

TEST(DpoCli, AccuracyRisesResumesAndRefusesOtherReference) {
  if (!path_exists(kTok)) GTEST_SKIP() << kTok << " is absent";
  const std::string d = testing::temp_dir("dpo_cli");
  std::string out;
  const std::string init = "init --preset tiny --outtype f32 --tokenizer " + kTok + " --force -o ";
  ASSERT_EQ(testing::run_solar(init + d + "/m", &out), 0) << out;
  ASSERT_EQ(testing::run_solar(init + d + "/other -s 99", &out), 0) << out;
  {
    std::ofstream f(d + "/pairs.jsonl");
    const char* names[] = {"Tom", "Lily", "Sam", "Anna", "Ben", "Mia"};
    for (int i = 0; i < 24; ++i)
      f << nlohmann::json{{"prompt", std::string("Once upon a time, ") + names[i % 6] + " went to the"},
                          {"chosen", " park and played."},
                          {"rejected", " dark cave alone."}}
               .dump()
        << "\n";
  }
  const std::string run = "dpo -m " + d + "/m --data " + d + "/pairs.jsonl -o " + d +
                          "/run --lr 1e-3 --eval-pairs 4 --max-length 48 -b 2 -q --save-every 4 --eval-every 0 ";
  ASSERT_EQ(testing::run_solar(run + "--steps 8", &out), 0) << out;
  EXPECT_NE(out.find("reference log-probs of 24 pairs"), std::string::npos) << out;
  std::vector<nlohmann::json> steps;
  nlohmann::json eval;
  std::ifstream m(d + "/run/metrics.jsonl");
  for (std::string line; std::getline(m, line);) {
    auto j = nlohmann::json::parse(line);
    if (j.contains("rewards/accuracies")) steps.push_back(j);
    if (j.contains("eval_rewards/accuracies")) eval = j;
  }
  ASSERT_EQ(steps.size(), 8u);
  for (const char* k : {"loss", "rewards/chosen", "rewards/rejected", "rewards/margins", "logps/chosen", "logps/rejected"})
    EXPECT_TRUE(steps.back().contains(k)) << k;
  // Step 1: policy = reference, every margin 0, no pair counted right; loss log 2.
  EXPECT_NEAR(steps[0]["loss"].get<double>(), std::log(2.0), 1e-6);
  EXPECT_EQ(steps[0]["rewards/accuracies"].get<double>(), 0.0);
  EXPECT_EQ(steps.back()["rewards/accuracies"].get<double>(), 1.0);
  EXPECT_GT(steps.back()["rewards/margins"].get<double>(), 0.1);
  EXPECT_LT(steps.back()["loss"].get<double>(), 0.6);
  EXPECT_EQ(eval["eval_rewards/accuracies"].get<double>(), 1.0) << eval.dump();
  EXPECT_TRUE(path_exists(d + "/run/final/config.json"));

  // Resume: the cache is reused (no reference pass), training continues.
  ASSERT_EQ(testing::run_solar(run + "--steps 10 --resume", &out), 0) << out;
  EXPECT_NE(out.find("reusing the reference log-probs"), std::string::npos) << out;
  EXPECT_EQ(out.find("reference log-probs of 24 pairs"), std::string::npos) << out;

  // Another reference model against this cache: refused, naming the cache.
  EXPECT_NE(testing::run_solar(run + "--steps 12 --resume --ref-model " + d + "/other", &out), 0);
  EXPECT_NE(out.find("ref_logps.json"), std::string::npos) << out;
  EXPECT_NE(out.find("another reference model"), std::string::npos) << out;
  remove_all(d);
}

}  // namespace
}  // namespace solar::dpo
