#include "dpo/dpo.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <cmath>
#include <fstream>
#include <random>

#include "core/fs.h"
#include "testing/models.h"
#include "testing/testing.h"
#include "testing/tokenizers.h"
#include "train/net.h"

namespace solar::dpo {
namespace {

using testing::ascii_tokenizer;
using testing::error_of;
using testing::temp_dir;

const LossType kAll[] = {LossType::Sigmoid, LossType::IPO, LossType::Hinge, LossType::Robust};

// Golden values from torch (float64) with TRL 1.16's formulas, for
// πc = −10, πr = −12.5, refc = −10.8, refr = −11.9 (h = 1.4), β = 0.1.
TEST(DpoLoss, MatchesTorchGoldens) {
  auto at = [](LossType t, double eps) {
    return pair_loss({t, 0.1, eps}, -10.0, -12.5, -10.8, -11.9).loss;
  };
  EXPECT_NEAR(at(LossType::Sigmoid, 0.0), 0.6255951823371514, 1e-14);
  EXPECT_NEAR(at(LossType::Sigmoid, 0.1), 0.6255951823371514, 1e-14) << "TRL 1.16 smooths robust only";
  EXPECT_NEAR(at(LossType::Robust, 0.0), 0.6255951823371514, 1e-14);
  EXPECT_NEAR(at(LossType::Robust, 0.1), 0.6080951823371514, 1e-14);
  EXPECT_NEAR(at(LossType::Hinge, 0.0), 0.86, 1e-14);
  EXPECT_NEAR(at(LossType::IPO, 0.0), 12.959999999999997, 1e-12);
  // IPO divides each log-prob by its completion length (5 and 8 tokens).
  EXPECT_NEAR(summed_pair_loss({LossType::IPO, 0.1, 0}, -10.0, -12.5, -10.8, -11.9, 5, 8).loss, 22.705225, 1e-9);
  EXPECT_EQ(parse_loss_type("hinge"), LossType::Hinge);
  EXPECT_NE(error_of([] { parse_loss_type("kto"); }).find("--loss-type"), std::string::npos);
}

// Each pair loss through a tiny model (f64): the chain rule through
// forward_backward_f64's dlogp path against central differences of the loss.
TEST(DpoLoss, GradCheckThroughTinyModel) {
  model::ModelConfig c = testing::small_config(16, 32, 20, false, 1);
  train::Net m = train::Net::init(c, 5);
  std::vector<std::vector<double>> w;
  std::mt19937_64 rng(3);
  std::normal_distribution<double> nd(0.0, 0.3);
  for (const auto& p : m.params()) {
    w.emplace_back(p.w.size());
    for (double& x : w.back()) x = p.shape.size() == 1 ? 1.0 + nd(rng) : nd(rng);
  }
  // Row 0 = prompt + chosen, row 1 = prompt + rejected: 2 prompt tokens, then
  // 3 and 4 completion tokens (weights on completion targets only).
  const int B = 2, T = 6;
  const std::vector<int32_t> tok = {1, 7, 3, 9, 4, 2, 0, 1, 7, 12, 5, 11, 2, 0};
  const std::vector<double> wt = {0, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 0};
  const double nc = 3, nr = 4;
  auto logps = [&](const std::vector<std::vector<double>>& ww) {
    double e0[2] = {1, 0}, e1[2] = {0, 1};
    return std::pair{train::forward_backward_f64(c, ww, nullptr, tok.data(), B, T, wt.data(), e0),
                     train::forward_backward_f64(c, ww, nullptr, tok.data(), B, T, wt.data(), e1)};
  };
  const auto [pc0, pr0] = logps(w);
  for (LossType t : kAll) {
    // A reference that puts h near where each loss has slope (hinge: below its kink).
    LossConfig lc{t, 0.5, t == LossType::Robust ? 0.2 : 0.0};
    const double rc = pc0 + 0.3, rr = pr0 - 0.1;
    auto loss = [&](const std::vector<std::vector<double>>& ww) {
      auto [pc, pr] = logps(ww);
      return summed_pair_loss(lc, pc, pr, rc, rr, nc, nr).loss;
    };
    PairLoss l = summed_pair_loss(lc, pc0, pr0, rc, rr, nc, nr);
    ASSERT_NE(l.d_chosen, 0.0) << loss_type_name(t);
    const double dl[2] = {l.d_chosen, l.d_rejected};
    std::vector<std::vector<double>> g;
    train::forward_backward_f64(c, w, &g, tok.data(), B, T, wt.data(), dl);
    double worst = 0;
    int checked = 0;
    for (size_t k = 0; k < w.size(); ++k) {
      const size_t stride = std::max<size_t>(1, w[k].size() / 6);
      for (size_t i = k % stride; i < w[k].size(); i += stride, ++checked) {
        const double x0 = w[k][i], eps = 1e-6;
        w[k][i] = x0 + eps;
        const double lp = loss(w);
        w[k][i] = x0 - eps;
        const double lm = loss(w);
        w[k][i] = x0;
        const double num = (lp - lm) / (2 * eps);
        worst = std::max(worst, std::abs(num - g[k][i]) / std::max({std::abs(num), std::abs(g[k][i]), 1e-3}));
      }
    }
    EXPECT_GT(checked, 40);
    EXPECT_LT(worst, 1e-5) << loss_type_name(t);
  }
}

std::string write(const std::string& dir, const std::string& name, const std::string& text) {
  const std::string p = join_path(dir, name);
  std::ofstream(p) << text;
  return p;
}

TEST(DpoPairs, FormsAndTokenization) {
  auto tok = ascii_tokenizer();  // one token a byte; BOS 1, EOS 2
  const std::string d = temp_dir("dpo_pairs");
  const std::string f = write(d, "p.jsonl",
                              R"({"prompt": "Hi", "chosen": " yes", "rejected": " no"})"
                              "\n\n"
                              R"({"chosen": "\n\nHuman: a?\n\nAssistant: b\n\nHuman: c?\n\nAssistant: good", )"
                              R"("rejected": "\n\nHuman: a?\n\nAssistant: b\n\nHuman: c?\n\nAssistant: bad"})"
                              "\n"
                              R"({"prompt": [{"role": "user", "content": "Q"}], "chosen": [{"role": "assistant", "content": "A"}], )"
                              R"("rejected": [{"role": "assistant", "content": "B"}]})"
                              "\n"
                              R"({"prompt": "Hi", "chosen": "same", "rejected": "same"})"
                              "\n"
                              R"({"prompt": "Hi", "chosen": "", "rejected": "x"})"
                              "\n"
                              R"({"chosen": "same start, more", "rejected": "same start"})"
                              "\n");
  PairStats st;
  auto pairs = read_pairs(f, *tok, chat::ChatTemplate::Solar, 1000, &st);
  EXPECT_EQ(st.read, 6);
  EXPECT_EQ(st.identical, 1);
  EXPECT_EQ(st.empty, 2);
  ASSERT_EQ(pairs.size(), 3u);
  auto ids = [&](const std::string& s) {
    auto v = tok->encode(s, false);
    return std::vector<int32_t>(v.begin(), v.end());
  };
  auto with = [](std::vector<int32_t> v, std::vector<int32_t> pre, std::vector<int32_t> post) {
    v.insert(v.begin(), pre.begin(), pre.end());
    v.insert(v.end(), post.begin(), post.end());
    return v;
  };
  EXPECT_EQ(pairs[0].prompt, with(ids("Hi"), {1}, {}));
  EXPECT_EQ(pairs[0].chosen, with(ids(" yes"), {}, {2}));
  EXPECT_EQ(pairs[0].rejected, with(ids(" no"), {}, {2}));
  EXPECT_EQ(pairs[1].prompt, with(ids("\n\nHuman: a?\n\nAssistant: b\n\nHuman: c?\n\nAssistant:"), {1}, {}));
  EXPECT_EQ(pairs[1].chosen, with(ids(" good"), {}, {2}));
  // Messages through SOLAR's template: the prompt ends with "### Assistant:\n".
  const std::string ptxt(pairs[2].prompt.end() - 15, pairs[2].prompt.end());
  std::string s;
  for (int32_t t : pairs[2].prompt) s += tok->decode({t});
  EXPECT_NE(s.find("### User:\nQ"), std::string::npos) << s;
  EXPECT_EQ(s.substr(s.size() - 15), "### Assistant:\n");
  EXPECT_EQ(pairs[2].chosen.front(), ids("A")[0]);
  EXPECT_EQ(pairs[2].rejected.front(), ids("B")[0]);

  // Too long: counted and skipped.
  read_pairs(f, *tok, chat::ChatTemplate::Solar, 8, &st);
  EXPECT_GE(st.too_long, 2);

  // A batch: chosen rows, then rejected rows; weights on completion targets.
  train::Batch b;
  fill_batch(pairs, {0}, 10, 2, b);
  EXPECT_EQ(b.B, 2);
  EXPECT_EQ(b.ids, (std::vector<int64_t>{0, 0}));
  // "<s>Hi yes</s>": targets 2..5 (" yes</s>" = 5 tokens at target 2..6).
  std::vector<float> w0(b.weight.begin(), b.weight.begin() + 10);
  EXPECT_EQ(w0, (std::vector<float>{0, 0, 1, 1, 1, 1, 1, 0, 0, 0}));
  remove_all(d);
}

TEST(DpoPairs, BadInputNamesFileLineField) {
  auto tok = ascii_tokenizer();
  const std::string d = temp_dir("dpo_bad");
  auto err = [&](const std::string& line) {
    const std::string f = write(d, "b.jsonl", R"({"prompt": "a", "chosen": "b", "rejected": "c"})" "\n" + line + "\n");
    return error_of([&] { read_pairs(f, *tok, chat::ChatTemplate::Solar, 100, nullptr); });
  };
  std::string e = err(R"({"prompt": "a", "chosen": "b"})");
  EXPECT_NE(e.find("b.jsonl:2"), std::string::npos) << e;
  EXPECT_NE(e.find("rejected"), std::string::npos) << e;
  e = err(R"({"prompt": "a", "chosen": 3, "rejected": "c"})");
  EXPECT_NE(e.find("chosen"), std::string::npos) << e;
  e = err(R"({"prompt": [{"role": "user"}], "chosen": "b", "rejected": "c"})");
  EXPECT_NE(e.find("prompt"), std::string::npos) << e;
  e = err("not json");
  EXPECT_NE(e.find("b.jsonl:2"), std::string::npos) << e;
  remove_all(d);
}

// Before: an HH dialogue (no "prompt") without a final "\n\nAssistant:" turn
// was taken, its common prefix a prompt that ends mid-turn.
TEST(DpoPairs, HhDialogueWithoutFinalAssistantTurnIsRefused) {
  auto tok = ascii_tokenizer();
  const std::string d = temp_dir("dpo_hh_bad");
  auto err = [&](const std::string& line) {
    const std::string f = write(d, "hh.jsonl",
                                R"({"chosen": "\n\nHuman: q\n\nAssistant: a", "rejected": "\n\nHuman: q\n\nAssistant: b"})"
                                "\n" + line + "\n");
    return error_of([&] { read_pairs(f, *tok, chat::ChatTemplate::Solar, 100, nullptr); });
  };
  const std::string want = R"(expected an Anthropic HH dialogue ending in a "\n\nAssistant:" turn)";
  std::string e = err(R"({"chosen": "\n\nHuman: q\n\nAssistant: a", "rejected": "\n\nHuman: q b"})");
  EXPECT_NE(e.find("hh.jsonl:2: rejected: " + want + ", got no"), std::string::npos) << e;
  e = err(R"({"chosen": "\n\nHuman: q a", "rejected": "\n\nHuman: q b"})");
  EXPECT_NE(e.find("hh.jsonl:2: chosen: " + want), std::string::npos) << e;
  e = err(R"({"chosen": "\n\nHuman: q\n\nAssistant: a\n\nHuman: more", "rejected": "\n\nHuman: q\n\nAssistant: b"})");
  EXPECT_NE(e.find("hh.jsonl:2: chosen: " + want + ", got a final"), std::string::npos) << e;
  // Implicit-prompt pairs that are no HH dialogue keep TRL's common prefix.
  EXPECT_EQ(err(R"({"chosen": "same start, more", "rejected": "same start, less"})"), "");
  remove_all(d);
}

TEST(DpoPairs, ReadsGzip) {
  auto tok = ascii_tokenizer();
  const std::string d = temp_dir("dpo_gz");
  const std::string f = join_path(d, "p.jsonl.gz");
  gzFile g = gzopen(f.c_str(), "wb");
  const std::string line = R"({"prompt": "Hi", "chosen": " yes", "rejected": " no"})" "\n";
  for (int i = 0; i < 3; ++i) gzwrite(g, line.data(), unsigned(line.size()));
  gzclose(g);
  EXPECT_EQ(read_pairs(f, *tok, chat::ChatTemplate::Solar, 100, nullptr).size(), 3u);
  remove_all(d);
}

TEST(DpoPairs, HhRlhfSharedData) {
  const std::string f = std::string(SOLAR_SHARED_DATA) + "/preference/hh_harmless_base_test.jsonl.gz";
  if (!path_exists(f)) GTEST_SKIP() << f << " is absent";
  auto tok = ascii_tokenizer();
  PairStats st;
  auto pairs = read_pairs(f, *tok, chat::ChatTemplate::Solar, 1 << 20, &st);
  EXPECT_GT(st.read, 1000);
  EXPECT_EQ(int64_t(pairs.size()) + st.identical + st.empty, st.read);
  EXPECT_LT(st.empty + st.identical, st.read / 10);
}

}  // namespace
}  // namespace solar::dpo
