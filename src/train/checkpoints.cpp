#include "train/checkpoints.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <tuple>

#include "core/error.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/log.h"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace solar::train {

namespace {

constexpr int64_t kMaxStep = 1'000'000'000'000;  // --steps' bound

bool is_file(const std::string& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

// The first file a resume needs that the folder lacks, or "".
std::string first_missing(const std::string& dir) {
  for (const char* f : {"trainer_state.json", "config.json", "optimizer.bin"})
    if (!is_file(join_path(dir, f))) return f;
  if (is_file(join_path(dir, "model.safetensors"))) return "";
  const std::string index = join_path(dir, "model.safetensors.index.json");
  if (!is_file(index)) return "model.safetensors";
  json j = json::parse(read_file(index), nullptr, false);
  if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object() || j["weight_map"].empty())
    return "model.safetensors.index.json (no weight_map)";
  for (const auto& [name, shard] : j["weight_map"].items())
    if (!shard.is_string() || !is_file(join_path(dir, shard.get<std::string>())))
      return shard.is_string() ? shard.get<std::string>() : "model.safetensors.index.json (weight_map." + name + ")";
  return "";
}

// A value as an error message may show it: numbers and short strings as they
// are, anything else by its kind (a document of any size or depth stays out).
std::string brief(const json* v) {
  if (!v) return "nothing (the field is missing)";
  if (v->is_number() || v->is_boolean() || v->is_null()) return v->dump();
  if (v->is_string()) {
    const std::string& s = v->get_ref<const std::string&>();
    return s.size() <= 32 ? json(s).dump() : "a string of " + std::to_string(s.size()) + " bytes";
  }
  return v->is_array() ? "an array of " + std::to_string(v->size()) : "an object";
}

const json* field(const json& j, const char* name) {
  auto it = j.find(name);
  return it == j.end() ? nullptr : &*it;
}

bool integer_in(const json* v, int64_t lo, int64_t hi) {
  if (!v || !v->is_number_integer()) return false;
  if (v->is_number_unsigned() && v->get<uint64_t>() > uint64_t(INT64_MAX)) return false;
  return v->get<int64_t>() >= lo && v->get<int64_t>() <= hi;
}

}  // namespace

int64_t checkpoint_step(const std::string& name) {
  const std::string p = "checkpoint-";
  if (name.size() <= p.size() || name.size() > p.size() + 13 || name.compare(0, p.size(), p) != 0) return -1;
  if (!std::all_of(name.begin() + long(p.size()), name.end(), [](char c) { return c >= '0' && c <= '9'; })) return -1;
  int64_t s = std::stoll(name.substr(p.size()));
  return s <= kMaxStep ? s : -1;
}

std::vector<CheckpointFolder> checkpoint_folders(const std::string& dir) {
  std::vector<CheckpointFolder> out;
  std::error_code ec;
  for (auto& e : fs::directory_iterator(dir, ec)) {
    int64_t s = checkpoint_step(e.path().filename().string());
    if (s < 0 || !e.is_directory(ec)) continue;
    out.push_back({s, e.path().string(), first_missing(e.path().string())});
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.step < b.step; });
  return out;
}

std::vector<CheckpointFolder> complete_checkpoints(const std::string& dir) {
  std::vector<CheckpointFolder> all = checkpoint_folders(dir);
  std::erase_if(all, [](const CheckpointFolder& c) { return !c.missing.empty(); });
  return all;
}

void clean_checkpoint_folder(const std::string& dir) {
  // ".checkpoint-N.tmp-PID" (being built), ".checkpoint-N.old-PID" (being
  // retired) and "checkpoint-N.old-PID" (being replaced by commit_dir).
  auto ours = [](const std::string& stem) {
    return stem.starts_with("checkpoint-") || stem.starts_with(".checkpoint-");
  };
  for (const auto& n : remove_dead_leftovers(dir, ours))
    log_info("train", "removed " + join_path(dir, n) + ", left by a run that was killed", {{"removed", n}});
  for (const auto& c : checkpoint_folders(dir))
    if (!c.missing.empty())
      log_warn("train", c.path + " is incomplete (no " + c.missing + "): not resumed from; removed with the old "
                        "checkpoints when --save-total-limit prunes",
               {{"checkpoint", c.path}, {"missing", c.missing}});
}

void retire_checkpoint(const std::string& path) {
  const std::string old = join_path(parent_dir(path), "." + base_name(path) + ".old-" + std::to_string(getpid()));
  std::error_code ec;
  fs::rename(path, old, ec);
  if (ec) fail(path, "", "cannot move the old checkpoint aside: " + ec.message());
  fsync_dir(parent_dir(path));  // the name is gone before any file of it is
  remove_all(old);
}

void prune_checkpoints(const std::string& dir, int64_t keep) {
  if (keep <= 0) return;
  std::vector<CheckpointFolder> complete = complete_checkpoints(dir);
  if (complete.empty()) return;
  const int64_t oldest_kept = complete[complete.size() - std::min<size_t>(complete.size(), size_t(keep))].step;
  for (const auto& c : checkpoint_folders(dir))
    if (c.step < oldest_kept) retire_checkpoint(c.path);
}

json read_trainer_state(const CheckpointFolder& ck) {
  const std::string path = join_path(ck.path, "trainer_state.json");
  // The one parse of a trainer state: bounded read and nesting depth.
  json st = read_json_file(path, 256u << 20);
  if (!st.is_object()) fail(path, "", "expected a JSON object (the trainer state `solar train` writes)");
  auto expect = [&](bool ok, const std::string& name, const std::string& what, const json* v) {
    if (!ok) fail(path, name, "expected " + what + ", got " + brief(v));
  };
  const json* gs = field(st, "global_step");
  expect(integer_in(gs, ck.step, ck.step), "global_step",
         std::to_string(ck.step) + " (the step in the folder's name " + base_name(ck.path) + ")", gs);
  // Run settings a resume compares or replays; absent in older states.
  const std::tuple<const char*, int64_t, int64_t> ints[] = {{"seed", 0, INT64_MAX},         {"batch_size", 1, 1 << 20},
                                                            {"seq_len", 1, 1 << 24},        {"grad_accum", 1, 1 << 20},
                                                            {"max_steps", 1, kMaxStep},     {"warmup_steps", 0, kMaxStep},
                                                            {"tokens_seen", 0, INT64_MAX}};
  for (const auto& [name, lo, hi] : ints)
    if (const json* v = field(st, name))
      expect(integer_in(v, lo, hi), name, "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]", v);
  if (const json* v = field(st, "lr_schedule"))
    expect(v->is_string() && (*v == "cosine" || *v == "linear" || *v == "constant" || *v == "wsd"), "lr_schedule",
           "cosine, linear, constant or wsd", v);
  if (const json* v = field(st, "learning_rate"))
    expect(v->is_number() && std::isfinite(v->get<double>()) && v->get<double>() > 0, "learning_rate",
           "a positive number", v);
  if (const json* v = field(st, "min_lr_ratio"))
    expect(v->is_number() && v->get<double>() >= 0 && v->get<double>() <= 1, "min_lr_ratio", "a number in [0, 1]", v);
  // Histories: the loss curve replayed into loss.svg.
  for (auto [name, key, first] : {std::tuple{"log_history", "loss", int64_t(1)}, {"eval_history", "val_loss", int64_t(0)}}) {
    const json* h = field(st, name);
    if (!h) continue;
    expect(h->is_array(), name, "an array", h);
    for (size_t i = 0; i < h->size(); ++i) {
      const json& e = (*h)[i];
      const std::string at = std::string(name) + "[" + std::to_string(i) + "]";
      expect(e.is_object(), at, "an object {\"step\", \"" + std::string(key) + "\"}", &e);
      const json* s = field(e, "step");
      expect(integer_in(s, first, ck.step), at + ".step",
             "an integer in [" + std::to_string(first) + ", " + std::to_string(ck.step) + "]", s);
      const json* l = field(e, key);
      expect(l && l->is_number() && std::isfinite(l->get<double>()), at + "." + key, "a finite number", l);
    }
  }
  return st;
}

}  // namespace solar::train
