// solar/dpo/dpo.cpp — pairs, the reference cache, the pair losses and the objective.
#include "dpo/dpo.h"

#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>
#include <random>

#include "core/error.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/progress.h"
#include "engine/session.h"
#include "core/log.h"
#include "formats/load.h"
#include "train/layers.h"
#include "train/net.h"

namespace solar::dpo {

using json = nlohmann::json;

LossType parse_loss_type(const std::string& s) {
  if (s == "sigmoid") return LossType::Sigmoid;
  if (s == "ipo") return LossType::IPO;
  if (s == "hinge") return LossType::Hinge;
  if (s == "robust") return LossType::Robust;
  fail("--loss-type", "", "expected sigmoid, ipo, hinge or robust, got " + s);
}

const char* loss_type_name(LossType t) {
  switch (t) {
    case LossType::Sigmoid: return "sigmoid";
    case LossType::IPO: return "ipo";
    case LossType::Hinge: return "hinge";
    case LossType::Robust: return "robust";
  }
  return "?";
}

namespace {

double log_sigmoid(double x) { return x >= 0 ? -std::log1p(std::exp(-x)) : x - std::log1p(std::exp(x)); }
double sigmoid(double x) { return x >= 0 ? 1 / (1 + std::exp(-x)) : std::exp(x) / (1 + std::exp(x)); }

}  // namespace

PairLoss pair_loss(const LossConfig& c, double pc, double pr, double rc, double rr) {
  const double h = (pc - pr) - (rc - rr), b = c.beta, e = c.label_smoothing;
  double loss = 0, dh = 0;  // dh = d loss / d h
  switch (c.type) {
    case LossType::Sigmoid:
      loss = -log_sigmoid(b * h);
      dh = -b * sigmoid(-b * h);
      break;
    case LossType::Robust:
      loss = (-(1 - e) * log_sigmoid(b * h) + e * log_sigmoid(-b * h)) / (1 - 2 * e);
      dh = (-(1 - e) * b * sigmoid(-b * h) - e * b * sigmoid(b * h)) / (1 - 2 * e);
      break;
    case LossType::Hinge:
      loss = std::max(0.0, 1 - b * h);
      dh = 1 - b * h > 0 ? -b : 0;
      break;
    case LossType::IPO:
      loss = (h - 1 / (2 * b)) * (h - 1 / (2 * b));
      dh = 2 * (h - 1 / (2 * b));
      break;
  }
  return {loss, dh, -dh};
}

PairLoss summed_pair_loss(const LossConfig& c, double pc, double pr, double rc, double rr, double nc, double nr) {
  if (c.type != LossType::IPO) return pair_loss(c, pc, pr, rc, rr);
  PairLoss l = pair_loss(c, pc / nc, pr / nr, rc / nc, rr / nr);
  return {l.loss, l.d_chosen / nc, l.d_rejected / nr};
}

// ---- reading pairs ----

namespace {

// Lines of a text file, gunzipped when it ends in ".gz".
std::vector<std::string> read_lines(const std::string& path) {
  std::string text;
  if (path.size() > 3 && path.compare(path.size() - 3, 3, ".gz") == 0) {
    if (!path_exists(path)) fail(path, "", "no such file");
    gzFile f = gzopen(path.c_str(), "rb");
    if (!f) fail(path, "", "cannot open");
    char buf[1 << 16];
    int n;
    while ((n = gzread(f, buf, sizeof buf)) > 0) text.append(buf, size_t(n));
    int err = 0;
    const char* msg = gzerror(f, &err);
    std::string why = err ? msg : "";
    gzclose(f);
    if (n < 0 || !why.empty()) fail(path, "", "expected gzip data: " + why);
  } else {
    text = read_file(path);
  }
  std::vector<std::string> lines;
  size_t at = 0;
  while (at < text.size()) {
    size_t nl = text.find('\n', at);
    if (nl == std::string::npos) nl = text.size();
    lines.push_back(text.substr(at, nl - at));
    at = nl + 1;
  }
  return lines;
}

struct Where {
  const std::string& path;
  size_t line;
  [[noreturn]] void bad(const std::string& field, const std::string& msg) const {
    fail(path + ":" + std::to_string(line), field, msg);
  }
};

std::vector<chat::ChatMessage> messages(const json& v, const Where& at, const std::string& field) {
  std::vector<chat::ChatMessage> m;
  for (const json& x : v) {
    if (!x.is_object() || !x.contains("role") || !x["role"].is_string() || !x.contains("content") ||
        !x["content"].is_string())
      at.bad(field, "expected a list of {\"role\": string, \"content\": string}");
    m.push_back({x["role"].get<std::string>(), x["content"].get<std::string>()});
  }
  return m;
}

std::string text_field(const json& o, const char* f, const Where& at) {
  if (!o.contains(f)) at.bad(f, "missing (expected a string or a list of messages)");
  if (!o[f].is_string()) at.bad(f, "expected a string, got " + std::string(o[f].type_name()));
  return o[f].get<std::string>();
}

std::vector<int32_t> encode(const tokenizer::Tokenizer& tok, const std::string& s, bool bos, bool eos) {
  auto v = tok.encode(s, bos, eos);
  return {v.begin(), v.end()};
}

// A completion given as messages (the assistant turn(s)) or as a string (one assistant turn).
std::vector<chat::ChatMessage> completion_messages(const json& v, const Where& at, const char* field) {
  if (v.is_string()) return {{"assistant", v.get<std::string>()}};
  if (!v.is_array()) at.bad(field, "expected a string or a list of messages, got " + std::string(v.type_name()));
  auto m = messages(v, at, field);
  for (auto& x : m)
    if (x.role != "assistant") at.bad(field, "expected assistant turns, got role " + x.role);
  return m;
}

std::string completion_string(const json& o, const char* field, const Where& at) {
  if (!o[field].is_string()) at.bad(field, "expected a string (the prompt is a string), got " + std::string(o[field].type_name()));
  return o[field].get<std::string>();
}

// An Anthropic HH dialogue: "\n\nHuman: …\n\nAssistant: …" turns.
constexpr const char* kHuman = "\n\nHuman:";
constexpr const char* kAssistant = "\n\nAssistant:";
bool hh_dialogue(const std::string& s) {
  return s.find(kHuman) != std::string::npos || s.find(kAssistant) != std::string::npos;
}

// An HH dialogue must end in an assistant turn: the reply to prefer or reject
// is what follows its last "\n\nAssistant:" (TRL's extract_anthropic_prompt).
void hh_reply(const std::string& s, const char* field, const Where& at) {
  const size_t a = s.rfind(kAssistant), h = s.rfind(kHuman);
  if (a == std::string::npos)
    at.bad(field, "expected an Anthropic HH dialogue ending in a \"\\n\\nAssistant:\" turn, got no \"\\n\\nAssistant:\" marker");
  if (h != std::string::npos && h > a)
    at.bad(field, "expected an Anthropic HH dialogue ending in a \"\\n\\nAssistant:\" turn, got a final \"\\n\\nHuman:\" turn");
}

size_t common_prefix(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  size_t n = 0;
  while (n < a.size() && n < b.size() && a[n] == b[n]) ++n;
  return n;
}

}  // namespace

std::vector<Pair> read_pairs(const std::string& path, const tokenizer::Tokenizer& tok, chat::ChatTemplate tmpl,
                             int max_len, PairStats* stats) {
  PairStats st;
  std::vector<Pair> out;
  const auto lines = read_lines(path);
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].find_first_not_of(" \t\r") == std::string::npos) continue;
    Where at{path, i + 1};
    // parse_json: the syntax error's place and kind in the message, and nesting bounded.
    json o = parse_json(lines[i], path + ":" + std::to_string(i + 1));
    if (!o.is_object()) at.bad("", "expected one JSON object a line, got " + json_brief(o));
    for (const char* f : {"chosen", "rejected"})
      if (!o.contains(f)) at.bad(f, "missing");
    // As TRL tokenizes: the prompt, and prompt+completion whole (text: BOS
    // first, EOS appended); the completion starts where they diverge.
    std::vector<int32_t> prompt, with_chosen, with_rejected;
    bool empty_chosen, empty_rejected, same;
    if (o.contains("prompt") && o["prompt"].is_array()) {
      if (tmpl == chat::ChatTemplate::None) at.bad("prompt", "a list of messages needs a chat template (--chat-template)");
      auto pm = messages(o["prompt"], at, "prompt");
      auto cm = completion_messages(o["chosen"], at, "chosen"), rm = completion_messages(o["rejected"], at, "rejected");
      auto ids = [&](std::vector<chat::ChatMessage> m, const std::vector<chat::ChatMessage>& tail, bool gen) {
        m.insert(m.end(), tail.begin(), tail.end());
        auto v = chat::encode_chat(tok, tmpl, m, gen);
        return std::vector<int32_t>(v.begin(), v.end());
      };
      prompt = ids(pm, {}, true), with_chosen = ids(pm, cm, false), with_rejected = ids(pm, rm, false);
      auto text = [](const std::vector<chat::ChatMessage>& m) {
        std::string s;
        for (auto& x : m) s += x.content;
        return s;
      };
      empty_chosen = text(cm).empty(), empty_rejected = text(rm).empty(), same = text(cm) == text(rm);
    } else {
      std::string p, c, r;
      if (o.contains("prompt")) {
        p = text_field(o, "prompt", at), c = completion_string(o, "chosen", at), r = completion_string(o, "rejected", at);
      } else {  // HH-RLHF: TRL's extract_prompt, the common prefix (less a space it ends on)
        c = text_field(o, "chosen", at), r = text_field(o, "rejected", at);
        if (hh_dialogue(c) || hh_dialogue(r)) {
          hh_reply(c, "chosen", at);
          hh_reply(r, "rejected", at);
        }
        size_t k = 0;
        while (k < c.size() && k < r.size() && c[k] == r[k]) ++k;
        if (k > 0 && k < c.size() && k < r.size() && c[k - 1] == ' ') --k;
        p = c.substr(0, k);
        c.erase(0, k), r.erase(0, k);
      }
      empty_chosen = c.empty(), empty_rejected = r.empty(), same = c == r;
      prompt = encode(tok, p, true, false), with_chosen = encode(tok, p + c, true, true);
      with_rejected = encode(tok, p + r, true, true);
    }
    ++st.read;
    if (empty_chosen || empty_rejected) {
      ++st.empty;
      continue;
    }
    if (same) {
      ++st.identical;
      continue;
    }
    const size_t n = std::min(common_prefix(prompt, with_chosen), common_prefix(prompt, with_rejected));
    Pair pr;
    pr.prompt.assign(prompt.begin(), prompt.begin() + long(n));
    pr.chosen.assign(with_chosen.begin() + long(n), with_chosen.end());
    pr.rejected.assign(with_rejected.begin() + long(n), with_rejected.end());
    if (pr.prompt.empty() || pr.chosen.empty() || pr.rejected.empty())
      at.bad(pr.prompt.empty() ? "prompt" : pr.chosen.empty() ? "chosen" : "rejected", "expected tokens after tokenization");
    if (pr.prompt.size() + std::max(pr.chosen.size(), pr.rejected.size()) > size_t(max_len)) {
      ++st.too_long;
      continue;
    }
    out.push_back(std::move(pr));
  }
  if (st.empty || st.identical || st.too_long)
    log_warn("dpo", path + ": " + std::to_string(st.read) + " pairs, skipped " + std::to_string(st.empty) +
                        " with an empty completion, " + std::to_string(st.identical) +
                        " with chosen identical to rejected and " + std::to_string(st.too_long) +
                        " longer than --max-length",
             {{"read", st.read}, {"empty", st.empty}, {"identical", st.identical}, {"too_long", st.too_long}});
  if (stats) *stats = st;
  return out;
}

// ---- batches ----

void fill_batch(const std::vector<Pair>& pairs, const std::vector<int64_t>& which, int T, int pad, train::Batch& out) {
  const int B = int(which.size()), R = 2 * B;
  out = train::Batch{};
  out.B = R, out.T = T;
  out.tokens.assign(size_t(R) * (T + 1), pad);
  out.weight.assign(size_t(R) * T, 0.f);
  out.ids.resize(R);
  for (int r = 0; r < R; ++r) {
    const Pair& p = pairs[size_t(which[r % B])];
    const auto& comp = r < B ? p.chosen : p.rejected;
    int32_t* row = &out.tokens[size_t(r) * (T + 1)];
    std::copy(p.prompt.begin(), p.prompt.end(), row);
    std::copy(comp.begin(), comp.end(), row + p.prompt.size());
    // Target t is token t+1: weight on the completion's tokens.
    for (size_t k = 0; k < comp.size(); ++k) out.weight[size_t(r) * T + p.prompt.size() + k - 1] = 1.f;
    out.ids[r] = which[r % B];
  }
}

PairSource::PairSource(std::vector<Pair> train, std::vector<Pair> val, int pairs_per_batch, int T, int vocab, int pad,
                       uint64_t seed)
    : n_train_(int64_t(train.size())), B_(pairs_per_batch), T_(T), vocab_(vocab), pad_(pad) {
  if (train.empty()) fail("--data", "", "expected at least one usable training pair");
  all_ = std::move(train);
  for (auto& p : val) all_.push_back(std::move(p));
  order_.resize(size_t(n_train_));
  std::iota(order_.begin(), order_.end(), 0);
  std::mt19937_64 g(seed);
  std::shuffle(order_.begin(), order_.end(), g);
}

void PairSource::train_batch(uint64_t index, train::Batch& out) const {
  std::vector<int64_t> w(static_cast<size_t>(B_));
  for (int j = 0; j < B_; ++j) w[size_t(j)] = order_[(index * uint64_t(B_) + uint64_t(j)) % uint64_t(n_train_)];
  fill_batch(all_, w, T_, pad_, out);
}

uint64_t PairSource::val_batches() const { return uint64_t(num_pairs() - n_train_ + B_ - 1) / uint64_t(B_); }

void PairSource::val_batch(uint64_t i, train::Batch& out) const {
  std::vector<int64_t> w;
  for (int64_t k = n_train_ + int64_t(i) * B_; k < std::min(num_pairs(), n_train_ + int64_t(i + 1) * B_); ++k)
    w.push_back(k);
  fill_batch(all_, w, T_, pad_, out);
}

uint64_t PairSource::all_batches() const { return uint64_t(num_pairs() + B_ - 1) / uint64_t(B_); }

void PairSource::all_batch(uint64_t i, train::Batch& out) const {
  std::vector<int64_t> w;
  for (int64_t k = int64_t(i) * B_; k < std::min(num_pairs(), int64_t(i + 1) * B_); ++k) w.push_back(k);
  fill_batch(all_, w, T_, pad_, out);
}

namespace {

struct Fnv {
  uint64_t h = 1469598103934665603ull;
  void add(const void* p, size_t n) {
    auto* b = static_cast<const uint8_t*>(p);
    for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
  }
  template <class T>
  void add_vec(const std::vector<T>& v) {
    uint64_t n = v.size();
    add(&n, sizeof n);
    add(v.data(), v.size() * sizeof(T));
  }
};

std::string hex(uint64_t x) {
  char b[17];
  std::snprintf(b, sizeof b, "%016llx", static_cast<unsigned long long>(x));
  return b;
}

// Summed completion log-probs of every row of `b` (B rows).
std::vector<double> row_logps(train::Net& net, const train::Batch& b, bool for_backward) {
  net.forward(b, for_backward);
  std::vector<double> lp(size_t(b.B));
  train::sequence_logprob<float>(net.logits(), net.targets(), b.weight.data(), b.B, b.T, net.config().vocab_size,
                                 lp.data());
  return lp;
}

// Completion lengths of the rows (the Σ of their weights).
std::vector<double> row_lengths(const train::Batch& b) {
  std::vector<double> n(size_t(b.B), 0.0);
  for (int r = 0; r < b.B; ++r)
    for (int t = 0; t < b.T; ++t) n[size_t(r)] += b.weight[size_t(r) * b.T + t];
  return n;
}

// Forward-only log-probs of every pair of src: [2·pairs] = chosen, rejected.
std::vector<double> all_logps(train::Net& net, const PairSource& src) {
  std::vector<double> out(size_t(2 * src.num_pairs()));
  train::Batch b;
  for (uint64_t i = 0; i < src.all_batches(); ++i) {
    src.all_batch(i, b);
    auto lp = row_logps(net, b, false);
    const int P = b.B / 2;
    for (int j = 0; j < P; ++j) {
      out[size_t(2 * b.ids[j])] = lp[size_t(j)];
      out[size_t(2 * b.ids[j] + 1)] = lp[size_t(P + j)];
    }
  }
  return out;
}

train::Net open_net(const std::string& model_path, kernels::Precision precision) {
  train::Net net = train::Net::from_checkpoint(formats::load_checkpoint(model_path));
  net.set_options({precision});
  return net;
}

}  // namespace

uint64_t PairSource::data_hash() const {
  Fnv f;
  for (const Pair& p : all_) f.add_vec(p.prompt), f.add_vec(p.chosen), f.add_vec(p.rejected);
  return f.h;
}

uint64_t model_hash(const std::string& model_path) {
  model::Checkpoint ck = formats::load_checkpoint(model_path);
  Fnv f;
  for (const auto& [name, t] : ck.tensors) {
    f.add(name.data(), name.size());
    f.add_vec(t.shape);
    f.add(t.data, t.nbytes);
  }
  return f.h;
}

RefLogps reference_logps(const std::string& model_path, const PairSource& src, kernels::Precision precision) {
  RefLogps r;
  r.model_hash = model_hash(model_path), r.data_hash = src.data_hash();
  train::Net net = open_net(model_path, precision);
  r.logps = all_logps(net, src);
  return r;
}

RefLogps load_or_compute_reference(const std::string& path, const std::string& model_path, const PairSource& src,
                                   kernels::Precision precision) {
  if (path_exists(path)) {
    json j = read_json_file(path, 1u << 30);
    if (!j.is_object() || !j.contains("model_hash") || !j.contains("data_hash") || !j.contains("logps") ||
        !j["logps"].is_array())
      fail(path, "", "expected a reference cache written by solar dpo");
    const std::string mh = hex(model_hash(model_path)), dh = hex(src.data_hash());
    if (j["model_hash"] != mh)
      fail(path, "model_hash", "is a cache of another reference model (" + j["model_hash"].dump() + ", " + model_path +
                                   " is " + mh + "); use another -o/--output or delete it");
    if (j["data_hash"] != dh)
      fail(path, "data_hash", "is a cache of other pairs (" + j["data_hash"].dump() + ", these are " + dh +
                                  "); use another -o/--output or delete it");
    RefLogps r{std::stoull(mh, nullptr, 16), std::stoull(dh, nullptr, 16), j["logps"].get<std::vector<double>>()};
    if (r.logps.size() != size_t(2 * src.num_pairs()))
      fail(path, "logps", "expected " + std::to_string(2 * src.num_pairs()) + " values");
    log_info("dpo", "reusing the reference log-probs of " + path);
    return r;
  }
  log_info("dpo", "reference log-probs of " + std::to_string(src.num_pairs()) + " pairs from " + model_path);
  RefLogps r = reference_logps(model_path, src, precision);
  json j = {{"model_hash", hex(r.model_hash)}, {"data_hash", hex(r.data_hash)}, {"logps", r.logps}};
  write_file_atomic(path, j.dump());
  return r;
}

train::Objective objective(const LossConfig& c, std::shared_ptr<const RefLogps> ref) {
  return [c, ref](train::Net& net, const train::Batch& b, float grad_scale, train::Metrics* m) -> double {
    const bool grad = grad_scale != 0;
    auto lp = row_logps(net, b, grad);
    const auto len = row_lengths(b);
    const int P = b.B / 2;
    std::vector<float> dlogp(size_t(b.B));
    double loss = 0;
    train::Metrics acc;
    for (int j = 0; j < P; ++j) {
      const auto i = size_t(b.ids[j]);
      double pc = lp[size_t(j)], pr = lp[size_t(P + j)], rc = ref->logps[2 * i], rr = ref->logps[2 * i + 1];
      PairLoss l = summed_pair_loss(c, pc, pr, rc, rr, len[size_t(j)], len[size_t(P + j)]);
      loss += l.loss / P;
      dlogp[size_t(j)] = float(l.d_chosen / P), dlogp[size_t(P + j)] = float(l.d_rejected / P);
      const double rwc = c.beta * (pc - rc), rwr = c.beta * (pr - rr);
      acc["rewards/chosen"] += rwc / P, acc["rewards/rejected"] += rwr / P;
      acc["rewards/accuracies"] += (rwc > rwr ? 1.0 : 0.0) / P, acc["rewards/margins"] += (rwc - rwr) / P;
      acc["logps/chosen"] += pc / P, acc["logps/rejected"] += pr / P;
    }
    if (grad) {
      std::vector<double> unused(size_t(b.B));
      train::sequence_logprob<float>(net.logits(), net.targets(), b.weight.data(), b.B, b.T, net.config().vocab_size,
                                     unused.data(), dlogp.data());
      net.backward(net.logits(), grad_scale);
    }
    if (m)
      for (auto& [k, v] : acc) (*m)[k] += v;
    return loss;
  };
}

std::string dump_logps(const std::string& model_path, const PairSource& src, const RefLogps& ref, const LossConfig& c,
                       kernels::Precision precision) {
  train::Net net = open_net(model_path, precision);
  const auto lp = all_logps(net, src);
  json pairs = json::array();
  train::Batch b;
  std::vector<double> len(lp.size());
  for (uint64_t i = 0; i < src.all_batches(); ++i) {
    src.all_batch(i, b);
    auto n = row_lengths(b);
    const int P = b.B / 2;
    for (int j = 0; j < P; ++j) len[size_t(2 * b.ids[j])] = n[size_t(j)], len[size_t(2 * b.ids[j] + 1)] = n[size_t(P + j)];
  }
  for (int64_t i = 0; i < src.num_pairs(); ++i) {
    const size_t a = size_t(2 * i), r = a + 1;
    json losses = json::object();
    for (LossType t : {LossType::Sigmoid, LossType::IPO, LossType::Hinge, LossType::Robust}) {
      LossConfig lc = c;
      lc.type = t;
      losses[loss_type_name(t)] = summed_pair_loss(lc, lp[a], lp[r], ref.logps[a], ref.logps[r], len[a], len[r]).loss;
    }
    const Pair& p = src.pair(i);
    pairs.push_back({{"prompt_ids", p.prompt}, {"chosen_ids", p.chosen}, {"rejected_ids", p.rejected},
                     {"policy_chosen_logps", lp[a]}, {"policy_rejected_logps", lp[r]},
                     {"reference_chosen_logps", ref.logps[a]}, {"reference_rejected_logps", ref.logps[r]},
                     {"chosen_length", len[a]}, {"rejected_length", len[r]}, {"losses", losses}});
  }
  return json{{"beta", c.beta}, {"label_smoothing", c.label_smoothing}, {"pairs", pairs}}.dump(1);
}

void run_dpo(const DpoConfig& c) {
  if (c.train.init_from.empty()) fail("-m/--model", "", "required");
  if (c.data.empty()) fail("--data", "", "required");
  if (c.train.output_dir.empty()) fail("-o/--output", "", "required");
  if (!(c.loss.beta >= 1e-9 && c.loss.beta <= 1e9)) fail("--beta", "", "expected a number in [1e-9, 1e9]");
  if (!(c.loss.label_smoothing >= 0 && c.loss.label_smoothing < 0.5))
    fail("--label-smoothing", "", "expected a number in [0, 0.5)");
  if (c.max_length < 2 || c.max_length > (1 << 20)) fail("--max-length", "", "expected 2 to 1048576");
  if (c.train.batch_size < 1 || c.train.batch_size > (1 << 16)) fail("--batch-size", "", "expected 1 to 65536 pairs");
  if (c.eval_pairs < 0) fail("--eval-pairs", "", "expected >= 0");
  const std::string ref_model = c.ref_model.empty() ? c.train.init_from : c.ref_model;
  auto mt = engine::open_model_tokenizer(c.train.init_from, c.tokenizer);
  const auto tpl = chat::parse_chat_template(c.chat_template);
  auto train_pairs = read_pairs(c.data, *mt.tokenizer, tpl, c.max_length, nullptr);
  std::vector<Pair> val_pairs;
  if (!c.eval_data.empty()) {
    val_pairs = read_pairs(c.eval_data, *mt.tokenizer, tpl, c.max_length, nullptr);
  } else if (c.eval_pairs > 0) {
    if (size_t(c.eval_pairs) >= train_pairs.size())
      fail("--eval-pairs", "", "expected fewer than the " + std::to_string(train_pairs.size()) + " usable pairs of " + c.data);
    val_pairs.assign(std::make_move_iterator(train_pairs.end() - c.eval_pairs), std::make_move_iterator(train_pairs.end()));
    train_pairs.resize(train_pairs.size() - size_t(c.eval_pairs));
  }
  if (c.shards < 1 || c.shard < 0 || c.shard >= c.shards) fail("dpo", "shard", "expected 0 <= shard < shards");
  if (c.shards > 1) {
    std::vector<Pair> mine;
    for (size_t i = size_t(c.shard); i < train_pairs.size(); i += size_t(c.shards)) mine.push_back(std::move(train_pairs[i]));
    train_pairs = std::move(mine);
  }
  train::TrainConfig t = c.train;
  // The trainer sees rows: a pair is its chosen and its rejected row.
  t.batch_size = 2 * c.train.batch_size, t.seq_len = c.max_length - 1;
  t.tokenizer = mt.path;
  auto src = std::make_shared<PairSource>(std::move(train_pairs), std::move(val_pairs), c.train.batch_size, t.seq_len,
                                          mt.vocab_size, mt.tokenizer->eos_id(), t.seed);
  make_dirs(t.output_dir);
  auto refl = std::make_shared<const RefLogps>(
      load_or_compute_reference(join_path(t.output_dir, "ref_logps.json"), ref_model, *src, t.precision));
  if (!c.dump_logps.empty()) {
    write_file_atomic(c.dump_logps, dump_logps(c.train.init_from, *src, *refl, c.loss, t.precision));
    return;
  }
  train::Trainer trainer(t, src);
  if (trainer.finished()) return;
  std::optional<Progress> bar;
  if (!t.quiet) bar.emplace("dpo", t.steps, "tok", stderr, 5);
  trainer.run(bar ? &*bar : nullptr, objective(c.loss, refl));
}

PairEval evaluate_pairs(train::Net& net, std::vector<Pair> pairs, int max_len) {
  PairEval e;
  e.pairs = int64_t(pairs.size());
  if (pairs.empty()) return e;
  PairSource src(std::move(pairs), {}, 4, max_len - 1, 0, 0, 0);
  const std::vector<double> lp = all_logps(net, src);
  for (int64_t i = 0; i < e.pairs; ++i) {
    const double m = lp[size_t(2 * i)] - lp[size_t(2 * i + 1)];
    e.accuracy += m > 0, e.margin += m;
  }
  e.accuracy /= double(e.pairs), e.margin /= double(e.pairs);
  return e;
}

}  // namespace solar::dpo
