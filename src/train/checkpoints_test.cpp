// Checkpoint folders as a kill -9 leaves them, and corrupt trainer states.
#include "train/checkpoints.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "core/fs.h"
#include "testing/testing.h"
#include "train/trainer.h"

namespace solar::train {
namespace {

using testing::dead_pid;
using testing::error_of;
using testing::temp_dir;
namespace fs = std::filesystem;

// checkpoint-STEP with the files a resume needs (contents are not read here).
void fake_checkpoint(const std::string& dir, int64_t step, bool sharded = false) {
  std::string d = join_path(dir, "checkpoint-" + std::to_string(step));
  make_dirs(d);
  write_file_atomic(join_path(d, "trainer_state.json"), "{\"global_step\": " + std::to_string(step) + "}");
  write_file_atomic(join_path(d, "config.json"), "{}");
  write_file_atomic(join_path(d, "optimizer.bin"), "x");
  if (!sharded) return write_file_atomic(join_path(d, "model.safetensors"), "x");
  write_file_atomic(join_path(d, "model.safetensors.index.json"),
                    R"({"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}})");
  write_file_atomic(join_path(d, "model-00001-of-00002.safetensors"), "x");
  write_file_atomic(join_path(d, "model-00002-of-00002.safetensors"), "x");
}

std::vector<int64_t> steps(const std::vector<CheckpointFolder>& v) {
  std::vector<int64_t> s;
  for (const auto& c : v) s.push_back(c.step);
  return s;
}

TEST(Checkpoints, NamesAreCheckpointDashDigits) {
  EXPECT_EQ(checkpoint_step("checkpoint-20"), 20);
  EXPECT_EQ(checkpoint_step("checkpoint-0"), 0);
  EXPECT_EQ(checkpoint_step("checkpoint-1000000000000"), 1000000000000);
  for (const char* n : {"checkpoint-", "checkpoint--4", "checkpoint-1e3", "checkpoint-99999999999999999999",
                        "checkpoint-1000000000001", ".checkpoint-3.tmp-12", "checkpoint-3.old-12", "final"})
    EXPECT_EQ(checkpoint_step(n), -1) << n;
}

// The partial states the old in-place deletion left in 3 of 20 kills: only
// config.json and trainer_state.json, no model.safetensors, empty.
TEST(Checkpoints, IncompleteFoldersAreNeverLatestNorCounted) {
  std::string d = temp_dir("ck_incomplete");
  fake_checkpoint(d, 2);
  fake_checkpoint(d, 4);
  fs::remove(join_path(d, "checkpoint-4/model.safetensors"));
  fs::remove(join_path(d, "checkpoint-4/optimizer.bin"));
  fake_checkpoint(d, 6, true);
  fake_checkpoint(d, 8);
  fs::remove(join_path(d, "checkpoint-8/model.safetensors"));
  make_dirs(join_path(d, "checkpoint-10"));
  fake_checkpoint(d, 12, true);
  fs::remove(join_path(d, "checkpoint-12/model-00002-of-00002.safetensors"));
  write_file_atomic(join_path(d, "checkpoint-14"), "a file, not a folder");

  auto all = checkpoint_folders(d);
  EXPECT_EQ(steps(all), (std::vector<int64_t>{2, 4, 6, 8, 10, 12}));
  EXPECT_EQ(all[1].missing, "optimizer.bin");
  EXPECT_EQ(all[2].missing, "");
  EXPECT_EQ(all[3].missing, "model.safetensors");
  EXPECT_EQ(all[4].missing, "trainer_state.json");
  EXPECT_EQ(all[5].missing, "model-00002-of-00002.safetensors");
  EXPECT_EQ(steps(complete_checkpoints(d)), (std::vector<int64_t>{2, 6}));
  EXPECT_EQ(latest_checkpoint(d), join_path(d, "checkpoint-6"));

  // Pruning to 1 keeps checkpoint-6, retires everything older, and leaves
  // the newer incomplete ones (a save at their step replaces them).
  prune_checkpoints(d, 1);
  EXPECT_EQ(steps(checkpoint_folders(d)), (std::vector<int64_t>{6, 8, 10, 12}));
  for (auto& e : fs::directory_iterator(d)) EXPECT_EQ(e.path().filename().string().find(".old-"), std::string::npos);
  prune_checkpoints(d, 0);  // 0: keep all
  EXPECT_EQ(checkpoint_folders(d).size(), 4u);
  fs::remove_all(d);
}

TEST(Checkpoints, LeftoversOfKilledRunsAreRemovedAndIncompleteOnesReported) {
  testing::SinkGuard guard;
  std::vector<std::string> warnings;
  set_log_sink([&](const LogRecord& r) {
    if (r.level == LogLevel::Warn) warnings.emplace_back(r.message);
  });
  std::string d = temp_dir("ck_clean");
  const std::string dead = std::to_string(dead_pid()), alive = std::to_string(getppid());
  for (const std::string& n : {".checkpoint-3.tmp-" + dead, ".checkpoint-2.old-" + dead, "checkpoint-3.old-" + dead,
                               ".checkpoint-4.tmp-" + alive, "final.tmp-" + dead}) {
    make_dirs(join_path(d, n));
    write_file_atomic(join_path(join_path(d, n), "config.json"), "{}");
  }
  fake_checkpoint(d, 3);
  make_dirs(join_path(d, "checkpoint-1"));
  clean_checkpoint_folder(d);
  std::vector<std::string> left;
  for (auto& e : fs::directory_iterator(d)) left.push_back(e.path().filename().string());
  std::sort(left.begin(), left.end());
  EXPECT_EQ(left, (std::vector<std::string>{".checkpoint-4.tmp-" + alive, "checkpoint-1", "checkpoint-3",
                                            "final.tmp-" + dead}));
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_EQ(warnings[0], join_path(d, "checkpoint-1") + " is incomplete (no trainer_state.json): not resumed from; "
                         "removed with the old checkpoints when --save-total-limit prunes");
  fs::remove_all(d);
}

TEST(Checkpoints, RetiringRenamesBeforeDeleting) {
  std::string d = temp_dir("ck_retire");
  fake_checkpoint(d, 5);
  retire_checkpoint(join_path(d, "checkpoint-5"));
  EXPECT_TRUE(fs::is_empty(d));
  EXPECT_TRUE(error_of([&] { retire_checkpoint(join_path(d, "checkpoint-5")); }).find("cannot move the old checkpoint aside") !=
              std::string::npos);
  fs::remove_all(d);
}

// Before: global_step -5 truncated metrics.jsonl and wrote checkpoint--4;
// 1e15 exited 0; four corrupt states gave raw JSON-library messages.
TEST(Checkpoints, CorruptTrainerStatesAreRefusedNamingFileAndField) {
  std::string d = temp_dir("ck_state");
  fake_checkpoint(d, 20);
  const CheckpointFolder ck = complete_checkpoints(d).at(0);
  const std::string path = join_path(ck.path, "trainer_state.json");
  auto error_for = [&](const std::string& text) {
    write_file_atomic(path, text);
    return error_of([&] { read_trainer_state(ck); });
  };
  std::string deep(100000, '[');
  const std::string ok = R"("global_step": 20, "seed": 1337, "batch_size": 8, "log_history": [{"step": 1, "loss": 5.5}])";
  EXPECT_EQ(error_for("{" + ok + "}"), "");
  const std::string gs = path + ": global_step: expected 20 (the step in the folder's name checkpoint-20), got ";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"global_step": -5})", gs + "-5"},
      {R"({"global_step": 1e15})", gs + "1e+15"},
      {R"({"global_step": 1000000000000000})", gs + "1000000000000000"},
      {R"({"global_step": 19})", gs + "19"},
      {R"({"global_step": "20"})", gs + "\"20\""},
      {R"({"global_step": 18446744073709551615})", gs + "18446744073709551615"},
      {R"({"seed": 1})", gs + "nothing (the field is missing)"},
      {R"({"global_step": )" + deep, path + ": nesting deeper than 128 levels"},
      {"[" + deep.substr(0, 1000) + std::string(1000, ']') + "]", path + ": nesting deeper than 128 levels"},
      {"[" + deep.substr(0, 100) + std::string(100, ']') + "]", path + ": expected a JSON object (the trainer state"},
      {R"({"global_step": )" + deep.substr(0, 100) + std::string(100, ']') + "}", gs + "an array of 1"},
      {"not json", path + ": JSON syntax error"},
      {"", path + ": JSON syntax error"},
      {R"({"global_step": 20, "seed": "abc"})", path + ": seed: expected an integer in [0, 9223372036854775807], got \"abc\""},
      {R"({"global_step": 20, "seed": -1})", path + ": seed: expected an integer in [0,"},
      {R"({"global_step": 20, "batch_size": 0})", path + ": batch_size: expected an integer in [1, 1048576], got 0"},
      {R"({"global_step": 20, "seq_len": 1.5})", path + ": seq_len: expected an integer"},
      {R"({"global_step": 20, "grad_accum": null})", path + ": grad_accum: expected an integer in [1, 1048576], got null"},
      {R"({"global_step": 20, "max_steps": 0})", path + ": max_steps: expected an integer in [1, 1000000000000], got 0"},
      {R"({"global_step": 20, "warmup_steps": -1})", path + ": warmup_steps: expected an integer in [0,"},
      {R"({"global_step": 20, "lr_schedule": ")" + std::string(1000, 'x') + "\"}",
       path + ": lr_schedule: expected cosine, linear, constant or wsd, got a string of 1000 bytes"},
      {R"({"global_step": 20, "learning_rate": -1})", path + ": learning_rate: expected a positive number, got -1"},
      {R"({"global_step": 20, "min_lr_ratio": 2})", path + ": min_lr_ratio: expected a number in [0, 1], got 2"},
      {R"({"global_step": 20, "log_history": {}})", path + ": log_history: expected an array, got an object"},
      {R"({"global_step": 20, "log_history": [1]})", path + ": log_history[0]: expected an object {\"step\", \"loss\"}, got 1"},
      {R"({"global_step": 20, "log_history": [{"step": 1, "loss": 1}, {"step": 21, "loss": 1}]})",
       path + ": log_history[1].step: expected an integer in [1, 20], got 21"},
      {R"({"global_step": 20, "log_history": [{"step": 1, "loss": "x"}]})",
       path + ": log_history[0].loss: expected a finite number, got \"x\""},
      {R"({"global_step": 20, "eval_history": [{"step": 3}]})",
       path + ": eval_history[0].val_loss: expected a finite number, got nothing (the field is missing)"},
  };
  for (const auto& [text, want] : cases) {
    std::string e = error_for(text);
    EXPECT_EQ(e.substr(0, want.size()), want) << text.substr(0, 80);
    EXPECT_LT(e.size(), 300u) << "a message shows no untrusted value whole";
  }
  fs::remove_all(d);
}

}  // namespace
}  // namespace solar::train
