// solar/chat/chat.h — chat templates, rendered exactly as the Hugging Face
// Jinja templates of the models that ship them:
//   solar   upstage/SOLAR-10.7B-Instruct-v1.0  "### User:\n{u}\n\n### Assistant:\n{a}"
//   llama2  meta-llama/Llama-2-*-chat-hf       "<s>[INST] <<SYS>>\n{s}\n<</SYS>>\n\n{u} [/INST] {a} </s>"
//   mistral mistralai/Mistral-7B-Instruct-v0.1 "<s>[INST] {u} [/INST]{a}</s> "
//   chatml  "<|im_start|>{role}\n{content}<|im_end|>\n"
// A conversation renders to segments (text, or one special token such as
// "<s>"), so BOS/EOS become token ids rather than text the tokenizer would
// split into "<", "s", ">".
// Threads: every function here is pure (no shared state): call from any thread.
#pragma once
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace solar::chat {

enum class ChatTemplate { None, Solar, Llama2, Mistral, ChatML };
// "solar", "llama2", "mistral", "chatml"; throws solar::Error on any other.
ChatTemplate parse_chat_template(const std::string& name);
std::string chat_template_name(ChatTemplate t);

struct ChatMessage {
  std::string role;  // "system", "user" or "assistant"
  std::string content;
};

struct ChatSegment {
  std::string text;
  bool special = false;  // text is one special token's spelling: "<s>", "</s>", "<|im_start|>"…
};

// Throws solar::Error when the template rejects the conversation (llama2 and
// mistral need user/assistant alternation). Mistral v0.1 has no system role:
// a system message is prepended to the first user message as "{s}\n\n{u}".
std::vector<ChatSegment> render_segments(ChatTemplate t, const std::vector<ChatMessage>& messages,
                                         bool add_generation_prompt);
// The string apply_chat_template(tokenize=False) returns (bos "<s>", eos "</s>").
std::string render(ChatTemplate t, const std::vector<ChatMessage>& messages, bool add_generation_prompt);
// Token ids for the prompt: "<s>"/"</s>" are the tokenizer's BOS/EOS, other
// specials their piece's id (or plain text when the vocab lacks them); each
// text segment is encoded on its own, as HF's slow tokenizer does between
// special tokens. Templates without a BOS of their own (solar, chatml) get
// the tokenizer's BOS first, as tokenizer(prompt) adds it.
std::vector<int> encode_chat(const tokenizer::Tokenizer& tok, ChatTemplate t, const std::vector<ChatMessage>& messages,
                             bool add_generation_prompt);
// For a conversation that outgrows the context: drops the oldest turns (a
// user message and the reply after it) until encode_chat(..., true) is at most
// max_tokens long, keeping a leading system message and the last message.
// Whole turns go, so every template still renders (llama2 and mistral fold the
// system message into whichever user message is now first). Returns the number
// of turns dropped; *ids gets the final encoding.
int drop_oldest_turns(const tokenizer::Tokenizer& tok, ChatTemplate t, std::vector<ChatMessage>& messages, size_t max_tokens,
                      std::vector<int>* ids);
// Text that ends the assistant's turn besides EOS (the next turn's header).
std::vector<std::string> stop_strings(ChatTemplate t);

// Recognises a chat_template (Jinja source) by its distinctive markers;
// None when unknown (the caller falls back to a flag or a default).
ChatTemplate chat_template_from_jinja(std::string_view jinja);
// The same test on tokenizer_config.json's "chat_template" (a string, or a list of
// {name, template} where "default" wins).
ChatTemplate detect_chat_template(const nlohmann::json& tokenizer_config);

}  // namespace solar::chat
