// solar/core/json.h — the one way to read JSON and YAML that someone else wrote.
//
// config.json, tokenizer/generation configs, safetensors headers, recipes,
// trainer and pipeline state and JSON-lines data all arrive from outside.
// Three things go wrong with them that a plain parse does not stop:
//  - depth: nlohmann parses iteratively but dump() and our own walkers
//    recurse, so a 100,000-deep array overflows the stack later. Nesting
//    deeper than kMaxJsonDepth is refused before parsing (no real file nests
//    past 6: HF configs, recipes and state files are shallow).
//  - size: read_json_file() reads at most max_bytes (a bounded read, so a
//    huge or endless input fails fast); YAML aliases are expanded against a
//    budget (kMaxYamlExpanded), so a 600-byte alias bomb fails at once.
//  - messages: errors name the source, and json_brief() shows an untrusted
//    value as its type plus at most ~60 characters, never dump()ed whole.
// Threads: plain functions over their arguments; safe from any thread.
#pragma once
#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace solar {

constexpr int kMaxJsonDepth = 128;                 // nesting levels ([ or {) accepted
constexpr size_t kMaxJsonFileBytes = 64u << 20;    // read_json_file's default limit
constexpr size_t kMaxYamlExpanded = 16u << 20;     // YAML after alias expansion: scalar bytes + 16 per node

// Parses `text`; throws solar::Error "<source>: JSON syntax error: …" (the
// library's message, cut to ~200 characters) or "<source>: nesting deeper
// than 128 levels at byte N". `cb` is an optional nlohmann parser callback
// (safetensors uses one to see duplicate keys).
nlohmann::json parse_json(std::string_view text, const std::string& source,
                          const nlohmann::json::parser_callback_t& cb = nullptr);
// parse_json(), refusing an object that repeats a key ("<source>: <key>:
// duplicate key …"): for documents a person writes (recipes), where the
// silently kept last value is rarely what was meant.
nlohmann::json parse_json_unique(std::string_view text, const std::string& source);
// The text of a JSON or YAML file; fails naming the path when it holds more
// than max_bytes, without reading past them.
std::string read_document(const std::string& path, size_t max_bytes = kMaxJsonFileBytes);
// parse_json(read_document(path, max_bytes), path).
nlohmann::json read_json_file(const std::string& path, size_t max_bytes = kMaxJsonFileBytes);

// Parses YAML (yaml-cpp) and converts it to JSON so one validator serves
// both spellings: plain scalars get YAML 1.2 core types (int, float, bool,
// null), quoted ones stay strings; a mapping that repeats a key is refused. Depth is bounded as for JSON and aliases
// are expanded against kMaxYamlExpanded. Throws "<source>: line N: YAML
// syntax error: …" or "<source>: expands past … (YAML aliases)".
nlohmann::json parse_yaml(std::string_view text, const std::string& source);

// An untrusted value for a message: its type and at most ~60 characters of
// it, e.g. `array [[[[[[…`, `string "abc"`, `number 3.5`, `null`.
std::string json_brief(const nlohmann::json& v);

}  // namespace solar
