// solar/parse/text.h — small text helpers the layout and renderers share:
// UTF-8 encoding, HTML and Markdown escaping.
#pragma once
#include <string>
#include <string_view>

namespace solar::parse {

void append_utf8(std::string& out, char32_t cp);
std::string html_escape(std::string_view s);
// Escapes the characters Markdown would read as markup (| * _ ` # [ ] < >).
std::string md_escape(std::string_view s);

}  // namespace solar::parse
