#include "chat/chat.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fs.h"
#include "formats/load.h"
#include "testing/tokenizers.h"

namespace solar::chat {
namespace {

using testing::ascii_tokenizer;

// The conversation of huggingface.js's chat-template tests, whose targets
// come from the models' own Jinja templates.
const std::vector<ChatMessage> kChat = {
    {"user", "Hello, how are you?"},
    {"assistant", "I'm doing great. How can I help you today?"},
    {"user", "I'd like to show off how chat templating works!"},
};
const std::string kSys = "You are a friendly chatbot who always responds in the style of a pirate";

std::vector<ChatMessage> with_system() {
  auto m = kChat;
  m.insert(m.begin(), {"system", kSys});
  return m;
}

TEST(ChatTemplate, SolarMatchesHf) {
  EXPECT_EQ(render(ChatTemplate::Solar, kChat, false),
            "### User:\nHello, how are you?\n\n### Assistant:\nI'm doing great. How can I help you today?"
            "### User:\nI'd like to show off how chat templating works!\n\n");
  EXPECT_EQ(render(ChatTemplate::Solar, {{"system", "Be brief."}, {"user", "Hi"}}, true),
            "### System:\nBe brief.\n\n### User:\nHi\n\n### Assistant:\n");
  // An empty system message renders nothing ({% if message['content'] %}).
  EXPECT_EQ(render(ChatTemplate::Solar, {{"system", ""}, {"user", "Hi"}}, true), "### User:\nHi\n\n### Assistant:\n");
}

TEST(ChatTemplate, Llama2MatchesHf) {
  EXPECT_EQ(render(ChatTemplate::Llama2, with_system(), false),
            "<s>[INST] <<SYS>>\n" + kSys +
                "\n<</SYS>>\n\nHello, how are you? [/INST] I'm doing great. How can I help you today? </s>"
                "<s>[INST] I'd like to show off how chat templating works! [/INST]");
  // content.strip(); no system block without a system message.
  EXPECT_EQ(render(ChatTemplate::Llama2, {{"user", "  Hi \n"}}, true), "<s>[INST] Hi [/INST]");
  EXPECT_THROW(render(ChatTemplate::Llama2, {{"assistant", "x"}}, false), Error);
  EXPECT_THROW(render(ChatTemplate::Llama2, {{"user", "a"}, {"user", "b"}}, false), Error);
}

TEST(ChatTemplate, MistralMatchesHf) {
  EXPECT_EQ(render(ChatTemplate::Mistral, kChat, false),
            "<s>[INST] Hello, how are you? [/INST]I'm doing great. How can I help you today?</s> "
            "[INST] I'd like to show off how chat templating works! [/INST]");
  EXPECT_EQ(render(ChatTemplate::Mistral, {{"system", "S"}, {"user", "U"}}, true), "<s>[INST] S\n\nU [/INST]");
}

TEST(ChatTemplate, ChatMLMatchesHf) {
  EXPECT_EQ(render(ChatTemplate::ChatML, kChat, false),
            "<|im_start|>user\nHello, how are you?<|im_end|>\n<|im_start|>assistant\nI'm doing great. How can I "
            "help you today?<|im_end|>\n<|im_start|>user\nI'd like to show off how chat templating works!<|im_end|>\n");
  EXPECT_EQ(render(ChatTemplate::ChatML, {{"user", "Hi"}}, true),
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ChatTemplate, SegmentsMarkSpecialTokens) {
  auto segs = render_segments(ChatTemplate::Llama2, {{"user", "Hi"}, {"assistant", "Yo"}, {"user", "Q"}}, true);
  ASSERT_EQ(segs.size(), 5u);
  EXPECT_TRUE(segs[0].special);
  EXPECT_EQ(segs[0].text, "<s>");
  EXPECT_EQ(segs[1].text, "[INST] Hi [/INST] Yo ");  // adjacent text merged
  EXPECT_FALSE(segs[1].special);
  EXPECT_EQ(segs[2].text, "</s>");
  EXPECT_TRUE(segs[2].special);
  EXPECT_EQ(segs[3].text, "<s>");
}

TEST(ChatTemplate, EncodeUsesBosEosIds) {
  std::string model = std::string(SOLAR_SHARED_DATA) + "/tokenizers/llama2.model";
  if (!path_exists(model)) GTEST_SKIP() << "shared data missing: " << model;
  auto tok = formats::open_tokenizer(model);
  auto ids = encode_chat(*tok, ChatTemplate::Llama2, {{"user", "Hi"}, {"assistant", "Yo"}, {"user", "Q"}}, true);
  // Llama 2 chat prompts start [1, 518, 25580, 29962] = <s> "▁[" "INST" "]".
  ASSERT_GE(ids.size(), 4u);
  EXPECT_EQ(std::vector<int>(ids.begin(), ids.begin() + 4), (std::vector<int>{1, 518, 25580, 29962}));
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 1), 2);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 2), 1);
  // Templates without their own BOS get the tokenizer's; ChatML markers the
  // Llama vocab lacks are plain text.
  auto solar = encode_chat(*tok, ChatTemplate::Solar, {{"user", "Hi"}}, true);
  EXPECT_EQ(solar, tok->encode("### User:\nHi\n\n### Assistant:\n", true));
  auto chatml = encode_chat(*tok, ChatTemplate::ChatML, {{"user", "Hi"}}, true);
  EXPECT_EQ(chatml[0], 1);
  EXPECT_EQ(std::count(chatml.begin(), chatml.end(), 1), 1);
}

TEST(ChatTemplate, DetectFromTokenizerConfig) {
  const std::string solar =
      "{% for message in messages %}{% if message['role'] == 'system' %}{% if message['content']%}{{'### "
      "System:\\n' + message['content']+'\\n\\n'}}{% endif %}{% elif message['role'] == 'user' %}{{'### User:\\n' "
      "+ message['content']+'\\n\\n'}}{% elif message['role'] == 'assistant' %}{{'### Assistant:\\n'  + "
      "message['content']}}{% endif %}{% if loop.last and add_generation_prompt %}{{ '### Assistant:\\n' }}{% endif "
      "%}{% endfor %}";
  EXPECT_EQ(detect_chat_template(nlohmann::json{{"chat_template", solar}}), ChatTemplate::Solar);
  EXPECT_EQ(chat_template_from_jinja("{{ bos_token + '[INST] ' + content.strip() }}<<SYS>>"), ChatTemplate::Llama2);
  EXPECT_EQ(chat_template_from_jinja("{{ bos_token }}{{ '[INST] ' + message['content'] + ' [/INST]' }}"),
            ChatTemplate::Mistral);
  EXPECT_EQ(chat_template_from_jinja("{{'<|im_start|>' + message['role'] + '\\n'}}"), ChatTemplate::ChatML);
  EXPECT_EQ(chat_template_from_jinja("{{ 'GPT4 Correct User: ' }}"), ChatTemplate::None);
  EXPECT_EQ(detect_chat_template(nlohmann::json{{"bos_token", "<s>"}}), ChatTemplate::None);
  nlohmann::json list = {{"chat_template",
                          {{{"name", "tool_use"}, {"template", "<|im_start|>"}}, {{"name", "default"}, {"template", "[INST]"}}}}};
  EXPECT_EQ(detect_chat_template(list), ChatTemplate::Mistral);
  // Before: a name of another JSON type threw nlohmann's unnamed type_error
  // out of chat/serve/sft; a template list entry that is not named "default" is skipped.
  nlohmann::json odd = {{"chat_template", {{{"name", "a"}, {"template", "[INST]"}}, {{"name", 5}, {"template", "<<SYS>>"}}}}};
  EXPECT_EQ(detect_chat_template(odd), ChatTemplate::Mistral);
}


TEST(ChatTemplate, DropOldestTurnsKeepsSystemAndLastMessage) {
  auto tok = ascii_tokenizer();
  const std::vector<ChatMessage> chat = {{"system", "Be brief."}, {"user", "one"},   {"assistant", "1"},
                                         {"user", "two"},         {"assistant", "2"}, {"user", "three"}};
  for (auto t : {ChatTemplate::Solar, ChatTemplate::Llama2, ChatTemplate::Mistral, ChatTemplate::ChatML}) {
    SCOPED_TRACE(chat_template_name(t));
    std::vector<ChatMessage> msgs = chat;
    std::vector<int> ids;
    size_t full = encode_chat(*tok, t, msgs, true).size();
    EXPECT_EQ(drop_oldest_turns(*tok, t, msgs, full, &ids), 0);
    EXPECT_EQ(msgs.size(), chat.size());
    EXPECT_EQ(ids.size(), full);

    std::vector<ChatMessage> want = {chat[0], chat[3], chat[4], chat[5]};
    EXPECT_EQ(drop_oldest_turns(*tok, t, msgs, full - 1, &ids), 1);
    ASSERT_EQ(msgs.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(msgs[i].content, want[i].content);
    EXPECT_EQ(ids, encode_chat(*tok, t, msgs, true));
    EXPECT_NE(render(t, msgs, true).find("Be brief."), std::string::npos);

    // Too small for anything: every old turn goes, the system and last message stay.
    EXPECT_EQ(drop_oldest_turns(*tok, t, msgs, 1, &ids), 1);
    ASSERT_EQ(msgs.size(), 2u);
    EXPECT_EQ(msgs[0].role, "system");
    EXPECT_EQ(msgs[1].content, "three");
    EXPECT_EQ(ids, encode_chat(*tok, t, msgs, true));
  }
  std::vector<ChatMessage> msgs(chat.begin() + 1, chat.end());  // no system message
  std::vector<int> ids;
  EXPECT_EQ(drop_oldest_turns(*tok, ChatTemplate::Llama2, msgs, 1, &ids), 2);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].content, "three");
}

TEST(ChatTemplate, NamesAndStops) {
  for (auto t : {ChatTemplate::Solar, ChatTemplate::Llama2, ChatTemplate::Mistral, ChatTemplate::ChatML}) {
    EXPECT_EQ(parse_chat_template(chat_template_name(t)), t);
    EXPECT_FALSE(stop_strings(t).empty());
  }
  EXPECT_THROW(parse_chat_template("vicuna"), Error);
  EXPECT_EQ(stop_strings(ChatTemplate::Solar)[0], "### User:");
  EXPECT_EQ(stop_strings(ChatTemplate::ChatML)[0], "<|im_end|>");
  EXPECT_THROW(render(ChatTemplate::Solar, {{"tool", "x"}}, false), Error);
}

}  // namespace
}  // namespace solar::chat
