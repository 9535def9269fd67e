// solar/parse/render.h — a document's elements as Upstage Document Parse
// shapes them: JSON {api, model, usage, content:{html, markdown, text},
// elements:[{id, category, page, coordinates (4 points, page-relative 0..1),
// content:{html, markdown, text}}]}, and the whole document as HTML and
// Markdown. Headers and footers stay in the JSON and HTML (<header>,
// <footer>) but not in the Markdown; a caption next to a figure becomes its
// <figcaption> in the document HTML.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "parse/parse.h"

namespace solar::parse {

std::string document_html(const std::vector<Element>& els);
std::string document_markdown(const std::vector<Element>& els);
std::string document_text(const std::vector<Element>& els);
nlohmann::json document_json(const std::vector<Element>& els, int pages);

}  // namespace solar::parse
