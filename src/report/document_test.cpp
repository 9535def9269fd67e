#include "report/document.h"

#include <gtest/gtest.h>

using namespace solar::report;

TEST(ReportDocument, InlineMarkdownBecomesHtml) {
  EXPECT_EQ(markdown_inline_html("Corpus: `/usr/share/doc` (a <folder>)"),
            "Corpus: <code>/usr/share/doc</code> (a &lt;folder&gt;)");
  EXPECT_EQ(markdown_inline_html("``a ` b`` and **3.68** and **`x`**"),
            "<code>a ` b</code> and <strong>3.68</strong> and <strong><code>x</code></strong>");
  EXPECT_EQ(markdown_inline_html("` x `"), "<code>x</code>");
  // Unmatched marks and escapes stay literal text.
  EXPECT_EQ(markdown_inline_html("a ` b ** c"), "a ` b ** c");
  EXPECT_EQ(markdown_inline_html("\\*\\*x\\*\\* \\`y\\`"), "**x** `y`");
}

TEST(ReportDocument, MarkdownAndHtmlSayTheSame) {
  Document d("Tiny & small");
  d.paragraph("Precision: `f32`.");
  d.table({"arm", "loss"}, {{"**DUS**", "3.68"}});
  d.image("val loss", "val_loss.svg");
  d.heading("Notes");
  EXPECT_EQ(d.markdown(),
            "# Tiny & small\n\nPrecision: `f32`.\n\n| arm | loss |\n| --- | --- |\n| **DUS** | 3.68 |\n\n"
            "![val loss](val_loss.svg)\n\n## Notes\n");
  std::string h = d.html();
  EXPECT_NE(h.find("<h1>Tiny &amp; small</h1>"), std::string::npos) << h;
  EXPECT_NE(h.find("<p>Precision: <code>f32</code>.</p>"), std::string::npos) << h;
  EXPECT_NE(h.find("<td><strong>DUS</strong></td><td>3.68</td>"), std::string::npos) << h;
  EXPECT_NE(h.find("<img src=\"val_loss.svg\" alt=\"val loss\">"), std::string::npos) << h;
  EXPECT_NE(h.find("<h2>Notes</h2>"), std::string::npos) << h;
  EXPECT_EQ(h.find('`'), std::string::npos) << h;
  EXPECT_EQ(h.find("**"), std::string::npos) << h;
}
