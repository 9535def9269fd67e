// solar/train/checkpoints.h — the checkpoint-STEP folders of a training run:
// which ones can be resumed from, what their trainer_state.json may hold, and
// retiring old ones so that a kill -9 at any instant loses nothing.
//
// A checkpoint is built as ".checkpoint-STEP.tmp-PID" and renamed into place
// (core/fs.h commit_dir); it is retired by renaming it to
// ".checkpoint-STEP.old-PID" and only then deleted. So a folder named
// checkpoint-STEP is complete or absent at every instant, and what a killed
// run leaves is dot-named, and removed by the next run (its PID is dead).
// Folders named checkpoint-STEP that lack a required file (left by older
// versions' in-place deletion, or edited by hand) are never resumed from nor
// counted: they are reported, and retired with the old ones when pruning.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace solar::train {

struct CheckpointFolder {
  int64_t step = 0;
  std::string path;
  std::string missing;  // the first required file absent; "" when complete
};

// The step of a folder name "checkpoint-STEP" (1..1e12, digits only), or -1.
int64_t checkpoint_step(const std::string& name);
// Every checkpoint-STEP folder in dir, by step, complete or not.
std::vector<CheckpointFolder> checkpoint_folders(const std::string& dir);
// The complete ones only, by step.
std::vector<CheckpointFolder> complete_checkpoints(const std::string& dir);

// Removes the ".checkpoint-STEP.tmp-PID" / ".old-PID" leftovers of dead
// processes in dir, and warns once per incomplete checkpoint-STEP folder.
void clean_checkpoint_folder(const std::string& dir);
// Keeps the newest `keep` complete checkpoints (keep > 0) and retires every
// older folder, incomplete ones included.
void prune_checkpoints(const std::string& dir, int64_t keep);
// Rename out of the way (".checkpoint-STEP.old-PID", fsynced), then delete.
void retire_checkpoint(const std::string& path);

// checkpoint/trainer_state.json, checked before a resume touches anything:
// a JSON object whose global_step is the step in the folder's name, whose
// run settings (seed, batch_size, seq_len, grad_accum, max_steps, …) have
// their types and ranges, and whose log_history / eval_history entries are
// {"step" <= global_step, "loss" / "val_loss": finite}. Throws naming the
// file and the field; never prints a value it was handed whole.
nlohmann::json read_trainer_state(const CheckpointFolder& ck);

}  // namespace solar::train
