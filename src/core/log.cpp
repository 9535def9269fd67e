#include "core/log.h"

#include <cstdio>
#include <mutex>

#include "core/error.h"

namespace solar {
namespace {

std::mutex& mu() {
  static std::mutex m;
  return m;
}
LogSink& sink() {
  static LogSink s = plain_log_sink(stderr);
  return s;
}
LogLevel& level() {
  static LogLevel l = LogLevel::Info;
  return l;
}

}  // namespace

LogLevel parse_log_level(const std::string& s, const std::string& flag) {
  for (LogLevel l : {LogLevel::Debug, LogLevel::Info, LogLevel::Warn, LogLevel::Error, LogLevel::Off})
    if (s == log_level_name(l)) return l;
  fail(flag, "", "expected debug, info, warn, error or off, got \"" + s + "\"");
}

const char* log_level_name(LogLevel l) {
  switch (l) {
    case LogLevel::Debug: return "debug";
    case LogLevel::Info: return "info";
    case LogLevel::Warn: return "warn";
    case LogLevel::Error: return "error";
    case LogLevel::Off: return "off";
  }
  return "?";
}

LogSink set_log_sink(LogSink s) {
  std::lock_guard<std::mutex> g(mu());
  std::swap(sink(), s);
  return s;
}

void set_log_level(LogLevel l) {
  std::lock_guard<std::mutex> g(mu());
  level() = l;
}

LogLevel log_level() {
  std::lock_guard<std::mutex> g(mu());
  return level();
}

LogSink plain_log_sink(FILE* out) {
  return [out](const LogRecord& r) {
    const char* tag = r.level == LogLevel::Warn ? "warning: " : r.level == LogLevel::Error ? "error: " : "";
    std::fprintf(out, "solar %.*s: %s%.*s\n", int(r.source.size()), r.source.data(), tag, int(r.message.size()),
                 r.message.data());
    std::fflush(out);
  };
}

LogSink json_log_sink(FILE* out) {
  return [out](const LogRecord& r) {
    nlohmann::json j = {{"level", log_level_name(r.level)}, {"source", r.source}, {"message", r.message}};
    if (r.fields.is_object())
      for (auto& [k, v] : r.fields.items()) j[k] = v;
    std::string s = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    std::fprintf(out, "%s\n", s.c_str());
    std::fflush(out);
  };
}

void log(LogLevel l, std::string_view source, std::string_view message, const nlohmann::json& fields) {
  std::lock_guard<std::mutex> g(mu());
  if (l < level() || l == LogLevel::Off || !sink()) return;
  sink()(LogRecord{l, source, message, fields});
}

}  // namespace solar
