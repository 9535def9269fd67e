// solar generate — complete a prompt; only the continuation goes to stdout.
#include <cstdio>

#include "cli/common.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"
#include "kernels/kernels.h"

namespace solar::cli {

static int run_generate(const std::vector<std::string>& argv) {
  Args a("generate", "solar generate -m MODEL [-p PROMPT | -f FILE] [-n N] [options]");
  auto& model = a.str("-m,--model", "PATH", "HF folder, .gguf file or llama2.c .bin");
  auto& tokenizer = a.str("--tokenizer", "PATH", "tokenizer.model / tokenizer.bin (default: beside the model)");
  auto& prompt = a.str("-p,--prompt", "TEXT", "prompt");
  auto& file = a.str("-f,--file", "FILE", "read the prompt from a file");
  auto& n_predict = a.integer("-n,--n-predict", 128, "tokens to generate; -1 = until EOS or context end", -1, 1'000'000'000);
  auto& n_ctx = a.integer("-c,--ctx-size", 0, "context length; 0 = the model's max_position_embeddings");
  auto& threads = a.threads();
  auto& stops = a.list("--stop", "TEXT", "stop when this text is generated");
  auto& ignore_eos = a.flag("--ignore-eos", "keep generating past the end-of-sequence token");
  auto& no_bos = a.flag("--no-bos", "do not prepend BOS to the prompt");
  auto& verbose = a.flag("-v,--verbose", "log model and timing details to stderr");
  SamplingFlags sf = add_sampling_flags(a);
  if (!a.parse(argv)) return a.exit_code();
  if (!prompt.empty() && !file.empty()) usage_error("-p and -f: give one prompt, not both");
  std::string text = file.empty() ? prompt : read_file(file);
  kernels::set_num_threads(int(threads));
  generate::GenerateOptions opt;
  opt.sampler = sampler_config(sf);
  opt.n_predict = int(n_predict);
  opt.stop = stops;
  opt.stop_at_eos = !ignore_eos;

  engine::Session lm = load_model(model, tokenizer);
  engine::Context ctx = lm.new_context(n_ctx, kCtxSizeFlag);
  std::vector<int> ids = lm.tokenizer->encode(text, !no_bos);
  if (ids.empty()) fail("-p/--prompt", "", "empty after tokenization (and --no-bos given)");
  if (verbose)
    log_info("generate", model + ": " + std::to_string(lm.config().num_hidden_layers) + " layers, d=" +
                             std::to_string(lm.config().hidden_size) + ", vocab " + std::to_string(lm.config().vocab_size) +
                             ", ctx " + std::to_string(ctx.n_ctx()) + ", " + std::to_string(kernels::num_threads()) +
                             " threads, " + kernels::cpu().describe() + "; seed " + std::to_string(opt.sampler.seed),
             {{"model", model}, {"seed", opt.sampler.seed}, {"n_ctx", ctx.n_ctx()}, {"threads", kernels::num_threads()}});
  generate::GenerateResult r = generate::generate(ctx, *lm.tokenizer, ids, opt, [](const std::string& s) {
    std::fwrite(s.data(), 1, s.size(), stdout);
    std::fflush(stdout);
    return true;
  });
  size_t nd = r.tokens.size();
  if (!json_logs() && log_level() <= LogLevel::Info) std::fputc('\n', stderr);  // after the streamed text
  char buf[200];
  std::snprintf(buf, sizeof buf, "prefill %d tokens in %.3f s (%.1f tok/s); decode %zu tokens in %.3f s (%.1f tok/s); stop: %s",
                r.n_prompt, r.prefill_s, r.n_prompt / std::max(r.prefill_s, 1e-9), nd, r.decode_s,
                nd / std::max(r.decode_s, 1e-9), r.stop_reason.c_str());
  log_info("generate", buf,
           {{"n_prompt", r.n_prompt}, {"prefill_s", r.prefill_s}, {"n_decoded", nd}, {"decode_s", r.decode_s},
            {"stop_reason", r.stop_reason}});
  return 0;
}

static Register reg("generate", "complete a prompt (streams the continuation to stdout)", run_generate);

}  // namespace solar::cli
