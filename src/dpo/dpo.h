// solar/dpo/dpo.h — Direct Preference Optimisation on train::Trainer, with
// TRL's definitions (trl.DPOTrainer) so results compare one to one.
//
// A pair is a prompt and two completions. Its rows are prompt+chosen and
// prompt+rejected; log-probabilities are summed over completion tokens only
// (as TRL 1.16: tokens of the prompt and of prompt+completion, BOS first and
// EOS last for text; the completion starts where the two diverge).
// With h = (πc − πr) − (refc − refr), the pair losses (ε = label_smoothing;
// TRL 1.16 applies it to robust only):
//   sigmoid  −logσ(βh)                                    (TRL's default)
//   robust   (−(1−ε)·logσ(βh) + ε·logσ(−βh)) / (1−2ε)
//   hinge    relu(1 − βh)
//   ipo      (h − 1/(2β))², every log-prob divided by its completion length
// rewards/chosen = β·(πc − refc), rewards/rejected = β·(πr − refr).
// The reference log-probs are computed once, before training, and cached
// beside the run (ref_logps.json, keyed by hashes of the reference weights
// and the tokenized pairs), so the reference model is never in memory while
// the policy trains, and a resumed run reuses the cache.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "chat/chat.h"
#include "tokenizer/tokenizer.h"
#include "train/batch.h"
#include "train/trainer.h"

namespace solar::dpo {

enum class LossType { Sigmoid, IPO, Hinge, Robust };
LossType parse_loss_type(const std::string& s);  // "sigmoid", "ipo", "hinge", "robust"; throws otherwise
const char* loss_type_name(LossType t);

struct LossConfig {
  LossType type = LossType::Sigmoid;
  double beta = 0.1, label_smoothing = 0.0;
};

// One pair's loss from its (already length-normalised for IPO) log-probs,
// and its derivatives with respect to the policy log-probs.
struct PairLoss {
  double loss, d_chosen, d_rejected;
};
PairLoss pair_loss(const LossConfig& c, double policy_chosen, double policy_rejected, double ref_chosen,
                   double ref_rejected);
// The same from log-probs summed over completions of n_chosen and
// n_rejected tokens (IPO divides by them; the others ignore them); the
// derivatives are with respect to the summed policy log-probs.
PairLoss summed_pair_loss(const LossConfig& c, double policy_chosen, double policy_rejected, double ref_chosen,
                          double ref_rejected, double n_chosen, double n_rejected);

// A tokenized pair: rows prompt+chosen and prompt+rejected.
struct Pair {
  std::vector<int32_t> prompt, chosen, rejected;
};

struct PairStats {
  int64_t read = 0, empty = 0, identical = 0, too_long = 0;  // all but read are skipped
};

// Reads JSONL (".gz": gzip) pairs, one object a line, in either form:
//   {"prompt", "chosen", "rejected"}: strings, or TRL's conversational form
//       (prompt a list of {role, content}, chosen/rejected lists holding the
//       assistant turn(s)); messages go through `tmpl` (chat/chat.h);
//   {"chosen", "rejected"} only (Anthropic HH-RLHF): full dialogues; the
//       prompt is their common prefix less a space it ends on (TRL's
//       extract_prompt: up to the last "\n\nAssistant:" for HH). A text
//       with "\n\nHuman:" or "\n\nAssistant:" turns must end in an
//       assistant turn (an error naming the field otherwise).
// Errors name the file, the line and the field. Pairs with an empty
// completion (HH has some), identical completions, or more than max_len
// tokens (prompt + the longer completion) are counted, logged and skipped.
std::vector<Pair> read_pairs(const std::string& path, const tokenizer::Tokenizer& tok, chat::ChatTemplate tmpl,
                             int max_len, PairStats* stats);

// Rows of micro-batches: B pairs → 2B rows (chosen rows first, then rejected),
// T+1 = max_len tokens, padded with EOS at weight 0; weight 1 on completion
// targets; ids = the pair index of each row.
void fill_batch(const std::vector<Pair>& pairs, const std::vector<int64_t>& which, int T, int pad, train::Batch& out);

// Train pairs in a seeded order (index → pairs, so resume is exact), val pairs
// all in order; ids number train pairs 0..N-1 and val pairs N.. .
class PairSource : public train::BatchSource {
 public:
  PairSource(std::vector<Pair> train, std::vector<Pair> val, int pairs_per_batch, int T, int vocab, int pad,
             uint64_t seed);
  int vocab_size() const override { return vocab_; }
  void train_batch(uint64_t index, train::Batch& out) const override;
  uint64_t val_batches() const override;
  void val_batch(uint64_t i, train::Batch& out) const override;
  // Every pair (train then val) in micro-batches of pairs_per_batch, for the
  // reference pass: index i covers pairs [i·B, min((i+1)·B, N)).
  uint64_t all_batches() const;
  void all_batch(uint64_t i, train::Batch& out) const;
  int64_t num_pairs() const { return int64_t(all_.size()); }
  const Pair& pair(int64_t i) const { return all_[size_t(i)]; }  // train pairs, then val pairs
  uint64_t data_hash() const;  // of every token of every pair, in order

 private:
  std::vector<Pair> all_;
  int64_t n_train_;
  int B_, T_, vocab_, pad_;
  std::vector<int64_t> order_;
};

// Summed completion log-probs per pair: [2·pairs] = chosen, rejected of each.
struct RefLogps {
  uint64_t model_hash = 0, data_hash = 0;
  std::vector<double> logps;
};
// FNV-1a over the checkpoint's tensor names, shapes and bytes.
uint64_t model_hash(const std::string& model_path);
// The reference pass: forward only, one micro-batch at a time.
RefLogps reference_logps(const std::string& model_path, const PairSource& src, kernels::Precision precision);
// Reads `path` when it exists (refusing a cache of another model or data),
// else computes and writes it atomically.
RefLogps load_or_compute_reference(const std::string& path, const std::string& model_path, const PairSource& src,
                                   kernels::Precision precision);

// The DPO objective over PairSource batches: mean pair loss; metrics as TRL
// names them (rewards/chosen, rewards/rejected, rewards/accuracies,
// rewards/margins, logps/chosen, logps/rejected).
train::Objective objective(const LossConfig& c, std::shared_ptr<const RefLogps> ref);

// What `solar dpo` runs: pairs read and tokenized, the reference cached in
// OUT/ref_logps.json, then the policy trained (train.batch_size = pairs per
// micro-batch; train.seq_len is set from max_length). Throws solar::Error on
// bad data or configuration before any step.
struct DpoConfig {
  train::TrainConfig train;  // init_from = the policy's starting point
  std::string data, eval_data;
  int64_t eval_pairs = 0;     // without eval_data: the last eval_pairs of data are held out
  int shard = 0, shards = 1;  // train on the pairs i (of those not held out) with i % shards == shard
  std::string ref_model;      // "" = init_from
  std::string tokenizer;      // "" = the model's
  std::string chat_template = "solar";
  LossConfig loss;
  int max_length = 512;
  std::string dump_logps;  // non-empty: write dump_logps() there instead of training
};
void run_dpo(const DpoConfig& c);

// How a model ranks held-out pairs: the share whose summed chosen completion
// log-prob is above the rejected one's, and the mean of that margin (nats).
struct PairEval {
  double accuracy = 0, margin = 0;
  int64_t pairs = 0;
};
PairEval evaluate_pairs(train::Net& net, std::vector<Pair> pairs, int max_len);

// Per-pair log-probs of `model_path` (policy) and the loss of every loss type
// (same β, ε): the JSON `solar dpo --dump-logps` writes for conformance tests.
std::string dump_logps(const std::string& model_path, const PairSource& src, const RefLogps& ref, const LossConfig& c,
                       kernels::Precision precision);

}  // namespace solar::dpo
