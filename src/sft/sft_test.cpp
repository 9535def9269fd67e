// solar sft: records in every shape, the assistant-token mask through each
// template, rows and packing as a pure function of (seed, index), and the CLI
// end to end on a tiny random model: the response loss goes down, and a
// resumed run ends with the bytes of an uninterrupted one.
#include "sft/sft.h"

#include <gtest/gtest.h>

#include <set>

#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"
#include "core/progress.h"
#include "testing/models.h"
#include "testing/testing.h"
#include "testing/tokenizers.h"

namespace solar::sft {
namespace {

using solar::testing::error_of;

std::string write_jsonl(const std::string& dir, const std::string& name, const std::string& body) {
  const std::string p = join_path(dir, name);
  write_file_atomic(p, body);
  return p;
}

// The text of the tokens marked (train = true) or not.
std::string part(const tokenizer::Tokenizer& tok, const Example& e, bool train) {
  std::vector<int> ids;
  for (size_t i = 0; i < e.ids.size(); i++)
    if (e.train[i] == train) ids.push_back(e.ids[i]);
  return tok.decode(ids);
}

TEST(SftRecords, EveryShapeAndFieldMap) {
  const std::string dir = testing::temp_dir("sft_records");
  const std::string p = write_jsonl(dir, "mixed.jsonl",
      R"({"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]})"
      "\n\n"
      R"({"prompt": "2+2?", "completion": "4"})" "\n"
      R"({"prompt": [{"role": "user", "content": "a"}], "completion": [{"role": "assistant", "content": "b"}]})" "\n"
      R"({"text": "plain text"})" "\n"
      R"({"instruction": "Add", "input": "1 and 2", "output": "3"})" "\n"
      R"({"instruction": "Greet", "instances": [{"input": "", "output": "hi"}, {"input": "x", "output": "y"}]})" "\n"
      R"({"question": "q?", "answer": "#### 1"})" "\n"
      R"({"prompt": "nothing", "completion": ""})" "\n");
  Counts n;
  auto r = read_records(p, {}, &n);
  ASSERT_EQ(r.size(), 8u);
  EXPECT_EQ(n.records, 9);
  EXPECT_EQ(n.empty, 1);
  EXPECT_EQ(r[0].kind, Kind::Messages);
  EXPECT_EQ(r[0].messages.size(), 3u);
  EXPECT_EQ(r[1].kind, Kind::PromptCompletion);
  EXPECT_EQ(r[1].messages[1].content, "4");
  EXPECT_EQ(r[1].line, 3);  // blank lines count
  EXPECT_EQ(r[3].kind, Kind::Text);
  EXPECT_EQ(r[4].messages[0].content, "Add\n\n1 and 2");
  EXPECT_EQ(r[5].messages[0].content, "Greet");
  EXPECT_EQ(r[6].messages[0].content, "Greet\n\nx");
  EXPECT_EQ(r[7].messages[1].content, "#### 1");

  const std::string q = write_jsonl(dir, "custom.jsonl", R"({"q": "Why?", "a": "Because."})" "\n");
  FieldMap m;
  m.prompt_field = "q", m.completion_field = "a";
  auto c = read_records(q, m, &n);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].messages[0].content, "Why?");
  EXPECT_EQ(c[0].messages[1].role, "assistant");
}

TEST(SftRecords, BadRecordsNameFileLineAndField) {
  const std::string dir = testing::temp_dir("sft_bad");
  auto err = [&](const std::string& body, FieldMap m = {}) {
    Counts n;
    return error_of([&] { read_records(write_jsonl(dir, "bad.jsonl", body), m, &n); });
  };
  const std::string f = join_path(dir, "bad.jsonl");
  EXPECT_EQ(err("{\"text\": \"ok\"}\n{\"prompt\": \"p\"}\n"),
            f + ":2: completion: expected a string field 'completion', got none (fields: prompt)");
  EXPECT_EQ(err(R"({"messages": [{"role": "user", "content": 3}]})"),
            f + ":1: messages[0]: content: expected a string, got number");
  EXPECT_EQ(err(R"({"messages": [{"role": "bot", "content": "x"}]})"),
            f + ":1: messages[0].role: expected system, user or assistant, got 'bot'");
  EXPECT_NE(err("not json\n").find(f + ":1: JSON syntax error: "), std::string::npos);
  EXPECT_NE(err("[1, 2]\n").find(f + ":1: expected one JSON object a line, got array"), std::string::npos);
  EXPECT_NE(err(R"({"foo": 1})").find("(or --format alpaca|gsm8k"), std::string::npos);
  FieldMap g;
  g.format = "gsm8k";
  EXPECT_EQ(err(R"({"question": "q", "answer": 7})", g), f + ":1: answer: expected a string, got number");
  g.format = "yaml";
  EXPECT_NE(err("{}", g).find("--format"), std::string::npos);
}

// Before: records with nothing to learn were dropped with only a count in the
// info log, and a file of nothing else failed as "sft: data" (no file, no
// line). Now each file's skips are a warning naming the first file:line and
// field, and a file with no record to learn from is an error naming them.
TEST(SftRecords, EmptyRecordsAreWarnedAndAllEmptyIsAnError) {
  const std::string dir = testing::temp_dir("sft_empty");
  testing::SinkGuard guard;
  std::vector<std::string> warned;
  set_log_sink([&](const LogRecord& r) {
    if (r.level == LogLevel::Warn) warned.push_back(std::string(r.message));
  });
  Counts n;
  const std::string p = write_jsonl(dir, "some.jsonl",
      R"({"prompt": "a", "completion": "b"})" "\n"
      R"({"prompt": "a", "completion": ""})" "\n"
      R"({"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": ""}]})" "\n");
  EXPECT_EQ(read_records(p, {}, &n).size(), 1u);
  EXPECT_EQ(n.empty, 2);
  ASSERT_EQ(warned.size(), 1u);
  EXPECT_NE(warned[0].find(p + ": skipped 2 of 3 records with nothing to learn"), std::string::npos) << warned[0];
  EXPECT_NE(warned[0].find("the first at " + p + ":2: completion"), std::string::npos) << warned[0];

  auto err = [&](const std::string& body, FieldMap m = {}) {
    return error_of([&] { read_records(write_jsonl(dir, "empty.jsonl", body), m, &n); });
  };
  const std::string f = join_path(dir, "empty.jsonl");
  const std::string all = "expected at least one record with a non-empty text, completion or assistant reply, got ";
  EXPECT_EQ(err("\n" R"({"prompt": "a", "completion": ""})" "\n" R"({"prompt": "b", "completion": ""})" "\n"),
            f + ":2: completion: " + all + "2 records all with nothing to learn (this is the first)");
  EXPECT_EQ(err(R"({"messages": [{"role": "user", "content": "x"}]})"),
            f + ":1: messages: " + all + "1 records all with nothing to learn (this is the first)");
  EXPECT_EQ(err(R"({"text": ""})"), f + ":1: text: " + all + "1 records all with nothing to learn (this is the first)");
  EXPECT_EQ(err(R"({"instruction": "i", "instances": [{"input": "x", "output": ""}]})"),
            f + ":1: instances[0].output: " + all + "1 records all with nothing to learn (this is the first)");
  EXPECT_EQ(err("\n \n"), f + ": expected JSONL records, one JSON object a line, got none");
}

// Each template: the marked tokens decode to the replies (and their end
// tokens), the rest to the prompts; the whole is the template's rendering.
TEST(SftEncode, AssistantTokensMarkedInEveryTemplate) {
  auto tok = testing::ascii_tokenizer();
  Record r{Kind::Messages,
           {{"system", "S"}, {"user", "U1"}, {"assistant", "A1"}, {"user", "U2"}, {"assistant", "A2"}, {"user", "U3"}},
           "", 1};
  Example s = encode(*tok, r, {chat::ChatTemplate::Solar});
  EXPECT_EQ(part(*tok, s, true), "A1A2");  // decode drops the EOS that closes each reply…
  int eos = 0;
  for (size_t i = 0; i < s.ids.size(); i++) eos += s.ids[i] == tok->eos_id() && s.train[i];
  EXPECT_EQ(eos, 2);  // …but both are there, trained
  EXPECT_EQ(part(*tok, s, false), "### System:\nS\n\n### User:\nU1\n\n### Assistant:\n### User:\nU2\n\n### Assistant:\n");
  EXPECT_EQ(s.ids[0], tok->bos_id());

  Example l = encode(*tok, r, {chat::ChatTemplate::Llama2});
  EXPECT_EQ(part(*tok, l, true), " A1  A2 ");
  std::vector<chat::ChatMessage> upto(r.messages.begin(), r.messages.end() - 1);
  EXPECT_EQ(tok->decode(l.ids), tok->decode(chat::encode_chat(*tok, chat::ChatTemplate::Llama2, upto, false)));

  Example m = encode(*tok, r, {chat::ChatTemplate::Mistral});
  EXPECT_EQ(part(*tok, m, true), "A1 A2 ");

  // All tokens on request; prompt/completion follows --completion-only-loss.
  Example all = encode(*tok, r, {chat::ChatTemplate::Solar, true, false});
  EXPECT_EQ(std::count(all.train.begin(), all.train.end(), 1), long(all.train.size()));
  Record pc{Kind::PromptCompletion, {{"user", "P"}, {"assistant", "C"}}, "", 1};
  EXPECT_EQ(part(*tok, encode(*tok, pc, {chat::ChatTemplate::Solar}), true), "C");
  Example pall = encode(*tok, pc, {chat::ChatTemplate::Solar, false, true});
  EXPECT_EQ(std::count(pall.train.begin(), pall.train.end(), 0), 0);

  // Text records: BOS … EOS, every token counts.
  Example txt = encode(*tok, {Kind::Text, {}, "ab", 1}, {chat::ChatTemplate::Solar});
  EXPECT_EQ(txt.ids, (std::vector<int32_t>{tok->bos_id(), tok->encode("a", false)[0], tok->encode("b", false)[0], tok->eos_id()}));
  EXPECT_EQ(std::count(txt.train.begin(), txt.train.end(), 1), 4);
  // A template whose special tokens the vocabulary lacks.
  EXPECT_NE(error_of([&] { encode(*tok, r, {chat::ChatTemplate::ChatML}); }).find("no token '<|im_start|>'"),
            std::string::npos);
  // Roles a template refuses.
  Record bad{Kind::Messages, {{"assistant", "x"}}, "", 1};
  EXPECT_NE(error_of([&] { encode(*tok, bad, {chat::ChatTemplate::Llama2}); }).find("roles must alternate"),
            std::string::npos);
}

std::vector<Example> examples(int n) {
  std::vector<Example> out;
  for (int i = 0; i < n; i++) {
    Example e;
    for (int k = 0; k < 3 + (i * 7) % 11; k++) e.ids.push_back(3 + (i * 13 + k) % 100), e.train.push_back(k >= 2);
    out.push_back(e);
  }
  return out;
}

TEST(SftSource, PackedRowsArePureAndCoverAnEpoch) {
  SourceOptions o;
  o.max_length = 24, o.batch_size = 3, o.packing = true, o.seed = 5;
  Counts n;
  SftSource a(examples(40), examples(5), 128, o, &n), b(examples(40), examples(5), 128, o, &n);
  EXPECT_LT(a.train_rows(), 40u);  // packing put several examples a row
  // A pure function of the index, whatever was asked before.
  train::Batch x, y;
  a.train_batch(7, x);
  for (uint64_t i = 0; i < 7; i++) b.train_batch(i, y);
  b.train_batch(7, y);
  EXPECT_EQ(x.tokens, y.tokens);
  EXPECT_EQ(x.seg, y.seg);
  EXPECT_EQ(x.pos, y.pos);
  // One epoch of rows holds every example once: the loss tokens add up.
  const uint64_t rows = a.train_rows();
  double weight = 0;
  std::multiset<int64_t> seen;
  for (uint64_t s = 0; s < rows; s++) {
    train::Batch one;
    SourceOptions o1 = o;
    o1.batch_size = 1;
    SftSource c(examples(40), {}, 128, o1, &n);
    c.train_batch(s, one);
    one.validate();
    ASSERT_LE(one.T + 1, 24);
    seen.insert(one.ids[0]);
    for (float w : one.weight) weight += w;
    for (size_t t = 1; t < size_t(one.T); t++)  // positions restart exactly where the example changes
      EXPECT_EQ(one.pos[t] == 0, one.seg[t] != one.seg[t - 1]);
  }
  EXPECT_EQ(seen.size(), rows);
  EXPECT_EQ(std::set<int64_t>(seen.begin(), seen.end()).size(), rows);
  EXPECT_EQ(weight, double(a.train_tokens()));
  EXPECT_EQ(a.val_batches(), 1u);
}

TEST(SftSource, TruncateOrSkipCounted) {
  SourceOptions o;
  o.max_length = 6, o.batch_size = 2;
  std::vector<Example> ex = examples(4);  // lengths 3, 10, 6, 13 (train from the third token)
  Counts cut, skip;
  SftSource a(ex, {}, 128, o, &cut);
  EXPECT_EQ(cut.truncated, 2);
  EXPECT_EQ(a.train_examples(), 4u);
  o.truncation_mode = "skip";
  SftSource b(ex, {}, 128, o, &skip);
  EXPECT_EQ(skip.too_long, 2);
  EXPECT_EQ(b.train_examples(), 2u);
  // Unpacked rows: one example each, padded to the longest of the batch, padding weight 0.
  train::Batch x;
  b.train_batch(0, x);
  EXPECT_TRUE(x.seg.empty() && x.pos.empty());
  EXPECT_EQ(x.T, 5);
  o.truncation_mode = "keep_end";
  EXPECT_NE(error_of([&] { SftSource(ex, {}, 128, o, &skip); }).find("--truncation-mode"), std::string::npos);
  std::vector<Example> none = {{{5, 6, 7}, {0, 0, 0}}};
  o.truncation_mode = "skip";
  Counts z;
  EXPECT_NE(error_of([&] { SftSource(none, {}, 128, o, &z); }).find("at least one training example"), std::string::npos);
  EXPECT_EQ(z.no_loss, 1);
}

// The CLI on a tiny random model with the ASCII tokenizer: completions of a
// fixed pattern, the response loss (train and held-out) falls; a run stopped
// after checkpoint-4 and resumed ends with the uninterrupted run's bytes.
TEST(SftCli, ResponseLossFallsAndResumeIsExact) {
  const std::string dir = testing::temp_dir("sft_cli");
  const std::string tok = join_path(dir, "tokenizer.bin"), model = join_path(dir, "model");
  testing::write_ascii_tokenizer_bin(tok);
  model::ModelConfig c = testing::small_config(32, 64, 131, false, 2, 256);
  testing::write_random_model(model, c, 3, tok);
  std::string body;
  for (int i = 0; i < 60; i++)
    body += R"({"question": "What is )" + std::to_string(i) + R"( plus one?", "answer": "It is )" +
            std::to_string(i + 1) + R"(.\n#### )" + std::to_string(i + 1) + "\"}\n";
  const std::string data = write_jsonl(dir, "train.jsonl", body);
  const std::string out = join_path(dir, "out");
  const std::string args = "sft -m " + model + " --tokenizer " + tok + " --data " + data +
                           " --eval-split 0.2 --packing --max-length 128 -b 2 --grad-accum 2 --lr 3e-2 --warmup-steps 2"
                           " --eval-every 4 --save-every 4 -t 1 --precision f32 -q -o ";
  std::string log;
  ASSERT_EQ(testing::run_solar(args + out + " --steps 16", &log), 0) << log;
  EXPECT_NE(log.find("with no completion token left"), std::string::npos) << log;
  std::vector<double> train, val, acc;
  for (auto& j : read_metrics(join_path(out, "metrics.jsonl"))) {
    if (j.contains("loss") && j["loss"].is_number()) train.push_back(j["loss"].get<double>());
    if (j.contains("val_loss")) val.push_back(j["val_loss"].get<double>());
    if (j.contains("eval_mean_token_accuracy")) acc.push_back(j["eval_mean_token_accuracy"].get<double>());
  }
  ASSERT_EQ(train.size(), 16u);
  ASSERT_EQ(val.size(), 4u);
  EXPECT_LT(train.back(), train.front() - 1.0) << log;  // nats per response token
  EXPECT_LT(val.back(), val.front() - 1.0) << log;
  ASSERT_EQ(acc.size(), 4u);
  // TRL's mean_token_accuracy on the held-out responses: far above chance (1/131) once the pattern is learnt.
  EXPECT_GT(acc.back(), 0.5);
  EXPECT_LE(acc.back(), 1.0);
  EXPECT_TRUE(path_exists(join_path(out, "loss.svg")));
  EXPECT_TRUE(path_exists(join_path(out, "final/tokenizer.bin")));

  // Interrupted after checkpoint-4: what a kill leaves (later checkpoints and final/ gone), then --resume.
  const std::string cut = join_path(dir, "cut");
  ASSERT_EQ(testing::run_solar(args + cut + " --steps 16 --save-total-limit 0", &log), 0) << log;
  for (const char* gone : {"checkpoint-8", "checkpoint-12", "checkpoint-16", "final"}) remove_all(join_path(cut, gone));
  ASSERT_EQ(testing::run_solar(args + cut + " --steps 16 --resume", &log), 0) << log;
  EXPECT_NE(log.find("resuming from"), std::string::npos) << log;
  EXPECT_EQ(read_file(join_path(cut, "final/model.safetensors")), read_file(join_path(out, "final/model.safetensors")));

  // Held out from a file of its own; not with --eval-split too (a usage error).
  const std::string ev = join_path(dir, "eval");
  ASSERT_EQ(testing::run_solar("sft -m " + model + " --tokenizer " + tok + " --data " + data + " --eval-file " + data +
                                   " --max-length 128 -b 4 --steps 2 --eval-every 1 -t 1 -q -o " + ev, &log), 0) << log;
  int evals = 0;
  for (auto& j : read_metrics(join_path(ev, "metrics.jsonl"))) evals += j.contains("val_loss");
  EXPECT_EQ(evals, 2);
  EXPECT_EQ(testing::run_solar("sft -m " + model + " --data " + data + " --eval-file " + data +
                                   " --eval-split 0.1 -q -o " + join_path(dir, "both"), &log), 2) << log;
  EXPECT_NE(log.find("--eval-split: expected either --eval-split or --eval-file"), std::string::npos) << log;
  EXPECT_EQ(testing::run_solar("sft -m " + model + " --tokenizer " + tok + " --data " + data + " -q -o " +
                                   join_path(dir, "long"), &log), 2) << log;  // --max-length 1024 > 256 positions
  EXPECT_NE(log.find("--max-length: expected <= max_position_embeddings 256"), std::string::npos) << log;

  // Bad input through the CLI: the file, line and field are named.
  write_jsonl(dir, "bad.jsonl", "{\"question\": \"q\", \"answer\": \"a\"}\n{\"question\": \"q\"}\n");
  EXPECT_NE(testing::run_solar("sft -m " + model + " --tokenizer " + tok + " --data " + join_path(dir, "bad.jsonl") +
                                   " --format gsm8k --max-length 128 -q -o " + join_path(dir, "bad"), &log), 0);
  EXPECT_NE(log.find("bad.jsonl:2: answer: expected a string field"), std::string::npos) << log;
}

}  // namespace
}  // namespace solar::sft
