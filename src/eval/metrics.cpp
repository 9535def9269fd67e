#include "eval/metrics.h"

#include <cmath>
#include <limits>

namespace solar::eval {

int argmax(const std::vector<double>& lls) {
  int a = 0;
  for (size_t i = 1; i < lls.size(); ++i)
    if (lls[i] > lls[size_t(a)]) a = int(i);
  return a;
}

size_t py_len(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

int argmax_norm(const std::vector<double>& lls, const std::vector<std::string>& choices) {
  std::vector<double> v(lls.size());
  for (size_t i = 0; i < lls.size(); ++i) v[i] = lls[i] / double(py_len(choices[i]));  // len 0 → ±inf, as numpy
  return argmax(v);
}

double mc2(const std::vector<double>& lls, int n_true) {
  double t = 0, all = 0;
  for (size_t i = 0; i < lls.size(); ++i) {
    double p = std::exp(lls[i]);
    all += p;
    if (int(i) < n_true) t += p;
  }
  return all > 0 ? t / all : 0.0;
}

static const std::string kInvalid = "[invalid]";

static std::string strip(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\n\r\v\f"), e = s.find_last_not_of(" \t\n\r\v\f");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

// The harness's patterns are matched by hand, as Python's re would: std::regex
// recurses per character and a long run of digits in a data file overflows
// the stack.
static bool num_char(char c) { return (c >= '0' && c <= '9') || c == '.' || c == ','; }  // [0-9\.\,]
static bool flex_char(char c) { return num_char(c) || c == '$'; }                        // [$0-9.,]
static bool digit(char c) { return c >= '0' && c <= '9'; }

// re.search(r"#### (\-?[0-9\.\,]+)"): group 1 of the first match, or nullopt.
static bool first_hash_answer(const std::string& t, std::string* out) {
  for (size_t at = t.find("#### "); at != std::string::npos; at = t.find("#### ", at + 1)) {
    size_t p = at + 5, q = p;
    if (q < t.size() && t[q] == '-' && q + 1 < t.size() && num_char(t[q + 1])) ++q;
    size_t e = q;
    while (e < t.size() && num_char(t[e])) ++e;
    if (e > q) {
      *out = t.substr(p, e - p);
      return true;
    }
  }
  return false;
}

std::string gsm8k_pinned_answer(const std::string& text) {
  std::string m;
  if (!first_hash_answer(text, &m)) return kInvalid;
  std::string out;
  for (char c : strip(m))
    if (c != ',') out += c;
  return out;
}

std::string gsm8k_strict(const std::string& text) {
  std::string m;
  return first_hash_answer(text, &m) ? strip(m) : kInvalid;
}

// re.findall(r"(-?[$0-9.,]{2,})|(-?[0-9]+)")[-1], the non-empty group.
std::string gsm8k_flexible(const std::string& t) {
  std::string last;
  bool any = false;
  for (size_t i = 0; i < t.size();) {
    size_t s = i + (t[i] == '-' ? 1 : 0), e = s;
    while (e < t.size() && flex_char(t[e])) ++e;
    if (e - s >= 2) {  // first alternative, greedy
      last = t.substr(i, e - i), any = true, i = e;
      continue;
    }
    e = s;
    while (e < t.size() && digit(t[e])) ++e;
    if (e > s) {  // second alternative
      last = t.substr(i, e - i), any = true, i = e;
      continue;
    }
    ++i;
  }
  return any ? strip(last) : kInvalid;
}

static std::string normalize(std::string s) {
  std::string t;
  for (char c : s)
    if (c != ',' && c != '$') t += c;
  size_t h = t.rfind("#### ");  // (?s).*#### : greedy, so up to the last one
  if (h != std::string::npos) t = t.substr(h + 5);
  // \.$ — Python's $ also matches before a final newline.
  if (!t.empty() && t.back() == '.') t.pop_back();
  else if (t.size() >= 2 && t[t.size() - 1] == '\n' && t[t.size() - 2] == '.') t.erase(t.size() - 2, 1);
  for (char& c : t)
    if (c >= 'A' && c <= 'Z') c = char(c + 32);
  return t;
}

bool gsm8k_exact_match(const std::string& prediction, const std::string& reference) {
  return normalize(prediction) == normalize(reference);
}

double mean(const std::vector<double>& v) {
  if (v.empty()) return std::numeric_limits<double>::quiet_NaN();
  double s = 0;
  for (double x : v) s += x;
  return s / double(v.size());
}

double mean_stderr(const std::vector<double>& v) {
  if (v.size() < 2) return std::numeric_limits<double>::quiet_NaN();
  double mu = mean(v), ss = 0;
  for (double x : v) ss += (x - mu) * (x - mu);
  return std::sqrt(ss / double(v.size() - 1)) / std::sqrt(double(v.size()));
}

}  // namespace solar::eval
