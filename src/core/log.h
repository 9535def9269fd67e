// solar/core/log.h — the one way library code reports what it is doing.
//
// Library code never writes to stderr itself: it calls log_info()/log_warn()
// and the record goes to the process's sink. The default sink prints plain
// lines on stderr; the CLI chooses plain or JSON lines (--log-format) and the
// level (--log-level, -q), a server or an embedding application installs its
// own sink or none. Progress bars (core/progress.h) are UI, drawn only by
// callers that were handed a Progress.
// Thread-safe: records from several threads reach the sink one at a time.
#pragma once
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace solar {

enum class LogLevel { Debug, Info, Warn, Error, Off };
// "debug", "info", "warn", "error", "off"; throws UsageError naming `flag`.
LogLevel parse_log_level(const std::string& s, const std::string& flag = "--log-level");
const char* log_level_name(LogLevel l);

struct LogRecord {
  LogLevel level;
  std::string_view source;   // the module or job speaking: "train", "pipeline"
  std::string_view message;  // one line, no trailing newline
  const nlohmann::json& fields;  // structured extras (an object, maybe empty)
};
using LogSink = std::function<void(const LogRecord&)>;

// Replaces the sink (an empty function drops every record); returns the old one.
LogSink set_log_sink(LogSink sink);
void set_log_level(LogLevel level);  // records below it are dropped; default Info
LogLevel log_level();

// Plain: "solar <source>: <message>" (warnings and errors say so). JSON: one
// object per line {"level","source","message",…fields}, flushed.
LogSink plain_log_sink(FILE* out = stderr);
LogSink json_log_sink(FILE* out = stderr);

void log(LogLevel level, std::string_view source, std::string_view message,
         const nlohmann::json& fields = nlohmann::json::object());
inline void log_debug(std::string_view src, std::string_view msg, const nlohmann::json& f = nlohmann::json::object()) {
  log(LogLevel::Debug, src, msg, f);
}
inline void log_info(std::string_view src, std::string_view msg, const nlohmann::json& f = nlohmann::json::object()) {
  log(LogLevel::Info, src, msg, f);
}
inline void log_warn(std::string_view src, std::string_view msg, const nlohmann::json& f = nlohmann::json::object()) {
  log(LogLevel::Warn, src, msg, f);
}

}  // namespace solar
