// JSONL records → Record → tokenized Example with the loss mask.
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/log.h"
#include "sft/sft.h"

namespace solar::sft {
namespace {

using json = nlohmann::json;

// Field `f` of j as a string: absent → "" if optional, else an error naming loc and f.
std::string text_of(const json& j, const std::string& f, const std::string& loc, bool required = true) {
  if (!j.contains(f)) {
    if (!required) return "";
    fail(loc, f, "expected a string field '" + f + "', got none (fields: " + [&] {
      std::string k;
      for (auto& [key, v] : j.items()) k += (k.empty() ? "" : ", ") + key;
      return k;
    }() + ")");
  }
  if (!j[f].is_string()) fail(loc, f, std::string("expected a string, got ") + j[f].type_name());
  return j[f].get<std::string>();
}

std::vector<chat::ChatMessage> messages_of(const json& v, const std::string& loc, const std::string& f) {
  if (!v.is_array()) fail(loc, f, std::string("expected a list of {role, content}, got ") + v.type_name());
  std::vector<chat::ChatMessage> out;
  for (size_t i = 0; i < v.size(); i++) {
    const std::string fi = f + "[" + std::to_string(i) + "]";
    if (!v[i].is_object()) fail(loc, fi, std::string("expected {role, content}, got ") + v[i].type_name());
    chat::ChatMessage m{text_of(v[i], "role", loc + ": " + fi), text_of(v[i], "content", loc + ": " + fi)};
    if (m.role != "system" && m.role != "user" && m.role != "assistant")
      fail(loc, fi + ".role", "expected system, user or assistant, got '" + m.role + "'");
    out.push_back(std::move(m));
  }
  return out;
}

// A prompt or completion: a string (one turn of `role`) or a message list.
std::vector<chat::ChatMessage> turns_of(const json& j, const std::string& f, const std::string& role,
                                        const std::string& loc) {
  if (!j.contains(f)) text_of(j, f, loc);  // throws naming the field
  if (j[f].is_array()) return messages_of(j[f], loc, f);
  return {{role, text_of(j, f, loc)}};
}

bool has_reply(const std::vector<chat::ChatMessage>& m) {
  for (const auto& x : m)
    if (x.role == "assistant" && !x.content.empty()) return true;
  return false;
}

Record prompt_completion(std::vector<chat::ChatMessage> prompt, const std::vector<chat::ChatMessage>& completion) {
  Record r{Kind::PromptCompletion, std::move(prompt), "", 0};
  r.messages.insert(r.messages.end(), completion.begin(), completion.end());
  return r;
}

}  // namespace

std::vector<Record> read_records(const std::string& path, const FieldMap& map, Counts* counts) {
  static const char* kFormats[] = {"auto", "messages", "prompt-completion", "text", "alpaca", "gsm8k"};
  if (std::find(std::begin(kFormats), std::end(kFormats), map.format) == std::end(kFormats))
    fail("--format", "", "expected auto, messages, prompt-completion, text, alpaca or gsm8k, got '" + map.format + "'");
  const std::string all = read_file(path);
  std::vector<Record> out;
  int64_t line = 0, records = 0, empty = 0;
  std::string first_empty;  // "path:line: field" of the first record with nothing to learn
  for (size_t at = 0; at < all.size();) {
    size_t end = all.find('\n', at);
    if (end == std::string::npos) end = all.size();
    const std::string s = all.substr(at, end - at);
    at = end + 1;
    ++line;
    if (s.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string loc = path + ":" + std::to_string(line);
    // parse_json: the syntax error's place and kind in the message, and nesting bounded.
    json j = parse_json(s, loc);
    if (!j.is_object()) fail(loc, "", "expected one JSON object a line, got " + json_brief(j));
    std::string fmt = map.format;
    if (fmt == "auto")
      fmt = j.contains(map.messages_field)                                         ? "messages"
            : j.contains(map.prompt_field) || j.contains(map.completion_field)     ? "prompt-completion"
            : j.contains(map.text_field)                                           ? "text"
            : j.contains("instruction")                                            ? "alpaca"
            : j.contains("question") && j.contains("answer")                        ? "gsm8k"
                                                                                   : "";
    if (fmt.empty())
      fail(loc, "", "expected a '" + map.messages_field + "', '" + map.prompt_field + "'/'" + map.completion_field +
                        "' or '" + map.text_field + "' field (or --format alpaca|gsm8k, --prompt-field/--completion-field)");
    std::vector<Record> recs;
    std::vector<std::string> reply;  // each record's field that must hold something to learn
    if (fmt == "messages") {
      if (!j.contains(map.messages_field)) text_of(j, map.messages_field, loc);
      recs.push_back({Kind::Messages, messages_of(j[map.messages_field], loc, map.messages_field), "", 0});
      reply.push_back(map.messages_field);
    } else if (fmt == "prompt-completion") {
      recs.push_back(prompt_completion(turns_of(j, map.prompt_field, "user", loc),
                                       turns_of(j, map.completion_field, "assistant", loc)));
      reply.push_back(map.completion_field);
    } else if (fmt == "gsm8k") {
      recs.push_back(prompt_completion({{"user", text_of(j, "question", loc)}}, {{"assistant", text_of(j, "answer", loc)}}));
      reply.push_back("answer");
    } else if (fmt == "alpaca") {
      const std::string instruction = text_of(j, "instruction", loc);
      auto add = [&](const json& x, const std::string& where, const std::string& prefix) {
        const std::string input = text_of(x, "input", where, false);
        recs.push_back(prompt_completion({{"user", input.empty() ? instruction : instruction + "\n\n" + input}},
                                         {{"assistant", text_of(x, "output", where)}}));
        reply.push_back(prefix + "output");
      };
      if (j.contains("instances")) {  // the self-instruct seed tasks: one example per instance
        if (!j["instances"].is_array()) fail(loc, "instances", "expected a list of {input, output}");
        for (size_t i = 0; i < j["instances"].size(); i++) {
          const json& x = j["instances"][i];
          if (!x.is_object()) fail(loc, "instances[" + std::to_string(i) + "]", "expected {input, output}");
          add(x, loc + ": instances[" + std::to_string(i) + "]", "instances[" + std::to_string(i) + "].");
        }
      } else {
        add(j, loc, "");
      }
    } else {
      recs.push_back({Kind::Text, {}, text_of(j, map.text_field, loc), 0});
      reply.push_back(map.text_field);
    }
    for (size_t k = 0; k < recs.size(); k++) {
      Record& r = recs[k];
      r.line = line;
      ++counts->records, ++records;
      if (r.kind == Kind::Text ? r.text.empty() : !has_reply(r.messages)) {
        ++counts->empty;
        if (empty++ == 0) first_empty = loc + ": " + reply[k];
        continue;
      }
      out.push_back(std::move(r));
    }
  }
  // The documented policy: a record with nothing to learn (an empty text or
  // completion, no assistant reply with content) is skipped, and said so here;
  // a file of nothing but such records is an error.
  const std::string nothing = "a non-empty text, completion or assistant reply";
  if (records == 0) fail(path, "", "expected JSONL records, one JSON object a line, got none");
  if (out.empty())
    fail(first_empty, "", "expected at least one record with " + nothing + ", got " + std::to_string(records) +
                              " records all with nothing to learn (this is the first)");
  if (empty)
    log_warn("sft", path + ": skipped " + std::to_string(empty) + " of " + std::to_string(records) +
                        " records with nothing to learn (expected " + nothing + "), the first at " + first_empty,
             {{"file", path}, {"empty", empty}, {"records", records}});
  return out;
}

namespace {

// The part of conversation rendering `b` after its prefix `a` (render_segments
// of a shorter conversation). Fails when a is not a prefix of b.
std::vector<chat::ChatSegment> after(const std::vector<chat::ChatSegment>& a, const std::vector<chat::ChatSegment>& b,
                                     chat::ChatTemplate t) {
  auto refuse = [&] {
    fail("--chat-template " + chat::chat_template_name(t), "",
         "expected each turn's rendering to extend the previous one (cannot mark the assistant tokens)");
  };
  if (a.size() > b.size()) refuse();
  std::vector<chat::ChatSegment> out;
  size_t i = 0;
  for (; i < a.size(); i++) {
    const bool last = i + 1 == a.size();
    if (a[i].special != b[i].special) refuse();
    if (a[i].text == b[i].text) continue;
    if (!last || a[i].special || b[i].text.compare(0, a[i].text.size(), a[i].text) != 0) refuse();
    out.push_back({b[i].text.substr(a[i].text.size()), false});
  }
  out.insert(out.end(), b.begin() + long(i), b.end());
  return out;
}

void append(const tokenizer::Tokenizer& tok, chat::ChatTemplate t, const std::vector<chat::ChatSegment>& segs,
            bool train, Example& e) {
  for (const auto& s : segs) {
    std::vector<int> ids;
    if (s.special) {
      int id = s.text == "<s>" ? tok.bos_id() : s.text == "</s>" ? tok.eos_id() : tok.piece_to_id(s.text);
      if (id < 0)
        fail("--chat-template " + chat::chat_template_name(t), "",
             "the tokenizer has no token '" + s.text + "' the template needs (pick another --chat-template)");
      ids = {id};
    } else {
      ids = tok.encode(s.text, false);
    }
    for (int id : ids) e.ids.push_back(id), e.train.push_back(train);
  }
}

}  // namespace

Example encode(const tokenizer::Tokenizer& tok, const Record& r, const EncodeOptions& o) {
  Example e;
  if (r.kind == Kind::Text) {
    for (int id : tok.encode(r.text, true, true)) e.ids.push_back(id), e.train.push_back(1);
    return e;
  }
  const chat::ChatTemplate t = o.chat_template;
  const bool masked = r.kind == Kind::Messages ? o.assistant_only_loss : o.completion_only_loss;
  std::vector<chat::ChatMessage> msgs = r.messages;
  while (!msgs.empty() && msgs.back().role != "assistant") msgs.pop_back();  // nothing to learn after the last reply
  if ((t == chat::ChatTemplate::Solar || t == chat::ChatTemplate::ChatML) && tok.bos_id() >= 0)
    e.ids.push_back(tok.bos_id()), e.train.push_back(!masked);
  std::vector<chat::ChatMessage> prefix;
  std::vector<chat::ChatSegment> done = chat::render_segments(t, prefix, false);
  append(tok, t, done, !masked, e);
  for (const auto& m : msgs) {
    if (m.role == "assistant") {
      auto head = chat::render_segments(t, prefix, true);
      append(tok, t, after(done, head, t), !masked, e);
      done = std::move(head);
    }
    prefix.push_back(m);
    auto body = chat::render_segments(t, prefix, false);
    append(tok, t, after(done, body, t), m.role == "assistant" || !masked, e);
    done = std::move(body);
    if (m.role == "assistant" && t == chat::ChatTemplate::Solar && tok.eos_id() >= 0)
      e.ids.push_back(tok.eos_id()), e.train.push_back(1);
  }
  return e;
}

}  // namespace solar::sft
