// solar/parse/table.h — tables from ruling lines.
//
// Two kinds of ruled table are found on a page:
//  - grids: connected horizontal and vertical rules. Row and column lines are
//    the distinct rule positions; two neighbouring grid cells are one cell
//    (a row or column span) where no rule separates them.
//  - booktabs-style: three or more horizontal rules of the same extent
//    (top, under the header, bottom) and no vertical ones; the columns come
//    from the vertical white gaps of the words between them, the rows from
//    the text lines (multi-line cells joined, colspans where a word or a
//    partial rule crosses a column gap, header rows above the first inner
//    rule). On OCR'd pages the same for a page of words without rules.
// A frame with a single column (a boxed code listing or note) is no table.
// Cell text is the words whose centre lies in the cell.
#pragma once
#include <string>
#include <vector>

#include "parse/parse.h"

namespace solar::parse {

struct Cell {
  int row = 0, col = 0, rowspan = 1, colspan = 1;
  bool header = false;
  std::string text;
};
struct Table {
  Box box;
  int rows = 0, cols = 0;
  std::vector<Cell> cells;  // in row-major order of their top-left grid cell
};

// The page's ruled tables; words inside a table get used[i] = true.
std::vector<Table> find_tables(const Page& page, std::vector<char>& used);

std::string table_html(const Table& t);      // <table><thead>…<tbody>… with rowspan/colspan
std::string table_markdown(const Table& t);  // pipe table; a span repeats nothing (empty cells)
std::string table_text(const Table& t);      // cells tab-separated, rows on lines

}  // namespace solar::parse
