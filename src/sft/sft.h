// solar/sft/sft.h — supervised fine-tuning (instruction tuning) on JSONL, the
// way TRL's SFTTrainer takes it, on the trainer of train/trainer.h.
//
// Records, one JSON object a line, in TRL's shapes:
//   {"messages": [{"role": "system"|"user"|"assistant", "content": …}, …]}
//   {"prompt": …, "completion": …}            (strings, or message lists)
//   {"text": …}                               (plain language modelling)
// or mapped from other shapes: --format alpaca ({instruction, input, output},
// or a seed task's {instruction, instances: [{input, output}, …]}), --format
// gsm8k ({question, answer}), or --prompt-field/--completion-field.
//
// Conversations go through a chat template (chat/chat.h) with the tokens of
// each assistant turn marked: every message's text is encoded on its own
// (special tokens as ids), so the marked tokens are exactly the reply's. The
// solar template has no end-of-turn token, so an EOS closes each reply (as
// SOLAR-Instruct generates it); text records get BOS … EOS.
//
// The loss counts the marked tokens only (assistant turns, completions) unless
// asked for all. Examples longer than --max-length are cut (keep_start) or
// skipped; each is then a row of its own, padded (unpacked), or packed with
// others best-fit-decreasing into rows of --max-length tokens: positions
// restart per example and attention never crosses examples (train/batch.h).
// The rows are shuffled per epoch by (seed, epoch), so batch i is a pure
// function of (seed, i) and a resumed run is exact.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "chat/chat.h"
#include "tokenizer/tokenizer.h"
#include "train/batch.h"
#include "train/trainer.h"

namespace solar::sft {

enum class Kind { Messages, PromptCompletion, Text };

// One record, whatever its JSONL shape. A prompt/completion pair is a user
// turn and an assistant turn (after a system message if the prompt was a list with one).
struct Record {
  Kind kind = Kind::Messages;
  std::vector<chat::ChatMessage> messages;
  std::string text;
  int64_t line = 0;  // 1-based line of the file
};

struct FieldMap {
  std::string format = "auto";  // auto, messages, prompt-completion, text, alpaca, gsm8k
  std::string text_field = "text", messages_field = "messages";
  std::string prompt_field = "prompt", completion_field = "completion";
};

// What loading and fitting dropped or changed, for the log.
struct Counts {
  int64_t records = 0;
  int64_t empty = 0;      // empty completion / no assistant reply: skipped
  int64_t truncated = 0;  // cut to --max-length (keep_start)
  int64_t too_long = 0;   // longer than --max-length, skipped (--truncation-mode skip)
  int64_t no_loss = 0;    // no token left for the loss after truncation: skipped
};

// Reads path; throws solar::Error "PATH:LINE: FIELD: expected …" on a record
// that is not one of the shapes above.
std::vector<Record> read_records(const std::string& path, const FieldMap& map, Counts* counts);

// A tokenized example: ids, and for each id whether it is a target the loss counts.
struct Example {
  std::vector<int32_t> ids;
  std::vector<uint8_t> train;
};

struct EncodeOptions {
  chat::ChatTemplate chat_template = chat::ChatTemplate::Solar;
  bool completion_only_loss = true;  // prompt/completion records: loss on the completion only
  bool assistant_only_loss = true;   // messages: loss on assistant turns only
};
// Throws when the template cannot render the conversation or the tokenizer
// has no id for one of the template's special tokens.
Example encode(const tokenizer::Tokenizer& tok, const Record& r, const EncodeOptions& o);

// Records held out by a seeded coin of probability `fraction` per record:
// {kept, held out}. run_sft's --eval-split; the pipeline scores the same split.
std::pair<std::vector<Record>, std::vector<Record>> split_records(std::vector<Record> recs, double fraction,
                                                                  uint64_t seed);

// Every record encoded; an error names path:line.
std::vector<Example> encode_records(const tokenizer::Tokenizer& tok, const std::vector<Record>& recs,
                                    const EncodeOptions& o, const std::string& path);

// Rows of --max-length tokens as a train::BatchSource. Examples over
// max_length are cut or skipped first (truncation "keep_start" or "skip");
// examples with nothing to learn are dropped (counted).
struct SourceOptions {
  int max_length = 1024;  // tokens per row (T + 1)
  int batch_size = 8;
  bool packing = false;
  std::string truncation_mode = "keep_start";
  uint64_t seed = 1337;
  int pad_id = 0;
};
class SftSource : public train::BatchSource {
 public:
  SftSource(std::vector<Example> train, std::vector<Example> val, int vocab_size, const SourceOptions& o,
            Counts* counts);
  int vocab_size() const override { return vocab_; }
  void train_batch(uint64_t index, train::Batch& out) const override;
  uint64_t val_batches() const override;
  void val_batch(uint64_t i, train::Batch& out) const override;
  size_t train_rows() const { return train_rows_.size(); }
  size_t train_examples() const { return train_.size(); }
  size_t val_examples() const { return val_.size(); }
  int64_t train_tokens() const;  // tokens the loss counts, one epoch

 private:
  using Rows = std::vector<std::vector<uint32_t>>;  // example indices per row
  void fill(const std::vector<Example>& ex, const Rows& rows, const std::vector<uint32_t>& pick,
            train::Batch& out) const;
  const std::vector<uint32_t>& epoch_order(uint64_t epoch) const;
  std::vector<Example> train_, val_;
  Rows train_rows_, val_rows_;
  int vocab_;
  SourceOptions o_;
  mutable std::map<uint64_t, std::vector<uint32_t>> orders_;  // cache: the epochs last used
};

// The training objective: train::next_token_loss plus TRL's
// mean_token_accuracy (the share of loss tokens whose most likely next token
// is the target), logged per step and, as eval_mean_token_accuracy, per eval.
double sft_loss(train::Net& model, const train::Batch& batch, float grad_scale, train::Metrics* metrics);

// A model on the response tokens of held-out examples (forward only, one
// example a row, cut to max_length): the loss and TRL's token accuracy,
// weighted by tokens over all examples — val_loss, over every example.
struct ResponseEval {
  double loss = 0, token_accuracy = 0;
  int64_t examples = 0, tokens = 0;
};
ResponseEval evaluate_responses(train::Net& net, const std::vector<Example>& examples, int max_length);

struct SftConfig {
  train::TrainConfig train;  // init_from = the model; seq_len is set from max_length
  std::string data, eval_file, tokenizer;  // tokenizer: "" = the model's
  double eval_split = 0;                   // held-out fraction of data when no eval_file
  FieldMap fields;
  std::string chat_template;  // "" = the model's tokenizer_config.json, else solar
  bool completion_only_loss = true, assistant_only_loss = true, packing = false;
  int max_length = 1024;
  std::string truncation_mode = "keep_start";
};
// Loads, tokenizes and runs the trainer (progress bar unless quiet);
// throws solar::Error on bad data or configuration before any step.
void run_sft(const SftConfig& c);

}  // namespace solar::sft
