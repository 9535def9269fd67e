// The tiny Solar recipe end to end at toy size: every step runs, the report
// has all five arms with finite losses, and a rerun resumes (skips) instead
// of training again; what the figures depend on is recorded; corpus errors
// say what is wrong.
#include "pipeline/pipeline.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "core/fs.h"
#include "core/progress.h"
#include "testing/testing.h"
#include "kernels/kernels.h"
#include "chat/chat.h"
#include "dpo/dpo.h"
#include "engine/engine.h"
#include "engine/session.h"
#include "sft/sft.h"

namespace fs = std::filesystem;
using namespace solar;

namespace {

// "Wall time: 3m05s" (or "12s") of a report, in seconds.
double wall_seconds(const std::string& md) {
  std::smatch m;
  if (!std::regex_search(md, m, std::regex("Wall time: (?:([0-9]+)m)?([0-9]+)s"))) return -1;
  return (m[1].matched ? 60 * std::stod(m[1]) : 0) + std::stod(m[2]);
}

// The SVG's width minus the x where `label`'s legend text starts: the room it has.
double legend_room(const std::string& svg, const std::string& label) {
  std::smatch w, t;
  if (!std::regex_search(svg, w, std::regex("<svg [^>]*width=\"([0-9.]+)\""))) return -1;
  if (!std::regex_search(svg, t, std::regex("<text x=\"([0-9.]+)\"[^>]*>" + label + "</text>"))) return -1;
  return std::stod(w[1]) - std::stod(t[1]);
}

// A corpus of 40 small documents (one per file, as the Python docs are),
// each in parts under rst headings, for the alignment data.
void write_toy_corpus(const std::string& shakespeare, const std::string& dir) {
  fs::create_directories(dir);
  std::string text = read_file(shakespeare).substr(0, 240000);
  for (int i = 0; i < 40; ++i) {
    const std::string chunk = text.substr(size_t(i) * 6000, 6000);
    std::string doc;
    for (size_t at = 0, k = 0; at < chunk.size(); ++k) {
      size_t end = std::min(chunk.find("\n\n", at + 1200), chunk.size());
      // Letters only: the toy tokenizer's 320 pieces must still cover every character.
      const std::string title = std::string("Part ") + char('a' + i % 26) + char('a' + i / 26) + char('a' + k);
      doc += title + "\n" + std::string(title.size(), '-') + "\n\n" + chunk.substr(at, end - at) + "\n\n";
      at = end + 2;
    }
    write_file_atomic(dir + "/doc" + std::to_string(i) + ".txt", doc);
  }
}

// Summed log-prob of ids[from..] given what precedes, by the inference
// engine (not the trainer's Net that the pipeline scores with): an
// independent check of the alignment table. Also the count of targets.
double engine_logp(const engine::Session& s, const std::vector<int32_t>& ids, const std::vector<uint8_t>& counted,
                   int64_t* n) {
  engine::Context ctx = s.new_context();
  const int V = s.config().vocab_size, T = int(ids.size());
  std::vector<int> tok(ids.begin(), ids.end());
  std::vector<float> logits(size_t(T) * V);
  ctx.eval(tok.data(), T, nullptr, logits.data());
  double sum = 0;
  for (int j = 1; j < T; ++j) {
    if (!counted[size_t(j)]) continue;
    const float* row = logits.data() + size_t(j - 1) * V;
    double mx = row[0], z = 0;
    for (int v = 0; v < V; ++v) mx = std::max<double>(mx, row[v]);
    for (int v = 0; v < V; ++v) z += std::exp(row[v] - mx);
    sum += row[ids[size_t(j)]] - mx - std::log(z);
    ++*n;
  }
  return sum;
}

// align_results.json: every stage scored; SFT lowers the held-out response
// loss; and the SFT row's figures agree with the engine's on the same data.
void check_alignment(const std::string& out, int L) {
  auto res = nlohmann::json::parse(read_file(out + "/align_results.json"));
  ASSERT_EQ(res.size(), 6u);
  const std::vector<std::string> stages = {"DUS + continued pretraining", "SFT", "DPO-a", "DPO-b", "merge: average",
                                           "merge: SLERP"};
  for (size_t i = 0; i < 6; ++i) {
    EXPECT_EQ(res[i]["stage"], stages[i]);
    EXPECT_TRUE(std::isfinite(res[i]["response_loss"].get<double>())) << res[i].dump();
    EXPECT_GT(res[i]["pairs"].get<int>(), 0) << res[i].dump();
    const double acc = res[i]["preference_accuracy"];
    EXPECT_TRUE(acc >= 0 && acc <= 1) << res[i].dump();
  }
  EXPECT_LT(res[1]["response_loss"].get<double>(), res[0]["response_loss"].get<double>()) << res.dump();
  for (auto dir : {"/sft/final", "/dpo-a/final", "/dpo-b/final", "/merge-avg", "/merge-slerp"})
    EXPECT_TRUE(path_exists(out + dir + "/config.json")) << dir;

  engine::Session s = engine::open_session(out + "/sft/final");
  sft::Counts counts;
  auto recs = sft::read_records(out + "/align-data/sft_eval.jsonl", {}, &counts);
  recs.resize(std::min<size_t>(recs.size(), 8));
  auto ex = sft::encode_records(*s.tokenizer, recs, {chat::ChatTemplate::Solar, true, true}, "eval");
  double nll = 0;
  int64_t tokens = 0;
  for (auto& e : ex) {
    e.ids.resize(std::min<size_t>(e.ids.size(), size_t(L))), e.train.resize(e.ids.size());
    nll -= engine_logp(s, e.ids, e.train, &tokens);
  }
  EXPECT_EQ(res[1]["response_tokens"].get<int64_t>(), tokens);
  EXPECT_NEAR(res[1]["response_loss"].get<double>(), nll / double(tokens), 2e-3);
  auto pairs = dpo::read_pairs(out + "/align-data/dpo_eval.jsonl", *s.tokenizer, chat::ChatTemplate::Solar, L, nullptr);
  pairs.resize(std::min<size_t>(pairs.size(), 8));
  double right = 0, margin = 0;
  for (const auto& p : pairs) {
    double lp[2];
    for (int k = 0; k < 2; ++k) {
      const auto& c = k ? p.rejected : p.chosen;
      std::vector<int32_t> ids = p.prompt;
      ids.insert(ids.end(), c.begin(), c.end());
      std::vector<uint8_t> counted(ids.size(), 0);
      std::fill(counted.begin() + std::ptrdiff_t(p.prompt.size()), counted.end(), 1);
      int64_t n = 0;
      lp[k] = engine_logp(s, ids, counted, &n);
    }
    right += lp[0] > lp[1], margin += lp[0] - lp[1];
  }
  ASSERT_EQ(res[1]["pairs"].get<size_t>(), pairs.size());
  EXPECT_NEAR(res[1]["preference_accuracy"].get<double>(), right / double(pairs.size()), 1e-9);
  EXPECT_NEAR(res[1]["mean_margin"].get<double>(), margin / double(pairs.size()), 2e-2);
}

}  // namespace

TEST(Pipeline, ToySizeEndToEndAndResume) {
  std::string shakespeare = std::string(SOLAR_SHARED_DATA) + "/corpus/tinyshakespeare.txt";
  if (!path_exists(shakespeare)) GTEST_SKIP() << "shared data not found: " << shakespeare;
  std::string root = solar::testing::temp_dir("pipeline_test");
  write_toy_corpus(shakespeare, root + "/corpus");
  std::string cmd = std::string(SOLAR_BIN) + " pipeline --corpus " + root + "/corpus -o " + root +
                    "/out --vocab-size 320 --layers 3 --drop 1 --hidden-size 32 --intermediate-size 64 --heads 4 "
                    "--kv-heads 2 --seq-len 64 -b 4 --base-steps 6 --dus-steps 4 --eval-every 2 --eval-windows 4 -t 1 "
                    "--sft-steps 6 --dpo-steps 2 --align-max-length 256 --heldout-examples 8 --eval-limit 6 "
                    "--eval-data " + std::string(SOLAR_SHARED_DATA) + "/eval";
  ASSERT_EQ(std::system((cmd + " > " + root + "/log1.txt 2>&1").c_str()), 0) << read_file(root + "/log1.txt");
  // Every stage benchmarked (five arms, SFT, two DPO runs, two merges), beside chance.
  auto bench = nlohmann::json::parse(read_file(root + "/out/benchmark_results.json"));
  ASSERT_EQ(bench.size(), 10u) << bench.dump();
  for (auto& b : bench)
    for (const char* t : {"arc_easy", "winogrande", "truthfulqa_mc2"}) {
      double v = b[t].get<double>();
      EXPECT_TRUE(v >= 0 && v <= 1) << b.dump();
    }
  EXPECT_TRUE(path_exists(root + "/out/eval/merge-slerp/samples_winogrande.jsonl"));
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
  // Precision (f32 by default, whatever the CPU) and CPU in the log, the report and every run's metrics.
  EXPECT_NE(read_file(root + "/log1.txt").find("solar pipeline: precision f32"), std::string::npos);
  EXPECT_NE(md.find("Training precision: `f32`"), std::string::npos) << md;
  EXPECT_NE(md.find(kernels::cpu_summary()), std::string::npos) << md;
  for (auto arm : {"base", "dus", "base-longer", "deep-scratch"}) {
    auto m = read_metrics(root + "/out/" + arm + "/metrics.jsonl");
    ASSERT_FALSE(m.empty()) << arm;
    EXPECT_EQ(m[0].value("precision", ""), "f32") << arm;
  }
  // The HTML renders the Markdown's inline code instead of showing backticks.
  EXPECT_EQ(html.find('`'), std::string::npos) << html;
  EXPECT_NE(html.find("<code>f32</code>"), std::string::npos) << html;
  // Legends are complete: DejaVu Sans draws this label 173.4 px wide at 12 px.
  for (auto svg : {"/out/train_loss.svg", "/out/val_loss.svg"}) {
    std::string s = read_file(root + svg);
    EXPECT_NE(s.find("<polyline"), std::string::npos);
    EXPECT_GE(legend_room(s, "DUS \\+ continued pretraining"), 173.4) << svg;
  }
  // Each val curve ends at its table row: the trainer's last eval scores the same windows.
  for (int i : {0, 2, 3, 4}) {
    ASSERT_TRUE(results[i].contains("last_val_eval")) << results[i].dump();
    EXPECT_NEAR(results[i]["last_val_eval"].get<double>(), results[i]["heldout_loss"].get<double>(), 2e-3)
        << results[i].dump();
  }
  EXPECT_GE(wall_seconds(md), 0) << md;
  check_alignment(root + "/out", 256);
  EXPECT_NE(md.find("Alignment: SFT, DPO and merging"), std::string::npos) << md;
  EXPECT_NE(md.find("| chance (uniform guess) |"), std::string::npos) << md;
  // Seconds of the steps (not the evaluation), which a rerun must keep counting.
  auto state = nlohmann::json::parse(read_file(root + "/out/pipeline_state.json"));
  double steps_s = -state["seconds"]["evaluation and report"].get<double>();
  for (auto& [k, v] : state["seconds"].items()) steps_s += v.get<double>();
  EXPECT_GT(steps_s, 0.0) << state.dump();
  // A rerun finds every step done and only re-evaluates; the wall time stays the total of both.
  ASSERT_EQ(std::system((cmd + " > " + root + "/log2.txt 2>&1").c_str()), 0) << read_file(root + "/log2.txt");
  EXPECT_NE(read_file(root + "/log1.txt").find("solar pipeline: == phase A"), std::string::npos);
  EXPECT_EQ(read_file(root + "/log2.txt").find("== phase A"), std::string::npos);
  for (const char* stage : {"== SFT", "== dpo-a", "== dpo-b", "== merge-avg", "== merge-slerp", "pairs from the corpus"})
    EXPECT_EQ(read_file(root + "/log2.txt").find(stage), std::string::npos) << stage;
  EXPECT_EQ(nlohmann::json::parse(read_file(root + "/out/results.json")), results);
  EXPECT_EQ(nlohmann::json::parse(read_file(root + "/out/benchmark_results.json")), bench);  // resumed, not rescored
  md = read_file(root + "/out/report.md");
  EXPECT_NE(md.find("over 2 invocations"), std::string::npos) << md;
  EXPECT_GE(wall_seconds(md) + 0.5, steps_s) << md;  // whole seconds, rounded
  // Finished steps are not mixed with another precision.
  int rc = std::system((cmd + " --precision bf16 > " + root + "/log3.txt 2>&1").c_str());
  std::string log3 = read_file(root + "/log3.txt");
  EXPECT_NE(rc, 0);
  EXPECT_NE(log3.find("was started with --precision f32; pass --precision f32 to resume it, or --force"),
            std::string::npos) << log3;
  // Steps run in-process: one ended by a signal is left "running" in the state,
  // and the next invocation counts it up to the newest file under OUT.
  auto st = nlohmann::json::parse(read_file(root + "/out/pipeline_state.json"));
  const double phase_a = st["seconds"]["phase A"].get<double>();
  const double now = std::chrono::duration<double>(fs::file_time_type::clock::now().time_since_epoch()).count();
  st["running"] = {{"step", "phase A"}, {"since", now - 100}};
  write_file_atomic(root + "/out/pipeline_state.json", st.dump());
  ASSERT_EQ(std::system((cmd + " > " + root + "/log4.txt 2>&1").c_str()), 0) << read_file(root + "/log4.txt");
  EXPECT_NE(read_file(root + "/log4.txt").find("the last invocation stopped during phase A"), std::string::npos);
  st = nlohmann::json::parse(read_file(root + "/out/pipeline_state.json"));
  EXPECT_FALSE(st.contains("running")) << st.dump();
  EXPECT_GT(st["seconds"]["phase A"].get<double>(), phase_a + 90) << st.dump();
  fs::remove_all(root);
}

// Named sets replace the corpus-built ones: GSM8K-shaped instructions add
// greedy answers to held-out problems to the table, scored by their `#### N`.
TEST(Pipeline, NamedSetsAreUsedAndGsm8kAnswersAreScored) {
  std::string shakespeare = std::string(SOLAR_SHARED_DATA) + "/corpus/tinyshakespeare.txt";
  if (!path_exists(shakespeare)) GTEST_SKIP() << "shared data not found: " << shakespeare;
  std::string root = solar::testing::temp_dir("pipeline_named_test");
  write_toy_corpus(shakespeare, root + "/corpus");
  std::string sft, pairs;
  for (int i = 0; i < 80; ++i) {
    const std::string a = std::to_string(i % 9 + 1), b = std::to_string(i % 7 + 2), c = std::to_string((i % 9 + 1) + (i % 7 + 2));
    sft += nlohmann::json{{"question", "What is " + a + " plus " + b + "?"}, {"answer", a + " + " + b + " = " + c + "\n#### " + c}}.dump() + "\n";
    pairs += nlohmann::json{{"prompt", "Add " + a + " and " + b + "."}, {"chosen", " It is " + c + "."}, {"rejected", " It is " + a + "."}}.dump() + "\n";
  }
  write_file_atomic(root + "/gsm.jsonl", sft);
  write_file_atomic(root + "/pairs.jsonl", pairs);
  std::string cmd = std::string(SOLAR_BIN) + " pipeline --corpus " + root + "/corpus -o " + root +
                    "/out --vocab-size 320 --layers 3 --drop 1 --hidden-size 32 --intermediate-size 64 --heads 4 "
                    "--kv-heads 2 --seq-len 64 -b 4 --base-steps 4 --dus-steps 2 --eval-windows 4 -t 1 --sft-steps 4 "
                    "--dpo-steps 2 --heldout-examples 8 --gsm8k-problems 3 --sft-data " + root + "/gsm.jsonl --dpo-data " +
                    root + "/pairs.jsonl";
  ASSERT_EQ(std::system((cmd + " > " + root + "/log.txt 2>&1").c_str()), 0) << read_file(root + "/log.txt");
  EXPECT_FALSE(fs::exists(root + "/out/align-data")) << "built corpus data although both sets were named";
  auto res = nlohmann::json::parse(read_file(root + "/out/align_results.json"));
  ASSERT_EQ(res.size(), 6u);
  for (const auto& r : res) {
    ASSERT_TRUE(r.contains("gsm8k")) << r.dump();
    EXPECT_EQ(r["gsm8k"]["problems"], 3) << r.dump();
    EXPECT_LE(r["gsm8k"]["right"].get<int>(), r["gsm8k"]["formatted"].get<int>()) << r.dump();
    EXPECT_EQ(r["pairs"], 8) << r.dump();  // the last 8 of 80 pairs held out
  }
  EXPECT_NE(read_file(root + "/out/report.md").find("ends in #### N"), std::string::npos);
  fs::remove_all(root);
}

// --corpus takes a file or a folder; when neither works the error says what
// is wrong, suggests apt only for the default corpus, and never a rerun.
TEST(Pipeline, CorpusErrorsSayWhatIsWrong) {
  std::string root = solar::testing::temp_dir("pipeline_corpus_test");
  auto run = [&](const std::string& corpus) {
    std::string log = root + "/log.txt";
    int rc = std::system((std::string(SOLAR_BIN) + " pipeline --corpus '" + corpus + "' -o " + root +
                          "/out --vocab-size 320 --force --no-align -t 1 > " + log + " 2>&1").c_str());
    EXPECT_NE(rc, 0) << corpus;
    return read_file(log);
  };
  std::string log, e = run(root + "/missing.txt");
  EXPECT_NE(e.find("no such file or folder"), std::string::npos) << e;
  EXPECT_EQ(e.find("apt"), std::string::npos) << e;
  fs::create_directories(root + "/empty");
  write_file_atomic(root + "/empty/.notes.txt", "text");
  e = run(root + "/empty");
  EXPECT_NE(e.find("no text files in this folder"), std::string::npos) << e;
  write_file_atomic(root + "/blank.txt", "");
  e = run(root + "/blank.txt");
  EXPECT_NE(e.find("the corpus file is empty"), std::string::npos) << e;
  // One file, one paragraph: the tokenizer trains, then no document is left to hold out.
  std::string para;
  for (int i = 0; i < 400; i++) para += "the quick brown fox " + std::to_string(i) + " jumps over the lazy dog.\n";
  write_file_atomic(root + "/one.txt", para);
  e = run(root + "/one.txt");
  EXPECT_NE(e.find("expected at least 2 documents"), std::string::npos) << e;
  EXPECT_EQ(e.find("rerun"), std::string::npos) << e;
  EXPECT_EQ(e.find("resume"), std::string::npos) << e;
  // Without --no-align the alignment data is made first: a corpus without
  // rst sections fails before anything trains.
  log = root + "/align.txt";
  EXPECT_NE(std::system((std::string(SOLAR_BIN) + " pipeline --corpus " + root + "/one.txt -o " + root +
                         "/align --vocab-size 320 -t 1 > " + log + " 2>&1").c_str()), 0);
  e = read_file(log);
  EXPECT_NE(e.find("one.txt: found 0 training and 0 held-out sections"), std::string::npos) << e;
  EXPECT_NE(e.find("--no-align"), std::string::npos) << e;
  EXPECT_FALSE(fs::exists(root + "/align/tokenizer.model")) << "trained before checking the alignment data";
  // A named set that is not there fails before anything trains.
  log = root + "/named.txt";
  EXPECT_NE(std::system((std::string(SOLAR_BIN) + " pipeline --sft-data " + root + "/none.jsonl -o " + root +
                         "/named > " + log + " 2>&1").c_str()), 0);
  e = read_file(log);
  EXPECT_NE(e.find("--sft-data: no such file: " + root + "/none.jsonl"), std::string::npos) << e;
  EXPECT_FALSE(fs::exists(root + "/named/tokenizer.model")) << e;
  // --drop is checked before anything trains: m = n/2 would give a model no deeper than its base.
  log = root + "/drop.txt";
  int rc = std::system((std::string(SOLAR_BIN) + " pipeline --layers 8 --drop 4 -o " + root + "/drop --force > " + log +
                        " 2>&1").c_str());
  EXPECT_EQ(WEXITSTATUS(rc), 2);
  e = read_file(log);
  EXPECT_NE(e.find("0 < m < n/2"), std::string::npos) << e;
  EXPECT_FALSE(fs::exists(root + "/drop")) << "started before checking --drop";
  fs::remove_all(root);
}
