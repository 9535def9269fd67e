#include "core/json.h"

#include <charconv>
#include <functional>
#include <set>

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/yaml.h>

#include "core/error.h"
#include "core/fs.h"

namespace solar {

using json = nlohmann::json;

// Counts [ and { outside strings: O(n), no allocation, and independent of
// how the parser itself recurses.
static void check_depth(std::string_view t, const std::string& src) {
  int depth = 0;
  bool in_str = false, esc = false;
  for (size_t i = 0; i < t.size(); ++i) {
    char c = t[i];
    if (in_str) {
      if (esc) esc = false;
      else if (c == '\\') esc = true;
      else if (c == '"') in_str = false;
    } else if (c == '"') {
      in_str = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth)
        fail(src, "", "nesting deeper than " + std::to_string(kMaxJsonDepth) + " levels at byte " + std::to_string(i));
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
}

// The library's message without its "[json.exception.…] " tag, cut short:
// it quotes the last token read, which may be a whole megabyte string.
static std::string short_what(const std::exception& e) {
  std::string s = e.what();
  if (s.rfind("[json.exception.", 0) == 0 && s.find("] ") != std::string::npos) s = s.substr(s.find("] ") + 2);
  if (s.size() > 200) s = s.substr(0, 200) + "…";
  return s;
}

json parse_json(std::string_view text, const std::string& source, const json::parser_callback_t& cb) {
  check_depth(text, source);
  try {
    return json::parse(text.begin(), text.end(), cb, true);
  } catch (const json::exception& e) {
    fail(source, "", "JSON syntax error: " + short_what(e));
  }
}

namespace {
// nlohmann keeps the last of duplicate keys silently; its parser callback sees
// every key, so the first one repeated within an object is remembered.
struct FirstDuplicate {
  std::vector<std::set<std::string>> open;
  std::string dup;
  bool operator()(int, json::parse_event_t ev, json& v) {
    if (ev == json::parse_event_t::object_start) open.emplace_back();
    else if (ev == json::parse_event_t::object_end && !open.empty()) open.pop_back();
    else if (ev == json::parse_event_t::key && !open.empty() && !open.back().insert(v.get<std::string>()).second &&
             dup.empty())
      dup = v.get<std::string>();
    return true;
  }
};
}  // namespace

json parse_json_unique(std::string_view text, const std::string& source) {
  FirstDuplicate d;
  json j = parse_json(text, source, std::ref(d));
  if (!d.dup.empty()) fail(source, d.dup, "duplicate key (which one is meant? write it once)");
  return j;
}

std::string read_document(const std::string& path, size_t max_bytes) {
  std::string s = read_file_prefix(path, max_bytes + 1);
  if (s.size() > max_bytes) fail(path, "", "larger than " + std::to_string(max_bytes) + " bytes (too big for a config)");
  return s;
}

json read_json_file(const std::string& path, size_t max_bytes) { return parse_json(read_document(path, max_bytes), path); }

namespace {
struct YamlToJson {
  const std::string& src;
  size_t budget = kMaxYamlExpanded;

  void spend(size_t n, const YAML::Node& at) {
    if (n > budget)
      fail(src, at_line(at), "expands past " + std::to_string(kMaxYamlExpanded >> 20) +
                                 " MiB (YAML aliases repeat too much; write the values out)");
    budget -= n;
  }
  static std::string at_line(const YAML::Node& n) {
    return n.Mark().is_null() ? std::string() : "line " + std::to_string(n.Mark().line + 1);
  }

  json convert(const YAML::Node& n, int depth) {
    if (depth > kMaxJsonDepth)
      fail(src, at_line(n), "nesting deeper than " + std::to_string(kMaxJsonDepth) + " levels");
    spend(16, n);
    switch (n.Type()) {
      case YAML::NodeType::Null:
      case YAML::NodeType::Undefined: return nullptr;
      case YAML::NodeType::Sequence: {
        json a = json::array();
        for (const auto& e : n) a.push_back(convert(e, depth + 1));
        return a;
      }
      case YAML::NodeType::Map: {
        json o = json::object();
        for (const auto& kv : n) {
          if (!kv.first.IsScalar()) fail(src, at_line(kv.first), "expected a plain string as a mapping key");
          spend(kv.first.Scalar().size(), kv.first);
          // YAML requires unique keys; yaml-cpp keeps both and the last would win.
          if (o.contains(kv.first.Scalar()))
            fail(src, at_line(kv.first), "duplicate key '" + kv.first.Scalar() + "' (which one is meant? write it once)");
          o[kv.first.Scalar()] = convert(kv.second, depth + 1);
        }
        return o;
      }
      case YAML::NodeType::Scalar: break;
    }
    const std::string& s = n.Scalar();
    spend(s.size(), n);
    if (n.Tag() == "!") return s;
    if (s == "true" || s == "True") return true;
    if (s == "false" || s == "False") return false;
    if (s == "null" || s == "~") return nullptr;
    // from_chars: no exceptions (a scalar that is no number costs nothing,
    // which matters when aliases repeat it a million times) and no locale.
    const char* b = s.data() + (s.size() > 1 && s[0] == '+' && s[1] != '-' ? 1 : 0);
    const char* e = s.data() + s.size();
    long long i = 0;
    if (auto r = std::from_chars(b, e, i); r.ec == std::errc() && r.ptr == e) return i;
    double d = 0;
    if (auto r = std::from_chars(b, e, d); r.ec == std::errc() && r.ptr == e) return d;
    return s;
  }
};
}  // namespace

json parse_yaml(std::string_view text, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    // yaml-cpp's own guard stops its recursive parser (its message is "bad file").
    bool deep = dynamic_cast<const YAML::DeepRecursion*>(&e) != nullptr;
    fail(source, e.mark.is_null() ? std::string() : "line " + std::to_string(e.mark.line + 1),
         deep ? "nesting deeper than " + std::to_string(kMaxJsonDepth) + " levels" : "YAML syntax error: " + e.msg);
  }
  return YamlToJson{source}.convert(root, 0);
}

// Writes a little past `limit` characters (so the caller sees it was cut):
// recursion stops once the budget is spent, so it is at most ~limit deep
// whatever the value's depth.
static void brief(const json& v, std::string& out, size_t limit) {
  if (out.size() > limit) return;
  if (v.is_array() || v.is_object()) {
    out += v.is_array() ? '[' : '{';
    bool first = true;
    for (auto it = v.begin(); it != v.end() && out.size() <= limit; ++it) {
      if (!first) out += ", ";
      first = false;
      if (v.is_object()) out += json(it.key()).dump(-1, ' ', false, json::error_handler_t::replace) + ": ";
      brief(*it, out, limit);
    }
    if (out.size() <= limit) out += v.is_array() ? ']' : '}';
  } else if (v.is_string()) {
    const auto& s = v.get_ref<const std::string&>();
    out += json(s.substr(0, limit)).dump(-1, ' ', false, json::error_handler_t::replace);
  } else {
    out += v.dump();
  }
}

std::string json_brief(const json& v) {
  constexpr size_t kLimit = 60;
  std::string s;
  brief(v, s, kLimit);
  if (s.size() > kLimit) {
    size_t cut = kLimit;
    while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;  // not inside a UTF-8 character
    s = s.substr(0, cut) + "…";
  }
  return v.is_null() ? s : std::string(v.type_name()) + " " + s;
}

}  // namespace solar
