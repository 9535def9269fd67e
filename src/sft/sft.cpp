// SftSource (rows, packing, batches) and run_sft (loading, the trainer).
#include "sft/sft.h"

#include <tuple>

#include <algorithm>
#include <optional>
#include <set>

#include "core/error.h"
#include "core/log.h"
#include "core/progress.h"
#include "core/rng.h"
#include "formats/load.h"
#include "train/layers.h"
#include "train/net.h"

namespace solar::sft {

namespace {

// Cuts or drops what does not fit and what has nothing to learn; counts both.
std::vector<Example> fit(std::vector<Example> in, const SourceOptions& o, Counts* counts) {
  std::vector<Example> out;
  for (Example& e : in) {
    if (e.ids.size() > size_t(o.max_length)) {
      if (o.truncation_mode == "skip") {
        ++counts->too_long;
        continue;
      }
      e.ids.resize(o.max_length), e.train.resize(o.max_length);
      ++counts->truncated;
    }
    if (std::find(e.train.begin() + std::min<size_t>(1, e.train.size()), e.train.end(), 1) == e.train.end()) {
      ++counts->no_loss;
      continue;
    }
    out.push_back(std::move(e));
  }
  return out;
}

// One example a row, or best-fit decreasing into rows of max_length tokens
// (TRL's "bfd" packing): longest first, each into the fullest row it fits.
std::vector<std::vector<uint32_t>> make_rows(const std::vector<Example>& ex, int max_length, bool packing) {
  std::vector<std::vector<uint32_t>> rows;
  if (!packing) {
    for (uint32_t i = 0; i < ex.size(); i++) rows.push_back({i});
    return rows;
  }
  std::vector<uint32_t> order(ex.size());
  for (uint32_t i = 0; i < order.size(); i++) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return ex[a].ids.size() > ex[b].ids.size(); });
  std::set<std::pair<size_t, size_t>> space;  // (tokens left, row)
  for (uint32_t i : order) {
    const size_t n = ex[i].ids.size();
    auto it = space.lower_bound({n, 0});
    size_t row;
    size_t left = max_length - n;
    if (it == space.end()) {
      row = rows.size();
      rows.emplace_back();
    } else {
      row = it->second, left = it->first - n;
      space.erase(it);
    }
    rows[row].push_back(i);
    space.insert({left, row});
  }
  return rows;
}

}  // namespace

SftSource::SftSource(std::vector<Example> train, std::vector<Example> val, int vocab_size, const SourceOptions& o,
                     Counts* counts)
    : vocab_(vocab_size), o_(o) {
  if (o.truncation_mode != "keep_start" && o.truncation_mode != "skip")
    fail("--truncation-mode", "", "expected keep_start or skip, got '" + o.truncation_mode + "'");
  if (o.max_length < 2) fail("--max-length", "", "expected at least 2 tokens, got " + std::to_string(o.max_length));
  if (o.batch_size < 1) fail("--batch-size", "", "expected at least 1, got " + std::to_string(o.batch_size));
  train_ = fit(std::move(train), o, counts);
  Counts ignored;  // held-out examples are fitted alike but counted apart
  val_ = fit(std::move(val), o, &ignored);
  if (train_.empty()) fail("sft", "data", "expected at least one training example with tokens to learn, got none");
  for (const auto* set : {&train_, &val_})
    for (const Example& e : *set)
      for (int32_t id : e.ids)
        if (id < 0 || id >= vocab_size)
          fail("sft", "tokens", "expected ids below the model's vocab_size " + std::to_string(vocab_size) +
                                    ", got " + std::to_string(id) + " (a tokenizer of another model?)");
  train_rows_ = make_rows(train_, o.max_length, o.packing);
  val_rows_ = make_rows(val_, o.max_length, o.packing);
}

int64_t SftSource::train_tokens() const {
  int64_t n = 0;
  for (const Example& e : train_)
    for (size_t i = 1; i < e.train.size(); i++) n += e.train[i];
  return n;
}

// The rows of one epoch in order: a Fisher–Yates shuffle keyed by (seed, epoch).
const std::vector<uint32_t>& SftSource::epoch_order(uint64_t epoch) const {
  auto it = orders_.find(epoch);
  if (it != orders_.end()) return it->second;
  if (orders_.size() >= 2) orders_.erase(orders_.begin());
  std::vector<uint32_t> p(train_rows_.size());
  for (uint32_t i = 0; i < p.size(); i++) p[i] = i;
  const uint64_t key = splitmix64(rng_key(o_.seed, "sft/epoch") ^ epoch);
  for (size_t i = p.size(); i > 1; i--) std::swap(p[i - 1], p[size_t(rng_uniform64(key, i) * double(i))]);
  return orders_[epoch] = std::move(p);
}

void SftSource::train_batch(uint64_t index, train::Batch& out) const {
  const uint64_t n = train_rows_.size();
  std::vector<uint32_t> pick;
  for (int r = 0; r < o_.batch_size; r++) {
    const uint64_t slot = index * uint64_t(o_.batch_size) + uint64_t(r);
    pick.push_back(epoch_order(slot / n)[slot % n]);
  }
  fill(train_, train_rows_, pick, out);
}

uint64_t SftSource::val_batches() const { return (val_rows_.size() + o_.batch_size - 1) / o_.batch_size; }

void SftSource::val_batch(uint64_t i, train::Batch& out) const {
  if (i >= val_batches()) BatchSource::val_batch(i, out);
  std::vector<uint32_t> pick;
  for (uint64_t r = i * o_.batch_size; r < std::min<uint64_t>(val_rows_.size(), (i + 1) * o_.batch_size); r++)
    pick.push_back(uint32_t(r));
  fill(val_, val_rows_, pick, out);
}

// Rows as wide as the longest picked one (T+1 tokens), padded with pad_id
// (weight 0). Packed rows get positions and example numbers; the padding is
// an example of its own.
void SftSource::fill(const std::vector<Example>& ex, const Rows& rows, const std::vector<uint32_t>& pick,
                     train::Batch& out) const {
  size_t width = 2;
  for (uint32_t p : pick) {
    size_t n = 0;
    for (uint32_t e : rows[p]) n += ex[e].ids.size();
    width = std::max(width, n);
  }
  const int B = int(pick.size()), T = int(width) - 1;
  out.B = B, out.T = T;
  out.tokens.assign(size_t(B) * width, o_.pad_id);
  out.weight.assign(size_t(B) * T, 0.f);
  out.pos.clear(), out.seg.clear(), out.ids.assign(pick.begin(), pick.end());
  if (o_.packing) out.pos.assign(size_t(B) * T, 0), out.seg.assign(size_t(B) * T, 0);
  for (int r = 0; r < B; r++) {
    const auto& row = rows[pick[r]];
    size_t at = 0;
    for (size_t k = 0; k < row.size(); k++) {
      const Example& e = ex[row[k]];
      for (size_t i = 0; i < e.ids.size(); i++, at++) {
        out.tokens[r * width + at] = e.ids[i];
        if (i > 0) out.weight[r * size_t(T) + at - 1] = e.train[i];
        if (o_.packing && at < size_t(T)) out.pos[r * size_t(T) + at] = int32_t(i), out.seg[r * size_t(T) + at] = int32_t(k);
      }
    }
    for (size_t p = 0; o_.packing && at < size_t(T); at++, p++)
      out.pos[r * size_t(T) + at] = int32_t(p), out.seg[r * size_t(T) + at] = int32_t(row.size());
  }
}

double sft_loss(train::Net& model, const train::Batch& batch, float grad_scale, train::Metrics* metrics) {
  const bool train = grad_scale != 0;
  model.forward(batch, train);
  const int64_t N = int64_t(batch.B) * batch.T, V = model.config().vocab_size;
  const float* logits = model.logits();
  const int32_t* targets = model.targets();
  int64_t hits = 0, counted = 0;
#pragma omp parallel for reduction(+ : hits, counted) if (N * V > (1 << 16))
  for (int64_t n = 0; n < N; n++) {
    if (!batch.weight.empty() && batch.weight[n] == 0) continue;
    const float* row = logits + n * V;
    hits += std::max_element(row, row + V) - row == targets[n];
    counted++;
  }
  if (metrics && counted) (*metrics)["mean_token_accuracy"] = double(hits) / double(counted);
  const double loss = train::cross_entropy<float>(model.logits(), targets, N, V, grad_scale,
                                                  batch.weight.empty() ? nullptr : batch.weight.data());
  if (train) model.backward(model.logits(), 1.0f);
  return loss;
}

namespace {

std::string summary(const std::string& what, const Counts& c, size_t kept) {
  return what + ": " + std::to_string(c.records) + " records, " + std::to_string(kept) + " examples kept; skipped " +
         std::to_string(c.empty) + " empty, " + std::to_string(c.too_long) + " too long, " + std::to_string(c.no_loss) +
         " with no completion token left; truncated " + std::to_string(c.truncated);
}

}  // namespace

std::vector<Example> encode_records(const tokenizer::Tokenizer& tok, const std::vector<Record>& recs,
                                    const EncodeOptions& o, const std::string& path) {
  std::vector<Example> out;
  for (const Record& r : recs) {
    try {
      out.push_back(encode(tok, r, o));
    } catch (const Error& e) {
      fail(path + ":" + std::to_string(r.line) + ": " + e.what());
    }
  }
  return out;
}

std::pair<std::vector<Record>, std::vector<Record>> split_records(std::vector<Record> recs, double fraction,
                                                                  uint64_t seed) {
  std::pair<std::vector<Record>, std::vector<Record>> out;
  const uint64_t key = rng_key(seed, "sft/eval-split");
  for (size_t i = 0; i < recs.size(); i++)
    (rng_uniform64(key, i) < fraction ? out.second : out.first).push_back(std::move(recs[i]));
  return out;
}

ResponseEval evaluate_responses(train::Net& net, const std::vector<Example>& examples, int max_length) {
  ResponseEval e;
  if (examples.empty()) return e;
  SourceOptions so;
  so.max_length = max_length, so.batch_size = 4;
  Counts counts;
  SftSource src(examples, examples, net.config().vocab_size, so, &counts);
  train::Batch b;
  double loss = 0, hits = 0;
  for (uint64_t i = 0; i < src.val_batches(); ++i) {
    src.val_batch(i, b);
    double w = b.weight.empty() ? double(b.B) * b.T : 0;
    for (float x : b.weight) w += x;
    train::Metrics m;
    const double l = sft_loss(net, b, 0.f, &m);
    loss += l * w, hits += m["mean_token_accuracy"] * w, e.tokens += int64_t(w);
  }
  e.examples = int64_t(src.val_examples());
  if (e.tokens) e.loss = loss / double(e.tokens), e.token_accuracy = hits / double(e.tokens);
  return e;
}

void run_sft(const SftConfig& c) {
  if (c.data.empty()) fail("--data", "", "expected a JSONL file of training records");
  if (c.train.init_from.empty()) fail("-m/--model", "", "expected the model to fine-tune (HF folder, .gguf, llama2.c .bin)");
  if (!(c.eval_split >= 0 && c.eval_split < 1))
    fail("--eval-split", "", "expected a fraction in [0, 1), got " + std::to_string(c.eval_split));
  if (c.eval_split > 0 && !c.eval_file.empty()) fail("--eval-split", "", "expected either --eval-split or --eval-file, got both");

  std::string tok_path;
  int vocab = 0;
  chat::ChatTemplate tmpl = chat::ChatTemplate::None;
  {
    model::Checkpoint ck = formats::load_checkpoint(c.train.init_from, {c.tokenizer});
    tok_path = !c.tokenizer.empty() ? c.tokenizer : ck.tokenizer_path;
    vocab = ck.config.vocab_size;
    if (c.max_length > ck.config.max_position_embeddings)
      fail("--max-length", "", "expected <= max_position_embeddings " + std::to_string(ck.config.max_position_embeddings) +
                                   " of " + c.train.init_from + ", got " + std::to_string(c.max_length));
    tmpl = !c.chat_template.empty() ? chat::parse_chat_template(c.chat_template)
                                    : chat::detect_chat_template(ck.tokenizer_config);
  }
  if (tmpl == chat::ChatTemplate::None) tmpl = chat::ChatTemplate::Solar;
  if (tok_path.empty()) fail(c.train.init_from, "tokenizer", "expected a tokenizer beside the model (or pass --tokenizer)");
  auto tok = formats::open_tokenizer(tok_path, vocab);

  Counts counts, val_counts;
  std::vector<Record> recs = read_records(c.data, c.fields, &counts), val_recs;
  if (!c.eval_file.empty()) {
    val_recs = read_records(c.eval_file, c.fields, &val_counts);
  } else if (c.eval_split > 0) {
    std::tie(recs, val_recs) = split_records(std::move(recs), c.eval_split, c.train.seed);
  }
  const EncodeOptions eo{tmpl, c.completion_only_loss, c.assistant_only_loss};
  SourceOptions so{c.max_length, c.train.batch_size, c.packing, c.truncation_mode, c.train.seed,
                   tok->eos_id() >= 0 ? tok->eos_id() : 0};
  auto source = std::make_shared<const SftSource>(encode_records(*tok, recs, eo, c.data),
                                                  encode_records(*tok, val_recs, eo, c.eval_file.empty() ? c.data : c.eval_file),
                                                  vocab, so, &counts);
  log_info("sft", summary(c.data, counts, source->train_examples()),
           {{"records", counts.records}, {"empty", counts.empty}, {"truncated", counts.truncated},
            {"too_long", counts.too_long}, {"no_loss", counts.no_loss}});
  log_info("sft", "template " + chat::chat_template_name(tmpl) + ", " + std::to_string(source->train_rows()) +
                      (c.packing ? " packed rows" : " rows") + " of up to " + std::to_string(c.max_length) +
                      " tokens, " + std::to_string(source->train_tokens()) + " loss tokens an epoch; " +
                      std::to_string(source->val_examples()) + " held-out examples");
  if (source->val_batches() == 0 && (c.eval_split > 0 || !c.eval_file.empty()))
    log_warn("sft", "no held-out example left: no validation loss");

  train::TrainConfig t = c.train;
  t.data_dir.clear();
  t.seq_len = c.max_length - 1;
  t.tokenizer = tok_path;
  const int64_t all_val = std::max<int64_t>(1, int64_t(source->val_batches()));
  t.eval_batches = t.eval_batches > 0 ? std::min(t.eval_batches, all_val) : all_val;
  train::Trainer trainer(t, source);
  if (trainer.finished()) return;
  std::optional<Progress> bar;
  if (!t.quiet) bar.emplace("sft", t.steps, "tok", stderr, 5);
  trainer.run(bar ? &*bar : nullptr, sft_loss);
}

}  // namespace solar::sft
