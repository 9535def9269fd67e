// solar perplexity — perplexity of a text file as llama.cpp's llama-perplexity
// computes it (src/eval/perplexity.h): same chunks, same scored half, same
// output ("[1]12.3456,[2]…" then "Final estimate: PPL = X +/- Y").
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>

#include "cli/common.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"
#include "core/progress.h"
#include "eval/perplexity.h"
#include "kernels/kernels.h"

namespace solar::cli {

static nlohmann::json result_json(const eval::PerplexityResult& r) {
  nlohmann::json chunks = nlohmann::json::array();
  for (size_t i = 0; i < r.chunks.size(); ++i) {
    const eval::ChunkScore& c = r.chunks[i];
    chunks.push_back({{"chunk", i + 1},
                      {"tokens", c.tokens},
                      {"nll", c.nll},
                      {"nll2", c.nll2},
                      {"ppl", std::exp(c.nll / c.tokens)},
                      {"ppl_running", r.running[i]}});
  }
  return {{"n_ctx", r.n_ctx},
          {"n_batch", r.n_batch},
          {"text_tokens", r.text_tokens},
          {"n_chunks", r.chunks.size()},
          {"tokens_scored", r.scored},
          {"chunks", chunks},
          {"final", {{"ppl", r.ppl}, {"ppl_err", r.ppl_err}, {"nll_mean", r.nll_mean}}},
          {"seconds", r.seconds},
          {"tokens_per_second", r.seconds > 0 ? double(r.positions_run) / r.seconds : 0.0}};
}

static int run_perplexity(const std::vector<std::string>& argv) {
  Args a("perplexity",
         "solar perplexity -m MODEL -f FILE [-c N] [-b N] [--chunks N] [--json OUT]\n"
         "  llama.cpp's method: chunks of -c tokens, each from an empty cache with BOS first, the second half of\n"
         "  each scored; prints the running estimate per chunk and the final PPL with its uncertainty");
  auto& model = a.str("-m,--model", "PATH", "HF folder, .gguf file or llama2.c .bin");
  auto& tokenizer = a.str("--tokenizer", "PATH", "tokenizer (default: beside the model)");
  auto& file = a.str("-f,--file", "FILE", "the text to score (tokenized whole; needs at least 2 × -c tokens)");
  auto& n_ctx = a.integer("-c,--ctx-size", 512, "tokens per chunk (0 = the model's max_position_embeddings)", 0,
                          1 << 24);
  auto& n_batch = a.integer("-b,--batch-size", 2048, "tokens per forward pass (at most -c are used)", 1, 1 << 24);
  auto& chunks = a.integer("--chunks", -1, "score at most N chunks (-1 = all)", -1, INT32_MAX);
  auto& json_out = a.str("--json,-o,--output", "FILE", "write the per-chunk values and the final estimate as JSON");
  auto& quiet = a.flag("-q,--quiet", "no progress bar");
  auto& threads = a.threads();
  if (!a.parse(argv)) return a.exit_code();
  if (model.empty()) usage_error("-m/--model is required");
  if (file.empty()) usage_error("-f/--file is required (the text to score)");
  if (chunks == 0) usage_error("--chunks: expected -1 (every chunk) or a positive count, got 0");
  if (!json_out.empty()) check_output_apart(json_out, {model, file});
  kernels::set_num_threads(int(threads));

  std::string text = read_file(file);
  if (text.empty()) fail(file, "", "empty file (expected text to score)");
  engine::Session lm = load_model(model, tokenizer);
  eval::PerplexityOptions o;
  o.n_ctx = int(n_ctx);
  o.n_batch = int(n_batch);
  o.max_chunks = chunks;
  o.add_bos = eval::adds_bos(*lm.checkpoint);
  o.source = file;
  std::vector<int> tokens = lm.tokenizer->encode(text, o.add_bos);
  log_info("perplexity", file + ": " + std::to_string(tokens.size()) + " tokens" + (o.add_bos ? " (BOS first)" : ""),
           {{"file", file}, {"tokens", tokens.size()}, {"add_bos", o.add_bos}});

  // The running estimates stream to stdout as llama.cpp prints them, except
  // when stdout and the progress bar share a terminal: the bar's redraws
  // would overwrite them, so they come at the end there (the bar shows the
  // latest meanwhile).
  const bool bar_on = !quiet && !json_logs() && log_level() <= LogLevel::Info;
  const bool stream = !(bar_on && isatty(fileno(stdout)) && isatty(fileno(stderr)));
  std::optional<Progress> bar;
  std::string line;
  eval::PerplexityResult r = eval::perplexity(lm, tokens, o, [&](int done, const eval::PerplexityResult& so_far) {
    if (done == 0) {  // the checks passed: the bar starts, and with it the rate and ETA
      if (bar_on) bar.emplace("perplexity", so_far.n_chunks, "tok", stderr);
      if (bar) bar->update(0, 0);
      return;
    }
    char buf[48];
    std::snprintf(buf, sizeof buf, "[%d]%.4f,", done, so_far.running.back());
    line += buf;
    if (stream) {
      std::fputs(buf, stdout);
      std::fflush(stdout);
    }
    if (!bar) return;
    std::snprintf(buf, sizeof buf, "ppl %.4f", so_far.running.back());
    bar->update(done, double(so_far.positions_run), buf);
  });
  if (bar) {
    char extra[48];
    std::snprintf(extra, sizeof extra, "ppl %.4f", r.ppl);
    bar->finish(double(r.positions_run), extra);
  }
  if (!stream) std::fputs(line.c_str(), stdout);
  std::printf("\nFinal estimate: PPL = %.4f +/- %.5f\n", r.ppl, r.ppl_err);
  std::fflush(stdout);

  const double tps = r.seconds > 0 ? double(r.positions_run) / r.seconds : 0;
  char msg[256];
  std::snprintf(msg, sizeof msg, "PPL %.4f +/- %.5f over %lld chunks of %d (%lld tokens scored); %lld tokens in %.2f s (%.1f tok/s)",
                r.ppl, r.ppl_err, (long long)r.chunks.size(), r.n_ctx, (long long)r.scored,
                (long long)r.positions_run, r.seconds, tps);
  log_info("perplexity", msg,
           {{"model", model},
            {"file", file},
            {"ppl", r.ppl},
            {"ppl_err", r.ppl_err},
            {"nll_mean", r.nll_mean},
            {"n_ctx", r.n_ctx},
            {"n_batch", r.n_batch},
            {"chunks", r.chunks.size()},
            {"tokens_scored", r.scored},
            {"positions_run", r.positions_run},
            {"seconds", r.seconds},
            {"tokens_per_second", tps},
            {"threads", kernels::num_threads()}});
  if (!json_out.empty()) {
    nlohmann::json j = result_json(r);
    j["model"] = model;
    j["file"] = file;
    j["add_bos"] = o.add_bos;
    j["threads"] = kernels::num_threads();
    write_file_atomic(json_out, j.dump(2) + "\n");
  }
  return 0;
}

static Register reg("perplexity", "perplexity of a text file by llama.cpp's method (chunks, second half scored)",
                    run_perplexity);

}  // namespace solar::cli
