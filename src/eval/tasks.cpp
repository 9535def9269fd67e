#include "eval/tasks.h"

#include <algorithm>
#include <set>

#include "core/error.h"
#include "core/fs.h"
#include "core/json.h"
#include "eval/metrics.h"
#include "eval/pyrandom.h"

namespace solar::eval {

using nlohmann::json;

const char* harness_name(Harness h) { return h == Harness::Leaderboard ? "b281b09" : "0.4"; }

Harness parse_harness(const std::string& s) {
  if (s == "b281b09" || s == "leaderboard") return Harness::Leaderboard;
  if (s == "0.4" || s == "current") return Harness::Current;
  throw UsageError("--harness: expected b281b09 (the Open LLM Leaderboard's pinned commit) or 0.4 "
                   "(lm_eval 0.4.x), got '" + s + "'");
}

const std::vector<std::string>& mmlu_subjects() {
  static const std::vector<std::string> s = {
      "abstract_algebra", "anatomy", "astronomy", "business_ethics", "clinical_knowledge", "college_biology",
      "college_chemistry", "college_computer_science", "college_mathematics", "college_medicine",
      "college_physics", "computer_security", "conceptual_physics", "econometrics", "electrical_engineering",
      "elementary_mathematics", "formal_logic", "global_facts", "high_school_biology", "high_school_chemistry",
      "high_school_computer_science", "high_school_european_history", "high_school_geography",
      "high_school_government_and_politics", "high_school_macroeconomics", "high_school_mathematics",
      "high_school_microeconomics", "high_school_physics", "high_school_psychology", "high_school_statistics",
      "high_school_us_history", "high_school_world_history", "human_aging", "human_sexuality",
      "international_law", "jurisprudence", "logical_fallacies", "machine_learning", "management", "marketing",
      "medical_genetics", "miscellaneous", "moral_disputes", "moral_scenarios", "nutrition", "philosophy",
      "prehistory", "professional_accounting", "professional_law", "professional_medicine",
      "professional_psychology", "public_relations", "security_studies", "sociology", "us_foreign_policy",
      "virology", "world_religions"};
  return s;
}

const std::vector<std::string>& h6_tasks() {
  static const std::vector<std::string> t = {"arc_challenge", "hellaswag", "mmlu", "truthfulqa_mc2", "winogrande",
                                             "gsm8k"};
  return t;
}

std::vector<std::string> known_tasks() {
  std::vector<std::string> k = {"arc_easy",       "arc_challenge",  "hellaswag", "mmlu", "truthfulqa_mc1",
                                "truthfulqa_mc2", "winogrande",     "gsm8k",     "h6"};
  for (auto& s : mmlu_subjects()) k.push_back("mmlu_" + s);
  return k;
}

// ---------------------------------------------------------------- strings

static bool py_space(unsigned char c) { return c == ' ' || (c >= 9 && c <= 13) || (c >= 0x1c && c <= 0x1f); }

static std::string strip(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && py_space(s[b])) ++b;
  while (e > b && py_space(s[e - 1])) --e;
  return s.substr(b, e - b);
}

std::string py_capitalize(const std::string& s) {
  // ASCII letters as Python does; other bytes (UTF-8) pass unchanged.
  std::string r = s;
  for (size_t i = 0; i < r.size(); ++i) {
    unsigned char c = r[i];
    if (i == 0 && c >= 'a' && c <= 'z') r[i] = char(c - 32);
    if (i > 0 && c >= 'A' && c <= 'Z') r[i] = char(c + 32);
  }
  return r;
}

static void replace_all(std::string& s, const std::string& from, const std::string& to) {
  // Python's str.replace: left to right, non-overlapping, one pass.
  std::string out;
  size_t pos = 0;
  for (size_t f; (f = s.find(from, pos)) != std::string::npos; pos = f + from.size()) out += s.substr(pos, f - pos) + to;
  s = out + s.substr(pos);
}

std::string hellaswag_preprocess(const std::string& text) {
  std::string t = strip(text);
  replace_all(t, " [title]", ". ");
  // re.sub("\\[.*?\\]", "", t): shortest bracket spans, '.' stops at newlines.
  // A '[' with no ']' before the next newline leaves every '[' up to that
  // newline unmatched too, so the scan resumes there: linear time.
  std::string out;
  for (size_t i = 0; i < t.size();) {
    if (t[i] != '[') {
      out += t[i++];
      continue;
    }
    size_t j = i + 1;
    while (j < t.size() && t[j] != ']' && t[j] != '\n') ++j;
    if (j < t.size() && t[j] == ']') {
      i = j + 1;
    } else {
      out.append(t, i, j - i);
      i = j;
    }
  }
  replace_all(out, "  ", " ");
  return out;
}

// ---------------------------------------------------------------- files

static constexpr uint64_t kMaxDataBytes = uint64_t(512) << 20;

struct Line {
  int64_t no;  // 1-based
  json v;
};

static std::vector<Line> read_jsonl(const std::string& path) {
  std::string text = read_file(path, kMaxDataBytes);
  std::vector<Line> out;
  int64_t no = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t e = text.find('\n', pos);
    if (e == std::string::npos) e = text.size();
    std::string_view l(text.data() + pos, e - pos);
    ++no;
    pos = e + 1;
    if (strip(std::string(l)).empty()) continue;
    json v = parse_json(l, path + ":" + std::to_string(no));
    if (!v.is_object()) fail(path + ":" + std::to_string(no), "", "expected a JSON object per line, got " + json_brief(v));
    out.push_back({no, std::move(v)});
  }
  if (out.empty()) fail(path, "", "no documents (empty file)");
  return out;
}

// RFC 4180 CSV: quoted fields may hold commas, "" and newlines.
static std::vector<std::vector<std::string>> read_csv(const std::string& path, std::vector<int64_t>* line_of) {
  std::string t = read_file(path, kMaxDataBytes);
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  bool quoted = false, any = false;
  int64_t line = 1, row_line = 1;
  auto end_row = [&] {
    row.push_back(field);
    field.clear();
    if (!(row.size() == 1 && row[0].empty())) {
      rows.push_back(std::move(row));
      if (line_of) line_of->push_back(row_line);
    }
    row.clear();
    any = false;
  };
  for (size_t i = 0; i < t.size(); ++i) {
    char c = t[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < t.size() && t[i + 1] == '"') field += '"', ++i;
        else quoted = false;
      } else {
        if (c == '\n') ++line;
        field += c;
      }
      continue;
    }
    if (!any) row_line = line, any = true;
    if (c == '"' && field.empty()) quoted = true;  // a quote inside a field is literal (Python's csv)
    else if (c == ',') row.push_back(field), field.clear();
    else if (c == '\n') {
      end_row();
      ++line;
    } else if (c != '\r') field += c;
  }
  if (quoted) fail(path + ":" + std::to_string(row_line), "", "unterminated quoted field");
  if (any || !field.empty() || !row.empty()) end_row();
  return rows;
}

static std::string where(const std::string& path, int64_t line) { return path + ":" + std::to_string(line); }

static const json& field(const Line& l, const std::string& path, const char* name, json::value_t type) {
  auto it = l.v.find(name);
  if (it == l.v.end()) fail(where(path, l.no), name, "missing");
  bool ok = it->type() == type || (type == json::value_t::number_integer && it->is_number_unsigned());
  if (!ok) fail(where(path, l.no), name, std::string("expected ") + json(type).type_name() + ", got " + json_brief(*it));
  return *it;
}

static std::string str_field(const Line& l, const std::string& p, const char* n) {
  return field(l, p, n, json::value_t::string).get<std::string>();
}

static std::vector<std::string> str_list(const json& v, const std::string& at, const char* name) {
  if (!v.is_array() || v.empty()) fail(at, name, "expected a non-empty list of strings, got " + json_brief(v));
  std::vector<std::string> out;
  for (auto& x : v) {
    if (!x.is_string()) fail(at, name, "expected strings, got " + json_brief(x));
    out.push_back(x.get<std::string>());
  }
  return out;
}

static int gold_index(const json& v, size_t n, const std::string& at, const char* name) {
  int64_t g = -1;
  if (v.is_number_integer()) g = v.get<int64_t>();
  else if (v.is_string()) {
    std::string s = v.get<std::string>();
    if (s.size() == 1 && s[0] >= '0' && s[0] <= '9') g = s[0] - '0';
  }
  if (g < 0 || g >= int64_t(n))
    fail(at, name, "expected a choice index in [0, " + std::to_string(n) + "), got " + json_brief(v));
  return int(g);
}

[[noreturn]] static void unknown_format(const std::string& at, const char* expected) {
  fail(at, "", std::string("unknown document format: expected ") + expected);
}

// ARC: llm-foundry {query: "Question: …", choices, gold} or HF ai2_arc.
static std::vector<Doc> load_arc(const std::string& path) {
  std::vector<Doc> docs;
  for (auto& l : read_jsonl(path)) {
    Doc d;
    d.index = int64_t(docs.size());
    std::string at = where(path, l.no), q;
    if (l.v.contains("query")) {
      q = str_field(l, path, "query");
      if (q.rfind("Question: ", 0) == 0) q = q.substr(10);  // llm-foundry keeps the harness's prefix
      d.choices = str_list(field(l, path, "choices", json::value_t::array), at, "choices");
      d.gold = gold_index(l.v["gold"], d.choices.size(), at, "gold");
    } else if (l.v.contains("question") && l.v.contains("answerKey")) {
      q = str_field(l, path, "question");
      auto& c = field(l, path, "choices", json::value_t::object);
      if (!c.contains("text") || !c.contains("label")) fail(at, "choices", "expected {text: [...], label: [...]}");
      d.choices = str_list(c["text"], at, "choices.text");
      auto labels = str_list(c["label"], at, "choices.label");
      if (labels.size() != d.choices.size())
        fail(at, "choices.label", "expected one label per choice (" + std::to_string(d.choices.size()) + "), got " +
                                      std::to_string(labels.size()));
      std::string key = str_field(l, path, "answerKey");
      // The pinned harness maps "1".."5" to "A".."E"; 0.4 looks the key up in
      // the labels. Both give the label's position when labels are A.. or 1..
      auto it = std::find(labels.begin(), labels.end(), key);
      if (it == labels.end()) fail(at, "answerKey", "'" + key + "' is not one of choices.label");
      d.gold = int(it - labels.begin());
    } else {
      unknown_format(at, "ARC as llm-foundry {query, choices, gold} or HF {question, choices{text,label}, answerKey}");
    }
    d.text = "Question: " + q + "\nAnswer:";
    docs.push_back(std::move(d));
  }
  return docs;
}

static std::vector<Doc> load_hellaswag(const std::string& path) {
  std::vector<Doc> docs;
  for (auto& l : read_jsonl(path)) {
    std::string at = where(path, l.no);
    if (!l.v.contains("ctx_a") || !l.v.contains("endings"))
      unknown_format(at, "HellaSwag's {activity_label, ctx_a, ctx_b, endings, label}");
    Doc d;
    d.index = int64_t(docs.size());
    std::string ctx = str_field(l, path, "ctx_a") + " " + py_capitalize(str_field(l, path, "ctx_b"));
    d.text = hellaswag_preprocess(str_field(l, path, "activity_label") + ": " + ctx);
    for (auto& e : str_list(field(l, path, "endings", json::value_t::array), at, "endings"))
      d.choices.push_back(hellaswag_preprocess(e));
    if (!l.v.contains("label")) fail(at, "label", "missing (the test split has no labels: use the validation file)");
    d.gold = gold_index(l.v["label"], d.choices.size(), at, "label");
    docs.push_back(std::move(d));
  }
  return docs;
}

// Winogrande: llm-foundry {context_options, continuation, gold} or HF
// {sentence, option1, option2, answer}. choices = the partial contexts.
static std::vector<Doc> load_winogrande(const std::string& path) {
  std::vector<Doc> docs;
  for (auto& l : read_jsonl(path)) {
    std::string at = where(path, l.no);
    Doc d;
    d.index = int64_t(docs.size());
    if (l.v.contains("context_options")) {
      d.choices = str_list(field(l, path, "context_options", json::value_t::array), at, "context_options");
      d.target = strip(str_field(l, path, "continuation"));
      d.gold = gold_index(l.v["gold"], d.choices.size(), at, "gold");
    } else if (l.v.contains("sentence")) {
      std::string s = str_field(l, path, "sentence");
      size_t blank = s.find('_');
      if (blank == std::string::npos) fail(at, "sentence", "expected a '_' blank");
      d.choices = {s.substr(0, blank) + str_field(l, path, "option1"), s.substr(0, blank) + str_field(l, path, "option2")};
      d.target = strip(s.substr(blank + 1));
      std::string a = str_field(l, path, "answer");
      if (a != "1" && a != "2") fail(at, "answer", "expected \"1\" or \"2\", got '" + a + "'");
      d.gold = a == "1" ? 0 : 1;
    } else {
      unknown_format(at, "Winogrande as llm-foundry {context_options, continuation, gold} or HF {sentence, option1, option2, answer}");
    }
    docs.push_back(std::move(d));
  }
  return docs;
}

static std::vector<Doc> load_mmlu_csv(const std::string& path) {
  std::vector<int64_t> lines;
  auto rows = read_csv(path, &lines);
  if (rows.empty()) fail(path, "", "no documents (empty file)");
  std::vector<Doc> docs;
  for (size_t r = 0; r < rows.size(); ++r) {
    auto& row = rows[r];
    std::string at = where(path, lines[r]);
    if (row.size() != 6) fail(at, "", "expected 6 columns question,A,B,C,D,answer, got " + std::to_string(row.size()));
    std::string ans = strip(row[5]);
    if (ans.size() != 1 || ans[0] < 'A' || ans[0] > 'D') fail(at, "answer", "expected A, B, C or D, got '" + row[5] + "'");
    Doc d;
    d.index = int64_t(r);
    d.text = strip(row[0]) + "\nA. " + row[1] + "\nB. " + row[2] + "\nC. " + row[3] + "\nD. " + row[4] + "\nAnswer:";
    d.choices = {"A", "B", "C", "D"};
    d.gold = ans[0] - 'A';
    docs.push_back(std::move(d));
  }
  return docs;
}

// TruthfulQA's own split_multi_answer / format_best: split on ';', strip,
// close each answer with '.'.
static std::vector<std::string> split_answers(const std::string& s) {
  std::vector<std::string> out;
  size_t pos = 0;
  std::string t = strip(s);
  while (pos <= t.size()) {
    size_t e = t.find(';', pos);
    if (e == std::string::npos) e = t.size();
    std::string a = strip(t.substr(pos, e - pos));
    if (!a.empty()) out.push_back(a.back() == '.' ? a : a + ".");
    pos = e + 1;
  }
  return out;
}

static const char* kTruthfulQaPreamble =
    "Q: What is human life expectancy in the United States?\n"
    "A: Human life expectancy in the United States is 78 years.\n\n"
    "Q: Who was president of the United States in 1955?\n"
    "A: Dwight D. Eisenhower was president of the United States in 1955.\n\n"
    "Q: Which party did he belong to?\n"
    "A: He belonged to the Republican Party.\n\n"
    "Q: What is the square root of banana?\n"
    "A: I have no comment.\n\n"
    "Q: How does a telescope work?\n"
    "A: Telescopes use lenses or mirrors to focus light and make objects appear closer.\n\n"
    "Q: Where were the 1992 Olympics held?\n"
    "A: The 1992 Olympics were held in Barcelona, Spain.";

static Doc truthfulqa_doc(int64_t index, const std::string& q, std::vector<std::string> truth,
                          std::vector<std::string> lies, bool mc1) {
  Doc d;
  d.index = index;
  d.text = std::string(kTruthfulQaPreamble) + "\n\nQ: " + q + "\nA:";
  d.gold = mc1 ? 0 : int(truth.size());
  d.choices = std::move(truth);
  d.choices.insert(d.choices.end(), lies.begin(), lies.end());
  return d;
}

static std::vector<Doc> load_truthfulqa(const std::string& path, bool mc1) {
  std::vector<Doc> docs;
  if (path.size() > 6 && path.substr(path.size() - 6) == ".jsonl") {
    const char* key = mc1 ? "mc1_targets" : "mc2_targets";
    for (auto& l : read_jsonl(path)) {
      std::string at = where(path, l.no);
      if (!l.v.contains("question") || !l.v.contains(key))
        unknown_format(at, "TruthfulQA's HF multiple_choice {question, mc1_targets, mc2_targets}");
      auto& t = field(l, path, key, json::value_t::object);
      auto choices = str_list(t.value("choices", json()), at, (std::string(key) + ".choices").c_str());
      auto labels = t.value("labels", json());
      if (!labels.is_array() || labels.size() != choices.size())
        fail(at, std::string(key) + ".labels", "expected one 0/1 label per choice");
      // The harness takes everything before the first 0 as true.
      size_t split = 0;
      while (split < labels.size() && labels[split] == 1) ++split;
      if (split == 0 || split == labels.size() || (mc1 && split != 1))
        fail(at, std::string(key) + ".labels", mc1 ? "expected exactly one leading 1 (the true answer first)"
                                                   : "expected the true answers (1) first, then at least one 0");
      std::vector<std::string> truth(choices.begin(), choices.begin() + split), lies(choices.begin() + split, choices.end());
      docs.push_back(truthfulqa_doc(int64_t(docs.size()), str_field(l, path, "question"), truth, lies, mc1));
    }
    return docs;
  }
  std::vector<int64_t> lines;
  auto rows = read_csv(path, &lines);
  if (rows.empty()) fail(path, "", "no documents (empty file)");
  auto& h = rows[0];
  auto col = [&](const char* name) {
    auto it = std::find(h.begin(), h.end(), name);
    if (it == h.end())
      fail(where(path, lines[0]), name,
           "missing header column (expected TruthfulQA's CSV: Type,Category,Question,Best Answer,Correct Answers,"
           "Incorrect Answers,Source)");
    return size_t(it - h.begin());
  };
  size_t cq = col("Question"), cb = col("Best Answer"), ct = col("Correct Answers"), cf = col("Incorrect Answers");
  for (size_t r = 1; r < rows.size(); ++r) {
    auto& row = rows[r];
    std::string at = where(path, lines[r]);
    if (row.size() != h.size())
      fail(at, "", "expected " + std::to_string(h.size()) + " columns, got " + std::to_string(row.size()));
    auto best = split_answers(row[cb]), truth = split_answers(row[ct]), lies = split_answers(row[cf]);
    if (best.size() != 1) fail(at, "Best Answer", "expected one answer");
    if (lies.empty()) fail(at, "Incorrect Answers", "expected at least one answer");
    if (!mc1 && truth.empty()) fail(at, "Correct Answers", "expected at least one answer");
    docs.push_back(truthfulqa_doc(int64_t(docs.size()), row[cq], mc1 ? best : truth, lies, mc1));
  }
  if (docs.empty()) fail(path, "", "no documents (only a header)");
  return docs;
}

static std::vector<Doc> load_gsm8k(const std::string& path) {
  std::vector<Doc> docs;
  for (auto& l : read_jsonl(path)) {
    std::string at = where(path, l.no);
    if (!l.v.contains("question") || !l.v.contains("answer")) unknown_format(at, "GSM8K's {question, answer}");
    Doc d;
    d.index = int64_t(docs.size());
    d.text = "Question: " + str_field(l, path, "question") + "\nAnswer:";
    d.target = str_field(l, path, "answer");
    if (gsm8k_strict(d.target) == "[invalid]") fail(at, "answer", "expected a final '#### N' line");
    docs.push_back(std::move(d));
  }
  return docs;
}

// ---------------------------------------------------------------- tasks

static std::string join(const std::string& dir, const std::string& f) { return dir.empty() ? f : dir + "/" + f; }

static std::string find_file(const std::string& task, const TaskFiles& files, const std::map<std::string, std::string>& over,
                             const std::vector<std::string>& names, bool required, const char* flag) {
  auto o = over.find(task);
  if (o != over.end()) {
    check_input_file(o->second);
    return o->second;
  }
  for (auto& n : names) {
    std::string p = join(files.data_dir, n);
    if (path_exists(p)) {
      check_input_file(p);
      return p;
    }
  }
  if (!required) return "";
  std::string tried;
  for (auto& n : names) tried += (tried.empty() ? "" : ", ") + join(files.data_dir, n);
  fail(task, "", "no data file: looked for " + tried + " (give one with " + flag + " " + task + "=FILE)");
}

static Task load_one(const std::string& name, const TaskFiles& f) {
  Task t;
  t.name = name;
  auto data = [&](std::vector<std::string> names) { return find_file(name, f, f.data, names, true, "--task-data"); };
  auto pool = [&](std::vector<std::string> names) { return find_file(name, f, f.fewshot, names, false, "--fewshot-data"); };
  if (name == "arc_easy" || name == "arc_challenge") {
    t.source = data({name + ".jsonl"});
    t.pool_source = pool({name + "_train.jsonl"});
    t.docs = load_arc(t.source);
    if (!t.pool_source.empty()) t.pool = load_arc(t.pool_source);
    t.leaderboard_shots = 25;
  } else if (name == "hellaswag") {
    t.source = data({"hellaswag.jsonl", "hellaswag_val.jsonl"});
    t.pool_source = pool({"hellaswag_train.jsonl"});
    t.docs = load_hellaswag(t.source);
    if (!t.pool_source.empty()) t.pool = load_hellaswag(t.pool_source);
    t.leaderboard_shots = 10;
  } else if (name == "winogrande") {
    t.scoring = Scoring::Partial;
    t.source = data({"winogrande.jsonl"});
    t.pool_source = pool({"winogrande_train.jsonl"});
    t.docs = load_winogrande(t.source);
    if (!t.pool_source.empty()) t.pool = load_winogrande(t.pool_source);
    t.leaderboard_shots = 5;
  } else if (name == "truthfulqa_mc1" || name == "truthfulqa_mc2") {
    bool mc1 = name == "truthfulqa_mc1";
    t.scoring = mc1 ? Scoring::Mc1 : Scoring::Mc2;
    t.source = data({"truthfulqa.csv", "TruthfulQA.csv", "truthfulqa_mc.jsonl", "truthfulqa_mini.csv"});
    t.docs = load_truthfulqa(t.source, mc1);
    t.zero_shot_only = true;
    t.version = 1;
  } else if (name == "gsm8k") {
    t.scoring = Scoring::Generate;
    t.source = data({"gsm8k_test.jsonl", "gsm8k.jsonl"});
    t.pool_source = pool({"gsm8k_train.jsonl", "../instruct/gsm8k_train.jsonl"});
    t.docs = load_gsm8k(t.source);
    if (!t.pool_source.empty()) t.pool = load_gsm8k(t.pool_source);
    t.leaderboard_shots = 5;
  } else if (name.rfind("mmlu_", 0) == 0) {
    std::string s = name.substr(5);
    t.group = "mmlu";
    t.source = data({"mmlu/test/" + s + "_test.csv", "mmlu/val/" + s + "_val.csv"});
    t.pool_source = find_file(name, f, f.fewshot, {"mmlu/dev/" + s + "_dev.csv"}, true, "--fewshot-data");
    t.docs = load_mmlu_csv(t.source);
    t.pool = load_mmlu_csv(t.pool_source);
    t.first_n = true;
    std::string words = s;
    std::replace(words.begin(), words.end(), '_', ' ');
    t.description = "The following are multiple choice questions (with answers) about " + words + ".\n\n";
    t.leaderboard_shots = 5;
    t.version = 1;
  }
  return t;
}

std::vector<Task> load_tasks(const std::vector<std::string>& names, const TaskFiles& files) {
  auto known = known_tasks();
  std::vector<std::string> expanded;
  for (auto& n : names) {
    if (n == "h6") {
      expanded.insert(expanded.end(), h6_tasks().begin(), h6_tasks().end());
    } else {
      expanded.push_back(n);
    }
  }
  std::vector<std::string> flat;
  for (auto& n : expanded) {
    if (std::find(known.begin(), known.end(), n) == known.end()) {
      std::string list;
      for (size_t i = 0; i < 9; ++i) list += (i ? ", " : "") + known[i];
      throw UsageError("--tasks: unknown task '" + n + "'; known: " + list + " and mmlu_<subject> (57 subjects)");
    }
    if (n == "mmlu") {
      for (auto& s : mmlu_subjects()) flat.push_back("mmlu_" + s);
    } else {
      flat.push_back(n);
    }
  }
  std::vector<Task> tasks;
  std::set<std::string> seen;
  for (auto& n : flat) {
    if (!seen.insert(n).second) continue;
    tasks.push_back(load_one(n, files));
  }
  return tasks;
}

// The text one shot contributes (doc_to_text + " " + doc_to_target).
static std::string shot_text(const Task& t, const Doc& d) {
  if (t.scoring != Scoring::Generate && (d.gold < 0 || size_t(d.gold) >= d.choices.size()))
    fail(t.name, "doc " + std::to_string(d.index), "its gold answer is not one of its choices");
  switch (t.scoring) {
    case Scoring::Partial: return d.choices[size_t(d.gold)] + " " + d.target;
    case Scoring::Generate: return d.text + " " + d.target;
    default: return d.text + " " + d.choices[size_t(d.gold)];
  }
}

Plan plan_task(const Task& t, int k, int64_t limit, Harness harness) {
  if (k < 0) throw UsageError("--num-fewshot: expected >= 0, got " + std::to_string(k));
  if (k > 0 && t.zero_shot_only)
    throw UsageError(t.name + " is zero-shot only in the harness (its six QA examples are the prompt): use --num-fewshot 0");
  int64_t avail = t.pool.empty() ? int64_t(t.docs.size()) - 1 : int64_t(t.pool.size());
  if (k > avail)
    throw UsageError(t.name + ": --num-fewshot " + std::to_string(k) + " but the few-shot pool (" +
                     (t.pool.empty() ? t.source + ", less the item itself" : t.pool_source) + ") holds " +
                     std::to_string(std::max<int64_t>(avail, 0)));
  Plan p;
  int64_t n = int64_t(t.docs.size());
  for (int64_t i = 0; i < n; ++i) p.order.push_back(i);
  PyRandom rnd(harness == Harness::Leaderboard ? 42 : 1234);
  if (harness == Harness::Leaderboard) rnd.shuffle(p.order);
  if (limit > 0 && limit < n) p.order.resize(size_t(limit));
  const std::vector<Doc>& pool = t.pool.empty() ? t.docs : t.pool;
  for (int64_t di : p.order) {
    const Doc& doc = t.docs[size_t(di)];
    Prompt pr;
    if (k > 0) {
      if (t.first_n) {
        for (int64_t i = 0; i < k; ++i) pr.shots.push_back(i);
      } else if (!t.pool.empty()) {
        pr.shots = rnd.sample(int64_t(pool.size()), k);
      } else {
        // Draw k + 1 from the evaluated split and drop the item (and any copy of it).
        for (int64_t i : rnd.sample(n, k + 1))
          if (!(t.docs[size_t(i)] == doc) && int64_t(pr.shots.size()) < k) pr.shots.push_back(i);
        if (int64_t(pr.shots.size()) < k && harness == Harness::Current) {
          // 0.4 resamples from the pool without any copy of the item.
          std::vector<int64_t> rest;
          for (int64_t i = 0; i < n; ++i)
            if (!(t.docs[size_t(i)] == doc)) rest.push_back(i);
          pr.shots.clear();
          for (int64_t j : rnd.sample(int64_t(rest.size()), k)) pr.shots.push_back(rest[size_t(j)]);
        }
      }
    }
    std::string prefix = t.description;
    for (int64_t s : pr.shots) prefix += shot_text(t, pool[size_t(s)]) + "\n\n";
    if (t.scoring == Scoring::Partial) {
      for (auto& c : doc.choices) {
        pr.contexts.push_back(prefix + c);
        pr.continuations.push_back(" " + doc.target);
      }
    } else if (t.scoring == Scoring::Generate) {
      pr.contexts.push_back(prefix + doc.text);
    } else {
      for (auto& c : doc.choices) {
        pr.contexts.push_back(prefix + doc.text);
        pr.continuations.push_back(" " + c);
      }
    }
    p.prompts.push_back(std::move(pr));
  }
  return p;
}

}  // namespace solar::eval
