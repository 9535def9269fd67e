#include "chat/chat.h"

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace solar::chat {
namespace {

// Python's str.strip() on ASCII whitespace, as the llama2 template uses it.
std::string strip(const std::string& s) {
  const char* ws = " \t\n\r\v\f";
  size_t b = s.find_first_not_of(ws);
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

struct Out {
  std::vector<ChatSegment> segs;
  void text(const std::string& t) {
    if (t.empty()) return;
    if (!segs.empty() && !segs.back().special) segs.back().text += t;
    else segs.push_back({t, false});
  }
  void special(const std::string& t) { segs.push_back({t, true}); }
};

void check_role(const ChatMessage& m, size_t i) {
  if (m.role != "system" && m.role != "user" && m.role != "assistant")
    fail("", "messages[" + std::to_string(i) + "].role", "expected system, user or assistant, got '" + m.role + "'");
}

// llama2 and mistral: optional leading system message, then user/assistant
// strictly alternating from user (the HF templates raise otherwise).
std::vector<ChatMessage> alternating(const std::vector<ChatMessage>& msgs, std::string* system) {
  size_t first = !msgs.empty() && msgs[0].role == "system" ? 1 : 0;
  if (first) *system = msgs[0].content;
  std::vector<ChatMessage> loop(msgs.begin() + first, msgs.end());
  for (size_t i = 0; i < loop.size(); i++)
    if ((loop[i].role == "user") != (i % 2 == 0) || loop[i].role == "system")
      fail("", "messages[" + std::to_string(i + first) + "].role",
           std::string("expected ") + (i % 2 == 0 ? "user" : "assistant") +
               " (roles must alternate user/assistant/...), got '" + loop[i].role + "'");
  return loop;
}

}  // namespace

ChatTemplate parse_chat_template(const std::string& name) {
  for (auto t : {ChatTemplate::Solar, ChatTemplate::Llama2, ChatTemplate::Mistral, ChatTemplate::ChatML})
    if (chat_template_name(t) == name) return t;
  // Every name comes from --chat-template: a usage error (exit 2), whichever command asks.
  fail("--chat-template", "", "expected solar, llama2, mistral or chatml, got '" + name + "'");
}

std::string chat_template_name(ChatTemplate t) {
  switch (t) {
    case ChatTemplate::Solar: return "solar";
    case ChatTemplate::Llama2: return "llama2";
    case ChatTemplate::Mistral: return "mistral";
    case ChatTemplate::ChatML: return "chatml";
    case ChatTemplate::None: break;
  }
  return "";
}

std::vector<ChatSegment> render_segments(ChatTemplate t, const std::vector<ChatMessage>& msgs, bool add_generation_prompt) {
  for (size_t i = 0; i < msgs.size(); i++) check_role(msgs[i], i);
  Out o;
  std::string system;
  bool has_system = false;
  switch (t) {
    case ChatTemplate::Solar:
      for (const auto& m : msgs) {
        if (m.role == "system" && !m.content.empty()) o.text("### System:\n" + m.content + "\n\n");
        if (m.role == "user") o.text("### User:\n" + m.content + "\n\n");
        if (m.role == "assistant") o.text("### Assistant:\n" + m.content);
      }
      if (add_generation_prompt && !msgs.empty()) o.text("### Assistant:\n");
      break;
    case ChatTemplate::Llama2: {
      auto loop = alternating(msgs, &system);
      has_system = !msgs.empty() && msgs[0].role == "system";
      for (size_t i = 0; i < loop.size(); i++) {
        std::string content = loop[i].content;
        if (i == 0 && has_system) content = "<<SYS>>\n" + system + "\n<</SYS>>\n\n" + content;
        if (loop[i].role == "user") {
          o.special("<s>");
          o.text("[INST] " + strip(content) + " [/INST]");
        } else {
          o.text(" " + strip(content) + " ");
          o.special("</s>");
        }
      }
      break;  // the prompt already ends in "[/INST]": nothing to add
    }
    case ChatTemplate::Mistral: {
      auto loop = alternating(msgs, &system);
      has_system = !msgs.empty() && msgs[0].role == "system";
      o.special("<s>");
      for (size_t i = 0; i < loop.size(); i++) {
        std::string content = loop[i].content;
        if (i == 0 && has_system) content = system + "\n\n" + content;
        if (loop[i].role == "user") {
          o.text("[INST] " + content + " [/INST]");
        } else {
          o.text(content);
          o.special("</s>");
          o.text(" ");
        }
      }
      break;
    }
    case ChatTemplate::ChatML:
      for (const auto& m : msgs) {
        o.special("<|im_start|>");
        o.text(m.role + "\n" + m.content);
        o.special("<|im_end|>");
        o.text("\n");
      }
      if (add_generation_prompt) {
        o.special("<|im_start|>");
        o.text("assistant\n");
      }
      break;
    case ChatTemplate::None:
      fail("", "chat template", "expected solar, llama2, mistral or chatml, got none");
  }
  return o.segs;
}

std::string render(ChatTemplate t, const std::vector<ChatMessage>& msgs, bool add_generation_prompt) {
  std::string s;
  for (const auto& seg : render_segments(t, msgs, add_generation_prompt)) s += seg.text;
  return s;
}

std::vector<int> encode_chat(const tokenizer::Tokenizer& tok, ChatTemplate t, const std::vector<ChatMessage>& msgs,
                             bool add_generation_prompt) {
  std::vector<int> ids;
  if ((t == ChatTemplate::Solar || t == ChatTemplate::ChatML) && tok.bos_id() >= 0) ids.push_back(tok.bos_id());
  for (const auto& seg : render_segments(t, msgs, add_generation_prompt)) {
    int id = !seg.special ? -1
             : seg.text == "<s>" ? tok.bos_id()
             : seg.text == "</s>" ? tok.eos_id()
                                  : tok.piece_to_id(seg.text);
    if (id >= 0) {
      ids.push_back(id);
    } else {
      auto t_ids = tok.encode(seg.text, false);
      ids.insert(ids.end(), t_ids.begin(), t_ids.end());
    }
  }
  return ids;
}

int drop_oldest_turns(const tokenizer::Tokenizer& tok, ChatTemplate t, std::vector<ChatMessage>& msgs, size_t max_tokens,
                      std::vector<int>* ids) {
  const size_t first = !msgs.empty() && msgs[0].role == "system" ? 1 : 0;
  int dropped = 0;
  while (true) {
    *ids = encode_chat(tok, t, msgs, true);
    if (ids->size() <= max_tokens) break;
    size_t n = first + 1 < msgs.size() && msgs[first + 1].role == "assistant" ? 2 : 1;
    if (first + n >= msgs.size()) break;
    msgs.erase(msgs.begin() + long(first), msgs.begin() + long(first + n));
    ++dropped;
  }
  return dropped;
}

std::vector<std::string> stop_strings(ChatTemplate t) {
  switch (t) {
    case ChatTemplate::Solar: return {"### User:", "### System:"};
    case ChatTemplate::Llama2:
    case ChatTemplate::Mistral: return {"[INST]"};
    case ChatTemplate::ChatML: return {"<|im_end|>", "<|im_start|>"};
    case ChatTemplate::None: break;
  }
  return {};
}

ChatTemplate chat_template_from_jinja(std::string_view j) {
  if (j.find("<|im_start|>") != j.npos) return ChatTemplate::ChatML;
  if (j.find("### Assistant:") != j.npos || j.find("### User:") != j.npos) return ChatTemplate::Solar;
  if (j.find("<<SYS>>") != j.npos) return ChatTemplate::Llama2;
  if (j.find("[INST]") != j.npos) return ChatTemplate::Mistral;
  return ChatTemplate::None;
}

ChatTemplate detect_chat_template(const nlohmann::json& cfg) {
  if (!cfg.is_object() || !cfg.contains("chat_template")) return ChatTemplate::None;
  const auto& ct = cfg["chat_template"];
  if (ct.is_string()) return chat_template_from_jinja(ct.get<std::string>());
  if (!ct.is_array()) return ChatTemplate::None;
  const nlohmann::json* pick = nullptr;
  for (const auto& e : ct)
    if (e.is_object() && e.contains("template") && e["template"].is_string() &&
        (!pick || (e.contains("name") && e["name"] == "default")))  // value() would throw on a non-string name
      pick = &e;
  return pick ? chat_template_from_jinja((*pick)["template"].get<std::string>()) : ChatTemplate::None;
}

}  // namespace solar::chat
