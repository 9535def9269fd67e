// solar/parse/render.h — a document's elements as Upstage Document Parse
// shapes them: JSON {api, model, usage, content:{html, markdown, text},
// elements:[{id, category, page, coordinates (4 points, page-relative 0..1),
// content:{html, markdown, text}}]}, and the whole document as HTML and
// Markdown. Headers and footers stay in the JSON and HTML (<header>,
// <footer>) but not in the Markdown; a caption next to a figure becomes its
// <figcaption> in the document HTML.
#pragma once
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "parse/parse.h"

namespace solar::parse {

std::string document_html(const std::vector<Element>& els);
std::string document_markdown(const std::vector<Element>& els);
std::string document_text(const std::vector<Element>& els);
nlohmann::json document_json(const std::vector<Element>& els, int pages);
// The same document as document_json(els, pages).dump(1), handed to `out`
// piece by piece, one element at a time: no tree of the whole document is
// built (for a long document that tree took several times the output's size).
void write_document_json(const std::vector<Element>& els, int pages, const std::function<void(std::string_view)>& out);

}  // namespace solar::parse
