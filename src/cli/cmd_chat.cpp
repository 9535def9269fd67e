// solar chat — interactive multi-turn chat with a chat template.
//
// Each line on stdin is a user turn (end a line with '\' to continue it on
// the next); "/reset" starts over, "/exit" or EOF quits. The KV cache is
// reused across turns: only tokens after the longest common prefix with the
// previous prompt are evaluated.
#include <unistd.h>

#include <cstdio>
#include <iostream>

#include "chat/chat.h"
#include "cli/common.h"
#include "core/error.h"
#include "kernels/kernels.h"

namespace solar::cli {

static int run_chat(const std::vector<std::string>& argv) {
  Args a("chat", "solar chat -m MODEL [--chat-template solar|llama2|mistral|chatml] [-sys TEXT] [options]");
  auto& model = a.str("-m,--model", "PATH", "HF folder, .gguf file or llama2.c .bin");
  auto& tokenizer = a.str("--tokenizer", "PATH", "tokenizer.model / tokenizer.bin (default: beside the model)");
  auto& tmpl = a.str("--chat-template", "NAME",
                     "solar, llama2, mistral or chatml (default: detected from tokenizer_config.json, else solar)");
  auto& system = a.str("-sys,--system-prompt", "TEXT", "system message");
  auto& n_predict = a.integer("-n,--n-predict", 512, "max tokens per reply; -1 = until end of turn");
  auto& n_ctx = a.integer("-c,--ctx-size", 0, "context length; 0 = the model's max_position_embeddings");
  auto& threads = a.threads();
  SamplingFlags sf = add_sampling_flags(a);
  if (!a.parse(argv)) return a.exit_code();
  kernels::set_num_threads(int(threads));
  auto lm = load_model(model, tokenizer);
  ChatTemplate t = !tmpl.empty() ? parse_chat_template(tmpl) : detect_chat_template(lm->ck.tokenizer_config);
  if (t == ChatTemplate::None) t = ChatTemplate::Solar;
  GenerateOptions opt;
  opt.sampler = sampler_config(sf);
  opt.n_predict = int(n_predict);
  opt.stop = stop_strings(t);
  Context ctx(*lm->model, context_size(*lm, n_ctx));
  const bool tty = isatty(STDIN_FILENO);
  std::fprintf(stderr, "solar chat: %s, template %s, context %d. /reset to start over, /exit to quit.\n",
               model.c_str(), chat_template_name(t).c_str(), ctx.n_ctx());

  std::vector<ChatMessage> msgs;
  if (!system.empty()) msgs.push_back({"system", system});
  std::vector<int> cached;  // tokens whose keys/values are in ctx
  std::string line;
  while (true) {
    if (tty) std::fputs("\n> ", stderr);
    std::string user;
    bool more = true, got = false;
    while (more && std::getline(std::cin, line)) {
      got = true;
      more = !line.empty() && line.back() == '\\';
      if (more) line.pop_back();
      user += line + (more ? "\n" : "");
    }
    if (!got) break;
    if (user == "/exit") break;
    if (user == "/reset") {
      msgs.resize(system.empty() ? 0 : 1);
      cached.clear();
      ctx.truncate(0);
      std::fputs("(conversation reset)\n", stderr);
      continue;
    }
    if (user.empty()) continue;
    msgs.push_back({"user", user});
    std::vector<int> ids = encode_chat(*lm->tok, t, msgs, true);
    size_t p = 0;
    while (p < cached.size() && p < ids.size() && cached[p] == ids[p]) ++p;
    if (p == ids.size()) --p;  // at least one token must be evaluated for logits
    ctx.truncate(int(p));
    if (int(ids.size()) + 1 >= ctx.n_ctx()) {
      std::fprintf(stderr, "solar chat: the conversation (%zu tokens) no longer fits the context (%d); /reset\n",
                   ids.size(), ctx.n_ctx());
      msgs.pop_back();
      continue;
    }
    std::vector<int> suffix(ids.begin() + long(p), ids.end());
    GenerateResult r = generate(ctx, *lm->tok, suffix, opt, [](const std::string& s) {
      std::fwrite(s.data(), 1, s.size(), stdout);
      std::fflush(stdout);
      return true;
    });
    std::fputc('\n', stdout);
    std::fflush(stdout);
    cached = ids;
    cached.insert(cached.end(), r.tokens.begin(), r.tokens.end());
    cached.resize(size_t(ctx.n_past()));
    std::string reply = r.text;
    while (!reply.empty() && (reply.back() == ' ' || reply.back() == '\n')) reply.pop_back();
    msgs.push_back({"assistant", reply});
    std::fprintf(stderr, "[%zu tokens, %.1f tok/s]\n", r.tokens.size(), r.tokens.size() / std::max(r.decode_s, 1e-9));
  }
  return 0;
}

static Register reg("chat", "interactive multi-turn chat with a chat template", run_chat);

}  // namespace solar::cli
