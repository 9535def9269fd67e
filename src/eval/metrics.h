// solar/eval/metrics.h — per-item metrics and their aggregation, as the harness
// computes them (docs/eval.md).
#pragma once
#include <string>
#include <vector>

namespace solar::eval {

// acc: argmax of the summed log-likelihoods (first maximum wins, as np.argmax).
int argmax(const std::vector<double>& lls);
// acc_norm: argmax of ll / len(choice) in characters (UTF-8 code points, as
// Python's len), the choice without the " " delimiter.
int argmax_norm(const std::vector<double>& lls, const std::vector<std::string>& choices);
size_t py_len(const std::string& s);  // code points
// mc2: probability mass on the first n_true choices over all of them.
double mc2(const std::vector<double>& lls, int n_true);

// GSM8K answer extraction.
//   pinned b281b09: the first "#### N" (commas removed), else "[invalid]"
std::string gsm8k_pinned_answer(const std::string& text);
//   0.4 strict-match: the first "#### N" group, stripped; flexible-extract:
//   the last number-like span; "[invalid]" when none.
std::string gsm8k_strict(const std::string& text);
std::string gsm8k_flexible(const std::string& text);
// 0.4's exact_match with gsm8k.yaml's options: drop ",", "$", everything up
// to the last "#### ", a final "."; lowercase; compare.
bool gsm8k_exact_match(const std::string& prediction, const std::string& reference);

double mean(const std::vector<double>& v);
// The harness's mean_stderr: sample standard deviation (n - 1) / sqrt(n);
// NaN for fewer than two items (lm_eval prints "N/A").
double mean_stderr(const std::vector<double>& v);

}  // namespace solar::eval
