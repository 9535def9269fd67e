// solar/serve/request.h — OpenAI-style request bodies → validated structs.
//
// Pure functions of their input (no model, no I/O), so the fuzzer
// (fuzz/fuzz_serve_request.cpp) runs them on arbitrary bytes: every malformed
// body, wrong type or out-of-range value is an ApiError (HTTP 400, OpenAI's
// {"error": {message, type, param, code}}), never a crash.
// Threads: pure functions; call from any thread.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "chat/chat.h"
#include "core/error.h"

namespace solar::serve {

// An error a client gets back as JSON with this HTTP status.
struct ApiError : Error {
  ApiError(int status, std::string type, std::string param, std::string code, const std::string& message)
      : Error(message), status(status), type(std::move(type)), param(std::move(param)), code(std::move(code)) {}
  int status;
  std::string type, param, code;
};
// 400 invalid_request_error naming the field ("messages[2].role: expected ...").
[[noreturn]] void bad_request(const std::string& param, const std::string& message, const std::string& code = "");

struct RequestLimits {
  size_t max_body = 1 << 20;   // bytes of a request body
  int max_tokens = 4096;       // the most max_tokens a request may ask for
  int max_messages = 1024;
  int max_stop = 8;            // stop strings (OpenAI allows 4; llama.cpp more)
};

// /v1/chat/completions (chat) and /v1/completions. Sampling fields absent
// from the body stay empty: the server's defaults (its sampling flags) apply.
struct CompletionRequest {
  bool chat = false;
  std::vector<chat::ChatMessage> messages;  // chat
  std::string prompt;                       // completions
  std::string model;
  std::optional<int> max_tokens;
  std::optional<float> temperature, top_p, min_p, repeat_penalty;
  std::optional<int> top_k;
  std::optional<uint64_t> seed;
  std::vector<std::string> stop;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
};
CompletionRequest parse_completion_request(std::string_view body, bool chat, const RequestLimits& lim);

// POST /tokenize {"content": str, "add_special": bool} and
// POST /detokenize {"tokens": [int]}.
struct TokenizeRequest {
  std::string content;
  bool add_special = true;
};
TokenizeRequest parse_tokenize_request(std::string_view body, const RequestLimits& lim);
std::vector<int> parse_detokenize_request(std::string_view body, const RequestLimits& lim);

// POST /v1/rag/query {"query": str, "k": 1..1000 (5), "mode": "bm25" |
// "dense" | "hybrid", "fusion": "relative" | "rrf", "alpha": 0..1, "exact":
// bool, "rerank": 0..1000 (candidates the server's model rescores; 0: none)}.
// Fields left out take the server's --rag-* flags.
struct RagQueryRequest {
  std::string query;
  int k = 5;
  std::optional<std::string> mode, fusion;
  std::optional<double> alpha;
  std::optional<bool> exact;
  std::optional<int> rerank;
};
RagQueryRequest parse_rag_query_request(std::string_view body, const RequestLimits& lim);

// The error object OpenAI clients read.
std::string error_body(const ApiError& e);

}  // namespace solar::serve
