#include "serve/request.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/json.h"

namespace solar::serve {

using nlohmann::json;

void bad_request(const std::string& param, const std::string& message, const std::string& code) {
  throw ApiError(400, "invalid_request_error", param, code, (param.empty() ? "" : param + ": ") + message);
}

static json parse_body(std::string_view body, const RequestLimits& lim) {
  if (body.size() > lim.max_body)
    throw ApiError(413, "invalid_request_error", "", "request_too_large",
                   "request body is " + std::to_string(body.size()) + " bytes, more than the limit " +
                       std::to_string(lim.max_body));
  json j;
  try {
    j = parse_json(body, "request body");
  } catch (const Error& e) {
    bad_request("", e.what(), "invalid_json");
  }
  if (!j.is_object()) bad_request("", "expected a JSON object, got " + json_brief(j));
  return j;
}

static const json* field(const json& j, const char* key) {
  auto it = j.find(key);
  return it == j.end() || it->is_null() ? nullptr : &*it;
}

static std::string get_string(const json& v, const std::string& param) {
  if (!v.is_string()) bad_request(param, "expected a string, got " + json_brief(v));
  return v.get<std::string>();
}

static std::string required_string(const json& j, const char* key) {
  const json* v = field(j, key);
  if (!v) bad_request(key, "required");
  return get_string(*v, key);
}

static bool get_bool(const json& j, const char* key, bool def) {
  const json* v = field(j, key);
  if (!v) return def;
  if (!v->is_boolean()) bad_request(key, "expected true or false, got " + json_brief(*v));
  return v->get<bool>();
}

static std::optional<double> get_double(const json& j, const char* key, double lo, double hi) {
  const json* v = field(j, key);
  if (!v) return std::nullopt;
  if (!v->is_number()) bad_request(key, "expected a number, got " + json_brief(*v));
  double x = v->get<double>();
  if (!std::isfinite(x) || x < lo || x > hi)
    bad_request(key, "expected a number in [" + json(lo).dump() + ", " + json(hi).dump() + "], got " + json_brief(*v));
  return x;
}

static std::optional<float> get_number(const json& j, const char* key, double lo, double hi) {
  if (auto x = get_double(j, key, lo, hi)) return float(*x);
  return std::nullopt;
}

static std::optional<int64_t> get_int(const json& j, const char* key, int64_t lo, int64_t hi) {
  const json* v = field(j, key);
  if (!v) return std::nullopt;
  if (!v->is_number_integer() && !(v->is_number_float() && std::floor(v->get<double>()) == v->get<double>()))
    bad_request(key, "expected an integer, got " + json_brief(*v));
  double x = v->get<double>();
  if (!(x >= double(lo) && x <= double(hi)))
    bad_request(key, "expected an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " + json_brief(*v));
  return v->is_number_unsigned() ? int64_t(v->get<uint64_t>()) : v->is_number_integer() ? v->get<int64_t>() : int64_t(x);
}

// OpenAI content: a string, or a list of parts of which the text ones count.
static std::string message_content(const json& v, const std::string& param) {
  if (v.is_string()) return v.get<std::string>();
  if (!v.is_array()) bad_request(param, "expected a string or a list of text parts, got " + json_brief(v));
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) {
    const json& p = v[i];
    const std::string pp = param + "[" + std::to_string(i) + "]";
    if (!p.is_object() || !p.contains("type") || p["type"] != "text")
      bad_request(pp, "expected {\"type\": \"text\", \"text\": ...} (only text is supported), got " + json_brief(p));
    out += get_string(p.contains("text") ? p["text"] : json(), pp + ".text");
  }
  return out;
}

CompletionRequest parse_completion_request(std::string_view body, bool chat, const RequestLimits& lim) {
  json j = parse_body(body, lim);
  CompletionRequest r;
  r.chat = chat;
  if (const json* m = field(j, "model")) r.model = get_string(*m, "model");
  if (chat) {
    const json* ms = field(j, "messages");
    if (!ms) bad_request("messages", "required");
    if (!ms->is_array() || ms->empty()) bad_request("messages", "expected a non-empty list of messages, got " + json_brief(*ms));
    if (int(ms->size()) > lim.max_messages)
      bad_request("messages", "more than " + std::to_string(lim.max_messages) + " messages");
    for (size_t i = 0; i < ms->size(); ++i) {
      const json& m = (*ms)[i];
      const std::string p = "messages[" + std::to_string(i) + "]";
      if (!m.is_object()) bad_request(p, "expected an object {role, content}, got " + json_brief(m));
      const json* role = field(m, "role");
      if (!role) bad_request(p + ".role", "required");
      std::string rs = get_string(*role, p + ".role");
      if (rs == "developer") rs = "system";  // OpenAI's newer name for it
      if (rs != "system" && rs != "user" && rs != "assistant")
        bad_request(p + ".role", "expected \"system\", \"user\" or \"assistant\", got " + json_brief(*role));
      const json* content = field(m, "content");
      if (!content) bad_request(p + ".content", "required");
      r.messages.push_back({rs, message_content(*content, p + ".content")});
    }
  } else {
    const json* p = field(j, "prompt");
    if (!p) bad_request("prompt", "required");
    if (p->is_array()) {
      // A list of one string is what the openai package sends for a string.
      if (p->size() != 1) bad_request("prompt", "expected a string (or a list of exactly one), got " + json_brief(*p));
      r.prompt = get_string((*p)[0], "prompt[0]");
    } else {
      r.prompt = get_string(*p, "prompt");
    }
  }
  auto mt = get_int(j, "max_completion_tokens", 0, lim.max_tokens);
  if (!mt) mt = get_int(j, "max_tokens", 0, lim.max_tokens);
  if (mt) r.max_tokens = int(*mt);
  r.temperature = get_number(j, "temperature", 0, 2);
  r.top_p = get_number(j, "top_p", 0, 1);
  r.min_p = get_number(j, "min_p", 0, 1);
  r.repeat_penalty = get_number(j, "repeat_penalty", 0, 10);
  if (auto k = get_int(j, "top_k", 0, 1 << 30)) r.top_k = int(*k);
  if (const json* s = field(j, "seed")) {
    if (!s->is_number_integer()) bad_request("seed", "expected an integer, got " + json_brief(*s));
    r.seed = s->is_number_unsigned() ? s->get<uint64_t>() : uint64_t(s->get<int64_t>());
  }
  if (auto n = get_int(j, "n", 1, 1); n && *n != 1) bad_request("n", "only n = 1 is supported");
  if (const json* s = field(j, "stop")) {
    if (s->is_string()) {
      r.stop.push_back(s->get<std::string>());
    } else if (s->is_array()) {
      if (int(s->size()) > lim.max_stop) bad_request("stop", "at most " + std::to_string(lim.max_stop) + " stop strings");
      for (size_t i = 0; i < s->size(); ++i) r.stop.push_back(get_string((*s)[i], "stop[" + std::to_string(i) + "]"));
    } else {
      bad_request("stop", "expected a string or a list of strings, got " + json_brief(*s));
    }
  }
  r.stream = get_bool(j, "stream", false);
  if (const json* so = field(j, "stream_options")) {
    if (!so->is_object()) bad_request("stream_options", "expected an object, got " + json_brief(*so));
    r.include_usage = get_bool(*so, "include_usage", false);
  }
  return r;
}

TokenizeRequest parse_tokenize_request(std::string_view body, const RequestLimits& lim) {
  json j = parse_body(body, lim);
  TokenizeRequest r;
  r.content = required_string(j, "content");
  r.add_special = get_bool(j, "add_special", true);
  return r;
}

std::vector<int> parse_detokenize_request(std::string_view body, const RequestLimits& lim) {
  json j = parse_body(body, lim);
  const json* t = field(j, "tokens");
  if (!t) bad_request("tokens", "required");
  if (!t->is_array()) bad_request("tokens", "expected a list of token ids, got " + json_brief(*t));
  std::vector<int> ids;
  for (size_t i = 0; i < t->size(); ++i) {
    const json& v = (*t)[i];
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > INT32_MAX)
      bad_request("tokens[" + std::to_string(i) + "]", "expected a token id (an integer >= 0), got " + json_brief(v));
    ids.push_back(int(v.get<int64_t>()));
  }
  return ids;
}

RagQueryRequest parse_rag_query_request(std::string_view body, const RequestLimits& lim) {
  json j = parse_body(body, lim);
  RagQueryRequest r;
  r.query = required_string(j, "query");
  if (auto k = get_int(j, "k", 1, 1000)) r.k = int(*k);
  if (const json* m = field(j, "mode")) {
    r.mode = get_string(*m, "mode");
    if (*r.mode != "bm25" && *r.mode != "dense" && *r.mode != "hybrid")
      bad_request("mode", "expected \"bm25\", \"dense\" or \"hybrid\", got " + json_brief(*m));
  }
  if (const json* f = field(j, "fusion")) {
    r.fusion = get_string(*f, "fusion");
    if (*r.fusion != "relative" && *r.fusion != "rrf") bad_request("fusion", "expected \"relative\" or \"rrf\", got " + json_brief(*f));
  }
  r.alpha = get_double(j, "alpha", 0, 1);
  if (field(j, "exact")) r.exact = get_bool(j, "exact", false);
  if (auto n = get_int(j, "rerank", 0, 1000)) r.rerank = int(*n);
  return r;
}

std::string error_body(const ApiError& e) {
  json err = {{"message", e.what()}, {"type", e.type}, {"param", e.param.empty() ? json() : json(e.param)},
              {"code", e.code.empty() ? json() : json(e.code)}};
  return json{{"error", err}}.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace solar::serve
