// solar chat — interactive multi-turn chat with a chat template.
//
// Each line on stdin is a user turn (end a line with '\' to continue it on
// the next); "/reset" starts over, "/exit" or EOF quits. The KV cache is
// reused across turns: only tokens after the longest common prefix with the
// previous prompt are evaluated.
//
// On a terminal, lines are read with libedit (editing keys, history). Ctrl-C
// during a reply stops it, as llama-cli does: the partial reply stays in the
// conversation and the template closes its turn. Ctrl-C at the prompt, or a
// second one before the reply has stopped, quits (status 130). When the
// conversation outgrows the context the oldest turns are dropped.
#include <editline/readline.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <clocale>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "chat/chat.h"
#include "cli/common.h"
#include "core/error.h"
#include "core/log.h"
#include "kernels/kernels.h"

namespace solar::cli {

static std::atomic<bool> g_replying{false}, g_cancel{false};
static_assert(std::atomic<bool>::is_always_lock_free, "the SIGINT handler needs a lock-free flag");

static void on_sigint(int) {
  if (g_replying.load() && !g_cancel.exchange(true)) return;
  // _exit is the way out that is async-signal-safe. At the prompt, libedit's own
  // handler has put the terminal back in cooked mode before passing the signal on.
  (void)!write(STDERR_FILENO, "\n", 1);
  _exit(130);
}

// libedit on a terminal; plain getline otherwise, so pipes and scripts never
// see editing escape codes.
static bool read_line(bool tty, const char* prompt, std::string& line) {
  if (!tty) return bool(std::getline(std::cin, line));
  char* s = readline(prompt);
  if (!s) return false;
  line = s;
  std::free(s);
  if (!line.empty()) add_history(line.c_str());
  return true;
}

static int run_chat(const std::vector<std::string>& argv) {
  Args a("chat", "solar chat -m MODEL [--chat-template solar|llama2|mistral|chatml] [-sys TEXT] [options]");
  auto& model = a.str("-m,--model", "PATH", "HF folder, .gguf file or llama2.c .bin");
  auto& tokenizer = a.str("--tokenizer", "PATH", "tokenizer.model / tokenizer.bin (default: beside the model)");
  auto& tmpl = a.str("--chat-template", "NAME",
                     "solar, llama2, mistral or chatml (default: detected from tokenizer_config.json, else solar)");
  auto& system = a.str("-sys,--system-prompt", "TEXT", "system message");
  auto& n_predict = a.integer("-n,--n-predict", 512, "max tokens per reply; -1 = until end of turn", -1, 1'000'000'000);
  auto& n_ctx = a.integer("-c,--ctx-size", 0, "context length; 0 = the model's max_position_embeddings");
  auto& threads = a.threads();
  SamplingFlags sf = add_sampling_flags(a);
  if (!a.parse(argv)) return a.exit_code();
  kernels::set_num_threads(int(threads));
  engine::Session lm = load_model(model, tokenizer);
  chat::ChatTemplate t = !tmpl.empty() ? chat::parse_chat_template(tmpl) : chat::detect_chat_template(lm.checkpoint->tokenizer_config);
  if (t == chat::ChatTemplate::None) t = chat::ChatTemplate::Solar;
  generate::GenerateOptions opt;
  opt.sampler = sampler_config(sf);
  opt.n_predict = int(n_predict);
  opt.stop = chat::stop_strings(t);
  engine::Context ctx = lm.new_context(n_ctx, kCtxSizeFlag);
  opt.cancel = &g_cancel;
  const bool tty = isatty(STDIN_FILENO);
  if (tty) {
    std::setlocale(LC_CTYPE, "");  // libedit edits UTF-8 only under a UTF-8 locale
    rl_instream = stdin;
    rl_outstream = stderr;  // stdout carries only the replies
  }
  struct sigaction sa = {};
  sa.sa_handler = on_sigint;
  sa.sa_flags = SA_RESTART;  // a reply's writes to stdout must not fail with EINTR
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  log_info("chat", model + ", template " + chat::chat_template_name(t) + ", context " + std::to_string(ctx.n_ctx()) +
                       ". /reset to start over, /exit to quit.");

  std::vector<chat::ChatMessage> msgs;
  if (!system.empty()) msgs.push_back({"system", system});
  // Room left for the reply when old turns must go: -n, at most half the context.
  const int reserve = std::min(n_predict < 0 ? ctx.n_ctx() : int(n_predict), ctx.n_ctx() / 2);
  std::vector<int> cached;  // tokens whose keys/values are in ctx
  std::string line;
  while (true) {
    if (tty) std::fputc('\n', stderr);
    std::string user;
    bool more = true, got = false;
    while (more && read_line(tty, got ? "... " : "> ", line)) {
      got = true;
      more = !line.empty() && line.back() == '\\';
      if (more) line.pop_back();
      user += line + (more ? "\n" : "");
    }
    if (!got) {
      if (tty) std::fputc('\n', stderr);  // Ctrl-D leaves the cursor after the prompt
      break;
    }
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
    std::vector<int> ids;
    if (int n = chat::drop_oldest_turns(*lm.tokenizer, t, msgs, size_t(ctx.n_ctx() - reserve), &ids))
      log_info("chat", "context full: dropped " + std::to_string(n) + " oldest turn" + (n == 1 ? "" : "s"));
    if (int(ids.size()) + 1 >= ctx.n_ctx()) {
      log_warn("chat", "the message (" + std::to_string(ids.size()) +
                           " tokens with the system prompt) does not fit the context (" + std::to_string(ctx.n_ctx()) +
                           ")");
      msgs.pop_back();
      continue;
    }
    size_t p = 0;
    while (p < cached.size() && p < ids.size() && cached[p] == ids[p]) ++p;
    if (p == ids.size()) --p;  // at least one token must be evaluated for logits
    ctx.truncate(int(p));
    std::vector<int> suffix(ids.begin() + long(p), ids.end());
    g_cancel = false;
    g_replying = true;
    generate::GenerateResult r = generate::generate(ctx, *lm.tokenizer, suffix, opt, [](const std::string& s) {
      std::fwrite(s.data(), 1, s.size(), stdout);
      std::fflush(stdout);
      return true;
    });
    g_replying = false;
    std::fputc('\n', stdout);
    std::fflush(stdout);
    cached = ids;
    cached.insert(cached.end(), r.tokens.begin(), r.tokens.end());
    cached.resize(size_t(ctx.n_past()));
    std::string reply = r.text;
    while (!reply.empty() && (reply.back() == ' ' || reply.back() == '\n')) reply.pop_back();
    msgs.push_back({"assistant", reply});
    if (r.stop_reason == "context")
      log_info("chat", "the reply filled the context (" + std::to_string(ctx.n_ctx()) + ") and was stopped");
    std::fprintf(stderr, "[%zu tokens, %.1f tok/s%s]\n", r.tokens.size(), r.tokens.size() / std::max(r.decode_s, 1e-9),
                 r.stop_reason == "cancelled" ? ", interrupted" : "");
  }
  return 0;
}

static Register reg("chat", "interactive multi-turn chat with a chat template", run_chat);

}  // namespace solar::cli
