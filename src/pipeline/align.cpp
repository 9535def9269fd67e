#include "pipeline/align.h"

#include <algorithm>
#include <cstdio>
#include <regex>

#include "chat/chat.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"
#include "dpo/dpo.h"
#include "engine/session.h"
#include "formats/load.h"
#include "generate/generate.h"
#include "merge/merge.h"
#include "merge/recipe.h"
#include "pipeline/docs_pairs.h"
#include "sft/sft.h"
#include "train/net.h"

namespace solar::pipeline {

using json = nlohmann::json;

std::optional<std::string> gsm8k_final_answer(const std::string& text) {
  static const std::regex answer(R"((?:^|\n)[ \t]*####[ \t]*(-?[0-9][0-9,]*(?:\.[0-9]+)?)\.?\s*$)");
  std::smatch m;
  if (!std::regex_search(text, m, answer)) return std::nullopt;
  std::string n = m[1];
  n.erase(std::remove(n.begin(), n.end(), ','), n.end());
  return n;
}

namespace {

std::string fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

// YAML's double-quoted scalars accept JSON strings: any path is safe.
std::string quoted(const std::string& s) { return json(s).dump(); }

void merge_two(const std::string& recipe, const std::string& out, const std::string& where) {
  merge::MergeSpec spec = merge::merge_spec_from_recipe(merge::parse_recipe(recipe, where, false));
  spec.force = true;
  spec.recipe_text = recipe;
  merge::merge(spec, out);
}

// Held-out instructions and pairs, as every model is scored on them.
struct Heldout {
  std::vector<sft::Example> responses;
  std::vector<dpo::Pair> pairs;
  std::vector<std::pair<std::string, std::string>> problems;  // GSM8K: question, its final answer
};

struct GsmScore {
  int formatted = 0, right = 0;
};
GsmScore score_gsm8k(const std::string& model, const std::vector<std::pair<std::string, std::string>>& problems,
                     int max_tokens) {
  GsmScore s;
  if (problems.empty()) return s;
  engine::Session session = engine::open_session(model);
  generate::GenerateOptions go;
  go.sampler.temp = 0;
  go.stop = {"### User:"};
  for (const auto& [question, gold] : problems) {
    std::vector<int> prompt =
        chat::encode_chat(*session.tokenizer, chat::ChatTemplate::Solar, {{"user", question}}, true);
    engine::Context ctx = session.new_context();
    const int room = session.context_size(0) - int(prompt.size());
    if (room < 8) continue;  // counted as unformatted: the question alone fills the context
    go.n_predict = std::min(max_tokens, room);
    auto r = generate::generate(ctx, *session.tokenizer, prompt, go);
    auto got = gsm8k_final_answer(r.text);
    s.formatted += got.has_value();
    s.right += got && *got == gold;
  }
  return s;
}

}  // namespace

void prepare_align_data(const PipelineConfig& p, const std::vector<std::string>& corpus_files, const StepTimer& timed) {
  for (const auto& [flag, file] : {std::pair{"--sft-data", p.sft_data}, {"--dpo-data", p.dpo_data}})
    if (!file.empty() && !path_exists(file)) fail(flag, "", "no such file: " + file);
  const std::string data_dir = join_path(p.output_dir, "align-data");
  if ((p.sft_data.empty() || p.dpo_data.empty()) && !path_exists(join_path(data_dir, "dpo_eval.jsonl")))
    timed("align data", [&] {
      log_info("pipeline", "== instruction and preference pairs from the corpus's sections ==");
      DocsDataOptions o;
      o.seed = p.seed;
      o.max_heldout = size_t(p.heldout_examples);
      auto n = write_docs_data(corpus_files, p.corpus, data_dir, o);
      log_info("pipeline", std::to_string(n.train) + " training and " + std::to_string(n.heldout) +
                               " held-out sections from " + std::to_string(n.files) + " files, in " + data_dir);
    });
}

AlignReport run_align(const PipelineConfig& p, const std::string& start, const StepTimer& timed) {
  const std::string O = p.output_dir;
  auto path = [&](const std::string& s) { return join_path(O, s); };
  const auto precision = train::parse_precision(p.precision);
  const int L = std::min(p.align_max_length, 4 * p.seq_len);  // the model's context (arm_config)
  const uint64_t seed = p.seed;

  const std::string data_dir = path("align-data");
  const bool own_sft = p.sft_data.empty(), own_dpo = p.dpo_data.empty();
  auto mt = engine::open_model_tokenizer(start, "");
  const auto tmpl = chat::ChatTemplate::Solar;

  Heldout held;
  sft::SftConfig sc;
  double sft_split = 0;
  {
    std::vector<sft::Record> eval_recs;
    sft::Counts counts;
    if (own_sft) {
      sc.data = join_path(data_dir, "sft_train.jsonl"), sc.eval_file = join_path(data_dir, "sft_eval.jsonl");
      eval_recs = sft::read_records(sc.eval_file, {}, &counts);
    } else {
      sc.data = p.sft_data;
      auto recs = sft::read_records(p.sft_data, {}, &counts);
      sft_split = std::min(0.1, double(p.heldout_examples) / double(std::max<size_t>(recs.size(), 1)));
      eval_recs = sft::split_records(std::move(recs), sft_split, seed).second;
      sc.eval_split = sft_split;
    }
    if (eval_recs.size() > size_t(p.heldout_examples)) eval_recs.resize(size_t(p.heldout_examples));
    held.responses = sft::encode_records(*mt.tokenizer, eval_recs, {tmpl, true, true}, sc.eval_file.empty() ? sc.data : sc.eval_file);
    for (const auto& r : eval_recs) {
      if (r.messages.size() < 2 || held.problems.size() >= size_t(p.gsm8k_problems)) break;
      auto gold = gsm8k_final_answer(r.messages.back().content);
      if (!gold) break;  // not GSM8K-shaped: no answer scoring
      held.problems.push_back({r.messages[r.messages.size() - 2].content, *gold});
    }
  }
  dpo::DpoConfig dc;
  if (own_dpo) {
    dc.eval_data = join_path(data_dir, "dpo_eval.jsonl");
    held.pairs = dpo::read_pairs(dc.eval_data, *mt.tokenizer, tmpl, L, nullptr);
  } else {
    dc.data = p.dpo_data;
    auto all = dpo::read_pairs(p.dpo_data, *mt.tokenizer, tmpl, L, nullptr);
    dc.eval_pairs = std::min<int64_t>(p.heldout_examples, int64_t(all.size()) / 10);
    held.pairs.assign(all.end() - dc.eval_pairs, all.end());
  }
  if (held.pairs.size() > size_t(p.heldout_examples)) held.pairs.resize(size_t(p.heldout_examples));

  // 2. SFT, from the DUS model.
  auto trainer_config = [&](const std::string& out, const std::string& from, int64_t steps, float lr, int batch) {
    train::TrainConfig t;
    t.output_dir = out, t.init_from = from;
    t.steps = steps, t.lr = lr, t.batch_size = batch;
    t.lr_schedule = "linear", t.min_lr_ratio = 0, t.weight_decay = 0;
    t.warmup_steps = std::max<int64_t>(steps / 10, 1);
    t.eval_every = std::max<int64_t>(steps / 4, 1);
    t.eval_batches = 1 << 20;  // every held-out batch (the trainer takes at most what the source has)
    t.save_every = std::max<int64_t>(steps / 2, 1);
    t.seed = seed, t.threads = p.threads, t.precision = precision;
    t.resume = !train::latest_checkpoint(out).empty();
    t.quiet = !p.progress;
    return t;
  };
  const std::string sft_out = path("sft");
  if (!path_exists(join_path(sft_out, "final/config.json")))
    timed("sft", [&] {
      log_info("pipeline", "== SFT of the up-scaled model ==");
      sc.train = trainer_config(sft_out, start, p.sft_steps, p.sft_lr, p.sft_batch);
      sc.chat_template = "solar", sc.packing = true, sc.max_length = L;
      sft::run_sft(sc);
    });

  // 3. Two DPO runs from the SFT model on disjoint halves of the pairs.
  const std::string sft_model = join_path(sft_out, "final");
  for (int half = 0; half < 2; ++half) {
    const std::string name = half ? "dpo-b" : "dpo-a", out = path(name);
    if (path_exists(join_path(out, "final/config.json"))) continue;
    timed(name, [&] {
      log_info("pipeline", "== " + name + ": DPO of the SFT model on half " + std::to_string(half + 1) + " of the pairs ==");
      dpo::DpoConfig d = dc;
      d.train = trainer_config(out, sft_model, p.dpo_steps, p.dpo_lr, p.dpo_batch);
      d.loss.beta = p.beta, d.max_length = L, d.chat_template = "solar";
      if (own_dpo) d.data = join_path(data_dir, half ? "dpo_b.jsonl" : "dpo_a.jsonl");
      else d.shard = half, d.shards = 2;
      dpo::run_dpo(d);
    });
  }

  // 4. Merges of the two DPO models.
  const std::string a = path("dpo-a/final"), b = path("dpo-b/final");
  const int layers = formats::load_checkpoint(a).config.num_hidden_layers;
  const std::string linear = "models:\n  - model: " + quoted(a) + "\n    parameters: {weight: 0.5}\n  - model: " +
                             quoted(b) + "\n    parameters: {weight: 0.5}\nmerge_method: linear\ndtype: float32\n";
  const std::string range = ", layer_range: [0, " + std::to_string(layers) + "]}\n";
  const std::string slerp = "slices:\n  - sources:\n      - {model: " + quoted(a) + range + "      - {model: " + quoted(b) +
                            range + "merge_method: slerp\nbase_model: " + quoted(a) + "\nparameters:\n  t: 0.5\ndtype: float32\n";
  for (const auto& m : {std::pair{std::string("merge-avg"), linear}, {std::string("merge-slerp"), slerp}}) {
    if (path_exists(join_path(path(m.first), "config.json"))) continue;
    timed(m.first, [&] {
      log_info("pipeline", "== " + m.first + " of dpo-a and dpo-b ==");
      merge_two(m.second, path(m.first), m.first);
    });
  }

  // 5. Every stage on the held-out data.
  AlignReport rep;
  const bool gsm = !held.problems.empty();
  rep.header = {"stage", "held-out response loss", "token accuracy", "preference accuracy", "mean margin (nats)"};
  if (gsm) rep.header.insert(rep.header.end(), {"ends in #### N", "right"});
  const std::vector<std::pair<std::string, std::string>> stages = {
      {"DUS + continued pretraining", start}, {"SFT", sft_model}, {"DPO-a", a}, {"DPO-b", b},
      {"merge: average", path("merge-avg")},  {"merge: SLERP", path("merge-slerp")}};
  log_info("pipeline", "== the aligned stages on " + std::to_string(held.responses.size()) + " held-out responses and " +
                           std::to_string(held.pairs.size()) + " held-out pairs ==");
  for (const auto& [stage, model] : stages) {
    train::Net net = train::Net::from_checkpoint(formats::load_checkpoint(model));
    net.set_options({kernels::Precision::F32});
    const sft::ResponseEval r = sft::evaluate_responses(net, held.responses, L);
    const dpo::PairEval pe = dpo::evaluate_pairs(net, held.pairs, L);
    std::vector<std::string> row{stage, fmt("%.4f", r.loss), fmt("%.3f", r.token_accuracy), fmt("%.3f", pe.accuracy),
                                 fmt("%+.2f", pe.margin)};
    json j = {{"stage", stage},         {"model", model},          {"response_loss", r.loss},
              {"token_accuracy", r.token_accuracy}, {"response_tokens", r.tokens}, {"preference_accuracy", pe.accuracy},
              {"mean_margin", pe.margin}, {"pairs", pe.pairs}};
    if (gsm) {
      GsmScore g = score_gsm8k(model, held.problems, 256);
      const double n = double(held.problems.size());
      row.push_back(fmt("%.2f", g.formatted / n)), row.push_back(std::to_string(g.right) + "/" + std::to_string(held.problems.size()));
      j["gsm8k"] = {{"problems", held.problems.size()}, {"formatted", g.formatted}, {"right", g.right}};
    }
    log_info("pipeline", "  " + stage + ": response loss " + row[1] + ", preference accuracy " + row[3], j);
    rep.rows.push_back(row);
    rep.results.push_back(j);
  }
  rep.setup = "Alignment half, from the DUS model: SFT for " + std::to_string(p.sft_steps) + " steps (" +
              std::to_string(p.sft_batch) + " packed rows of " + std::to_string(L) + " tokens, lr " + fmt("%g", p.sft_lr) +
              ", loss on completions) on " + (own_sft ? "questions made from section headings answered by the section's "
                                                        "first paragraph (" + join_path(data_dir, "sft_train.jsonl") + ")"
                                                      : p.sft_data) +
              "; DPO-a and DPO-b from the SFT model for " + std::to_string(p.dpo_steps) + " steps each (" +
              std::to_string(p.dpo_batch) + " pairs, β " + fmt("%g", p.beta) + ", lr " + fmt("%g", p.dpo_lr) +
              ", sigmoid loss, reference = the SFT model, cached) on disjoint halves of " +
              (own_dpo ? "pairs whose rejected answer is the first paragraph of a section of another page"
                       : p.dpo_data) +
              "; their linear average and SLERP (t = 0.5). Held out: " +
              (own_sft ? "sections of documents never trained on" : fmt("%.3g", sft_split) + " of the records (seeded)") +
              ". Scored in f32: the loss on held-out response tokens, the share of held-out pairs whose chosen "
              "answer gets the higher summed log-prob" +
              (gsm ? ", and greedy answers to " + std::to_string(held.problems.size()) +
                         " held-out problems (a final `#### N` line; right when N is the reference's)"
                   : std::string()) +
              ".";
  return rep;
}

}  // namespace solar::pipeline
