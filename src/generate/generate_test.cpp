// The token loop's cancel flag: set mid-reply it stops before the next token
// with every returned token in the context; set beforehand nothing runs.
#include "generate/generate.h"

#include <gtest/gtest.h>

#include <cstdio>

#include "model/init.h"
#include "testing/models.h"
#include "testing/tokenizers.h"

namespace solar::generate {
namespace {

using testing::ascii_tokenizer;


model::Checkpoint random_model(int vocab) {
  model::Checkpoint ck;
  ck.source = "random";
  model::ModelConfig& c = ck.config;
  c = testing::small_config(32, 48, vocab, false, 2, 128);
  for (const auto& n : model::expected_tensor_names(c)) {
    auto shape = model::expected_shape(c, n);
    size_t numel = 1;
    for (auto s : shape) numel *= size_t(s);
    std::vector<uint8_t> bytes(numel * sizeof(float));
    model::init_tensor(c, n, 7, bytes.data(), DType::F32, numel);
    ck.tensors[n] = ck.adopt(n, DType::F32, shape, std::move(bytes));
  }
  ck.validate();
  return ck;
}

TEST(Generate, CancelFlagStopsBeforeTheNextToken) {
  auto tok = ascii_tokenizer();
  model::Checkpoint ck = random_model(tok->vocab_size());
  auto m = std::make_shared<const engine::Model>(ck);
  engine::Context ctx(m);
  std::atomic<bool> cancel{false};
  GenerateOptions opt;
  opt.n_predict = 60;
  opt.stop_at_eos = false;
  opt.sampler.temp = 1;  // near-uniform logits: varied text, a fixed seed
  opt.cancel = &cancel;
  std::vector<int> prompt = tok->encode("Hello", true);
  int pieces = 0;
  std::string seen;
  GenerateResult r = generate(ctx, *tok, prompt, opt, [&](const std::string& s) {
    seen += s;
    if (++pieces == 5) cancel = true;
    return true;
  });
  EXPECT_EQ(r.stop_reason, "cancelled");
  EXPECT_EQ(pieces, 5);
  EXPECT_LT(r.tokens.size(), 60u);
  EXPECT_GE(r.tokens.size(), 5u);
  // The partial reply is consistent: its text is its tokens', and they are all in the cache.
  EXPECT_EQ(r.text, seen);
  EXPECT_EQ(r.text, tok->decode(r.tokens));
  EXPECT_EQ(ctx.n_past(), int(prompt.size() + r.tokens.size()));

  // Already set: no prefill, no tokens.
  engine::Context ctx2(m);
  r = generate(ctx2, *tok, prompt, opt);
  EXPECT_EQ(r.stop_reason, "cancelled");
  EXPECT_TRUE(r.tokens.empty());
  EXPECT_EQ(ctx2.n_past(), 0);

  // Cleared, the same call runs to n_predict.
  cancel = false;
  r = generate(ctx2, *tok, prompt, opt);
  EXPECT_EQ(r.stop_reason, "length");
  EXPECT_EQ(r.tokens.size(), 60u);
}

}  // namespace
}  // namespace solar::generate
