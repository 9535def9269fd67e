// solar/pipeline/align.h — the second half of the Solar recipe, after depth
// up-scaling and continued pretraining:
//   SFT on instructions → DPO-a and DPO-b, from the SFT model on disjoint
//   halves of the preference pairs (two models that learned different things,
//   as the paper merges DPO models trained on different data) → their merge by
//   linear average and by SLERP (t = 0.5) → every stage scored on held-out data.
// Scores per model: the loss and token accuracy on held-out responses (the
// completion tokens only, sft::evaluate_responses), preference accuracy (the
// share of held-out pairs whose chosen completion has the higher summed
// log-prob, dpo::evaluate_pairs), and, when the instructions are GSM8K-shaped,
// greedy answers to held-out problems: the share that ends in a `#### N` line
// and how many are right.
// Each stage writes its outputs atomically and is skipped when they exist.
#pragma once
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "pipeline/pipeline.h"

namespace solar::pipeline {

// Runs f as the named step, recording its time (the pipeline's State).
using StepTimer = std::function<void(const std::string& key, const std::function<void()>& f)>;

struct AlignReport {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  nlohmann::json results = nlohmann::json::array();
  std::string setup;  // what was trained on what, for the report
};
// Before any training, so a corpus the data cannot be made from fails at
// once: checks --sft-data/--dpo-data exist, else writes OUT/align-data/ from
// the corpus's sections (docs_pairs.h).
void prepare_align_data(const PipelineConfig& p, const std::vector<std::string>& corpus_files, const StepTimer& timed);
// From `start` (the DUS model) into p.output_dir/{align-data,sft,dpo-a,dpo-b,merge-avg,merge-slerp}.
AlignReport run_align(const PipelineConfig& p, const std::string& start, const StepTimer& timed);

// The number a GSM8K answer ends with: its last line "#### N" (commas
// dropped), or nullopt when it has none — the harness's strict match.
std::optional<std::string> gsm8k_final_answer(const std::string& text);

}  // namespace solar::pipeline
