// libFuzzer target: `solar serve`'s request bodies (chat and text
// completions, /tokenize, /detokenize, /v1/rag/query) through the pure parsers: a validated
// request or an ApiError with a 4xx status and a JSON error body, never a
// crash, a hang or unbounded memory. The first byte picks the endpoint.
#include <nlohmann/json.hpp>

#include "fuzz.h"
#include "serve/request.h"

namespace solar::fuzz {

void write_seeds(const std::string& dir) {
  write_text(dir + "/chat.bin",
             "c{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"s\"},{\"role\":\"user\",\"content\":"
             "[{\"type\":\"text\",\"text\":\"hi\"}]}],\"max_tokens\":8,\"temperature\":0.5,\"top_p\":0.9,\"seed\":1,"
             "\"stop\":[\"x\"],\"stream\":true,\"stream_options\":{\"include_usage\":true}}");
  write_text(dir + "/completion.bin", "p{\"prompt\":[\"Once\"],\"max_tokens\":null,\"stop\":\"\\n\",\"top_k\":5}");
  write_text(dir + "/tokenize.bin", "t{\"content\":\"Hello\",\"add_special\":false}");
  write_text(dir + "/detokenize.bin", "d{\"tokens\":[1,2,3]}");
  write_text(dir + "/rag.bin", "r{\"query\":\"where?\",\"k\":3,\"mode\":\"bm25\"}");
  write_text(deep(dir) + "/nested.bin", "c{\"messages\":" + nested_json(100000) + "}");
}

}  // namespace solar::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace solar::serve;
  if (size == 0) return 0;
  const char kind = char(data[0]);
  std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  RequestLimits lim;
  lim.max_body = 8192;
  lim.max_tokens = 512;
  lim.max_messages = 16;
  try {
    if (kind == 't') {
      parse_tokenize_request(body, lim);
    } else if (kind == 'd') {
      for (int id : parse_detokenize_request(body, lim))
        if (id < 0) std::abort();
    } else if (kind == 'r') {
      RagQueryRequest r = parse_rag_query_request(body, lim);
      if (r.k < 1 || r.k > 1000 || (r.mode && *r.mode != "bm25" && *r.mode != "dense" && *r.mode != "hybrid")) std::abort();
      if ((r.fusion && *r.fusion != "relative" && *r.fusion != "rrf") || (r.alpha && !(*r.alpha >= 0 && *r.alpha <= 1))) std::abort();
      if (r.rerank && (*r.rerank < 0 || *r.rerank > 1000)) std::abort();
    } else {
      const bool chat = kind != 'p';
      CompletionRequest r = parse_completion_request(body, chat, lim);
      if (chat && (r.messages.empty() || int(r.messages.size()) > lim.max_messages)) std::abort();
      if (r.max_tokens && (*r.max_tokens < 0 || *r.max_tokens > lim.max_tokens)) std::abort();
      if (r.temperature && !(*r.temperature >= 0 && *r.temperature <= 2)) std::abort();
      if (int(r.stop.size()) > lim.max_stop) std::abort();
    }
  } catch (const ApiError& e) {
    if (e.status < 400 || e.status >= 500) std::abort();
    // The error a client gets must itself be valid JSON, whatever bytes the body held.
    auto j = nlohmann::json::parse(error_body(e), nullptr, false);
    if (j.is_discarded() || !j["error"].contains("message")) std::abort();
  }
  return 0;
}
