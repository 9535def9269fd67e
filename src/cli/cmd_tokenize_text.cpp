// solar tokenize-text — print the token ids (and pieces) of a text: a
// debugging aid for tokenizer mismatches.
#include <cstdio>

#include "cli/cli.h"
#include "core/error.h"
#include "formats/load.h"
#include "tokenizer/tokenizer.h"

namespace solar::cli {

static int run_tokenize_text(const std::vector<std::string>& argv) {
  Args a("tokenize-text", "solar tokenize-text -m MODEL_OR_TOKENIZER -p TEXT [options]");
  auto& model = a.str("-m,--model", "PATH", "tokenizer.model, tokenizer.bin, .gguf, or an HF folder");
  auto& prompt = a.str("-p,--prompt", "TEXT", "text to tokenize");
  auto& vocab = a.integer("--vocab-size", 0, "vocab size for a llama2.c tokenizer.bin (default: read to the end)", 0, 1 << 24);
  auto& no_bos = a.flag("--no-bos", "do not add BOS");
  auto& pieces = a.flag("--show-pieces", "print id:piece instead of ids");
  if (!a.parse(argv)) return a.exit_code();
  if (model.empty()) fail("-m/--model", "", "required");
  auto tok = formats::open_tokenizer(model, int(vocab));
  auto ids = tok->encode(prompt, !no_bos);
  for (size_t i = 0; i < ids.size(); i++) {
    if (pieces) printf("%s%d:%s", i ? " " : "", ids[i], tok->id_to_piece(ids[i]).c_str());
    else printf("%s%d", i ? " " : "", ids[i]);
  }
  printf("\n");
  return 0;
}

static Register reg("tokenize-text", "print the token ids of a text", run_tokenize_text);

}  // namespace solar::cli
