// solar logits — print the model's logits for a token sequence (for
// conformance tests against other implementations, and debugging).
#include <algorithm>
#include <cstdio>
#include <numeric>
#include <sstream>

#include "cli/common.h"
#include "core/error.h"
#include "engine/engine.h"
#include "kernels/kernels.h"

namespace solar::cli {

static int run_logits(const std::vector<std::string>& argv) {
  Args a("logits", "solar logits -m MODEL (--ids 1,2,3 | -p TEXT) [--all] [--top N]");
  auto& model = a.str("-m,--model", "PATH", "HF folder, .gguf file or llama2.c .bin");
  auto& tokenizer = a.str("--tokenizer", "PATH", "tokenizer (only needed with -p)");
  auto& ids_s = a.str("--ids", "LIST", "comma-separated token ids");
  auto& prompt = a.str("-p,--prompt", "TEXT", "text to tokenize (with BOS)");
  auto& all = a.flag("--all", "logits for every position, not just the last");
  auto& top = a.integer("--top", 0, "print only the N largest logits per position, as id:logit (0 = all)", 0, INT32_MAX);
  auto& batch = a.integer("--batch", 0, "evaluate in chunks of N tokens (0 = one prefill; 1 = token by token)", 0, INT32_MAX);
  auto& threads = a.threads();
  if (!a.parse(argv)) return a.exit_code();
  kernels::set_num_threads(int(threads));
  std::vector<int> ids;
  engine::SessionOptions so;
  so.tokenizer = tokenizer;
  so.with_tokenizer = !prompt.empty();
  if (prompt.empty()) {
    if (ids_s.empty()) usage_error("give --ids or -p");
    std::stringstream ss(ids_s);
    std::string t;
    while (std::getline(ss, t, ',')) {
      try {
        ids.push_back(std::stoi(t));
      } catch (...) {
        fail("--ids", "", "expected comma-separated integers, got '" + t + "'");
      }
    }
  }
  engine::Session lm = engine::open_session(model, so);
  if (!prompt.empty()) ids = lm.tokenizer->encode(prompt, true);
  const int V = lm.config().vocab_size, T = int(ids.size());
  // The engine would refuse it too, but as a runtime error naming no flag.
  for (int id : ids)
    if (id < 0 || id >= V) fail("--ids", "", "expected token ids in [0, " + std::to_string(V) + "), got " + std::to_string(id));
  engine::Context ctx(lm.model);
  std::vector<float> out(size_t(T) * V);
  int step = batch > 0 ? int(batch) : T;
  for (int i = 0; i < T; i += step) {
    int n = std::min(step, T - i);
    ctx.eval(ids.data() + i, n, nullptr, out.data() + size_t(i) * V);
  }
  // One line per position: space-separated logits (%.7g), or with --top the
  // largest as id:logit, largest first (ties: lower id first).
  std::vector<int> order(static_cast<size_t>(V));
  for (int t = all ? 0 : T - 1; t < T; ++t) {
    const float* row = out.data() + size_t(t) * V;
    std::string line;
    char buf[48];
    if (top > 0) {
      int k = int(std::min<int64_t>(top, V));
      std::iota(order.begin(), order.end(), 0);
      std::partial_sort(order.begin(), order.begin() + k, order.end(),
                        [&](int x, int y) { return row[x] > row[y] || (row[x] == row[y] && x < y); });
      for (int i = 0; i < k; ++i) {
        std::snprintf(buf, sizeof buf, i ? " %d:%.7g" : "%d:%.7g", order[i], row[order[i]]);
        line += buf;
      }
    } else {
      for (int v = 0; v < V; ++v) {
        std::snprintf(buf, sizeof buf, v ? " %.7g" : "%.7g", row[v]);
        line += buf;
      }
    }
    line += '\n';
    std::fwrite(line.data(), 1, line.size(), stdout);
  }
  return 0;
}

static Register reg("logits", "print logits for a token sequence (conformance/debugging)", run_logits);

}  // namespace solar::cli
