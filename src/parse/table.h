// solar/parse/table.h — tables from ruling lines and from text alignment.
//
// Two kinds of ruled table are found on a page, and unruled ones:
//  - grids: connected horizontal and vertical rules. Row and column lines are
//    the distinct rule positions; two neighbouring grid cells are one cell
//    (a row or column span) where no rule separates them.
//  - booktabs-style: three or more horizontal rules of the same extent
//    (top, under the header, bottom) and no vertical ones; the columns come
//    from the vertical white gaps of the words between them, the rows from
//    the text lines (multi-line cells joined, colspans where a word or a
//    partial rule crosses a column gap, header rows above the first inner
//    rule). On OCR'd pages the same for a page of words without rules;
//    on born-digital pages for runs of aligned rows (find_unruled_tables),
//    where empty first-column cells beside a label make its rowspan (not
//    on scans: there an empty cell may be a word OCR dropped).
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

// Unruled tables of a born-digital page, from the words not yet used: runs
// of three or more rows split into segments by gaps wider than an em, with
// an x band no body row covers (a column gutter), one column of short or
// numeric cells (columns of prose have long ones) and a first column that
// is not list markers; laid out like a booktabs table without rules (the
// first row is the header). Words within an em of an `avoid` box (figures:
// their labels line up too) are left alone.
std::vector<Table> find_unruled_tables(const Page& page, std::vector<char>& used, const std::vector<Box>& avoid);

std::string table_html(const Table& t);      // <table><thead>…<tbody>… with rowspan/colspan
std::string table_markdown(const Table& t);  // pipe table; a span repeats nothing (empty cells)
std::string table_text(const Table& t);      // cells tab-separated, rows on lines

}  // namespace solar::parse
