// `solar sft`: supervised fine-tuning on JSONL instruction data (TRL's formats).
#include "cli/cli.h"
#include "cli/train_flags.h"
#include "core/error.h"
#include "sft/sft.h"

namespace {

bool boolean(const std::string& flag, const std::string& v) {
  if (v == "true" || v == "1") return true;
  if (v == "false" || v == "0") return false;
  solar::fail(flag, "", "expected true or false, got '" + v + "'");
}

int run(const std::vector<std::string>& argv) {
  solar::cli::Args a("sft",
                     "solar sft -m MODEL --data FILE.jsonl -o OUT [options]\n"
                     "  fine-tunes on {messages} / {prompt, completion} / {text} records (or --format alpaca|gsm8k)\n"
                     "  through a chat template, loss on the assistant tokens; writes what `solar train` writes;\n"
                     "  --eval-batches 0 (the default) evaluates every held-out batch");
  solar::sft::SftConfig d;
  d.train.lr = 2e-5f, d.train.weight_decay = 0.f, d.train.min_lr_ratio = 0.f, d.train.lr_schedule = "linear";
  d.train.eval_batches = 0;
  auto& model = a.str("-m,--model", "MODEL", "the model to fine-tune: HF folder, .gguf or llama2.c .bin");
  auto& tokenizer = a.str("--tokenizer", "PATH", "tokenizer (default: the model's)");
  auto& data = a.str("--data", "FILE", "training records, JSONL");
  auto& eval_file = a.str("--eval-file", "FILE", "held-out records, JSONL (validation loss on their responses)");
  auto& eval_split = a.number("--eval-split", 0, "or hold out this fraction of --data (by --seed)");
  auto& format = a.str("--format", "F", "auto, messages, prompt-completion, text, alpaca or gsm8k", d.fields.format);
  auto& text_field = a.str("--dataset-text-field", "NAME", "field of text records", d.fields.text_field);
  auto& messages_field = a.str("--messages-field", "NAME", "field of conversations", d.fields.messages_field);
  auto& prompt_field = a.str("--prompt-field", "NAME", "field of prompts", d.fields.prompt_field);
  auto& completion_field = a.str("--completion-field", "NAME", "field of completions", d.fields.completion_field);
  auto& tmpl = a.str("--chat-template", "NAME", "solar, llama2, mistral or chatml (default: the model's, else solar)");
  auto& completion_only = a.str("--completion-only-loss", "BOOL", "prompt/completion: loss on completion tokens only",
                                "true");
  auto& assistant_only = a.str("--assistant-only-loss", "BOOL", "messages: loss on assistant tokens only", "true");
  auto& packing = a.flag("--packing", "pack several examples a row (attention never crosses examples)");
  auto& max_length = a.integer("--max-length", d.max_length, "tokens per row");
  auto& truncation = a.str("--truncation-mode", "MODE", "longer examples: keep_start (cut) or skip",
                           d.truncation_mode);
  auto tf = solar::cli::add_train_flags(a, d.train);
  if (!a.parse(argv)) return a.exit_code();

  solar::sft::SftConfig c;
  solar::cli::apply_train_flags(tf, c.train);
  if (*tf.eval_batches < 0) solar::fail("--eval-batches", "", "expected >= 0 (0: all held-out batches)");
  c.train.init_from = model;
  c.tokenizer = tokenizer, c.data = data, c.eval_file = eval_file, c.eval_split = eval_split;
  c.fields = {format, text_field, messages_field, prompt_field, completion_field};
  c.chat_template = tmpl;
  c.completion_only_loss = boolean("--completion-only-loss", completion_only);
  c.assistant_only_loss = boolean("--assistant-only-loss", assistant_only);
  c.packing = packing;
  solar::cli::check_range("--max-length", double(max_length), 2, 1 << 24);
  c.max_length = int(max_length), c.truncation_mode = truncation;
  solar::sft::run_sft(c);
  return 0;
}

solar::cli::Register reg("sft", "supervised fine-tuning on JSONL chat / instruction data (TRL's formats)", run);

}  // namespace
