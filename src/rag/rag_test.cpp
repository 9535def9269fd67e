#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <random>
#include <thread>

#include "testing/pdf.h"
#include "core/error.h"
#include "core/fs.h"
#include "rag/rag.h"
#include "testing/testing.h"

using namespace solar;
using namespace solar::rag;

namespace {
int64_t words(const std::string& s) {
  int64_t n = 0;
  bool in = false;
  for (char c : s) {
    bool w = !isspace(uint8_t(c));
    n += w && !in;
    in = w;
  }
  return n;
}
int64_t sql_int(const std::string& db, const std::string& q) {
  sqlite3* d = nullptr;
  EXPECT_EQ(sqlite3_open_v2(db.c_str(), &d, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_busy_timeout(d, 5000);  // the writer may hold the lock a moment
  sqlite3_stmt* s = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(d, q.c_str(), -1, &s, nullptr), SQLITE_OK) << sqlite3_errmsg(d);
  int64_t v = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
  sqlite3_finalize(s);
  sqlite3_close(d);
  return v;
}
}  // namespace

TEST(RagExtract, MarkdownHeadingsListsTablesCode) {
  std::string md = "# Top\n\nIntro text\nwraps here.\n\n## Sub\n\n- one\n- two\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n```\ncode\n\nmore\n```\n";
  auto b = extract_text(md, "md", "t.md");
  ASSERT_EQ(b.size(), 5u);
  EXPECT_EQ(b[0].heading, "Top");
  EXPECT_EQ(b[0].text, "Intro text\nwraps here.");
  EXPECT_EQ(md.substr(size_t(b[0].start), size_t(b[0].end - b[0].start)), "Intro text\nwraps here.");
  EXPECT_EQ(b[1].heading, "Top > Sub");
  EXPECT_EQ(b[1].text, "- one");
  EXPECT_EQ(b[2].text, "- two");
  EXPECT_TRUE(b[3].atomic);
  EXPECT_EQ(b[3].text, "| a | b |\n|---|---|\n| 1 | 2 |");
  EXPECT_TRUE(b[4].atomic);
  EXPECT_NE(b[4].text.find("code\n\nmore"), std::string::npos);
}

TEST(RagExtract, RstAndHtml) {
  auto r = extract_text("Title\n=====\n\nA\n---\n\nbody\n", "rst", "t.rst");
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].heading, "Title > A");
  auto h = extract_text("<html><head><title>t</title></head><body><h1>K</h1><p>a &amp; b&#33;</p>"
                        "<script>x='<p>no</p>'</script><table><tr><td>1</td><td>2</td></tr></table></body></html>",
                        "html", "t.html");
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[0].heading, "K");
  EXPECT_EQ(h[0].text, "a & b!");
  EXPECT_EQ(h[1].text, "1 | 2");
  EXPECT_TRUE(h[1].atomic);
  EXPECT_THROW(extract_text("a\xff", "txt", "bin"), Error);
  EXPECT_THROW(extract_text("{\"x\":1}\n", "jsonl", "r.jsonl"), Error);
}

TEST(RagChunk, BudgetPackingAndOverlap) {
  std::vector<Block> b;
  for (int i = 0; i < 10; i++) b.push_back(Block{"w w w w w w w w w w", "H", 0, i * 20, i * 20 + 19});
  ChunkOptions o{25, 4};
  auto c = chunk_blocks(b, o, words);
  // The heading "H" costs one token: two 10-word paragraphs fit in 24 + separators.
  ASSERT_EQ(c.size(), 5u);
  for (auto& k : c) EXPECT_LE(words(k.text), 24);
  EXPECT_EQ(c[0].start, 0);
  EXPECT_EQ(c[0].end, 39);
  std::string big;
  for (int i = 0; i < 100; i++) big += "x" + std::to_string(i) + " ";
  auto s = chunk_blocks({Block{big, "", 0, 0, int64_t(big.size())}}, ChunkOptions{20, 5}, words);
  ASSERT_GT(s.size(), 5u);
  EXPECT_EQ(s[0].text.substr(0, 3), "x0 ");
  EXPECT_EQ(big.substr(size_t(s[1].start), size_t(s[1].end - s[1].start)), s[1].text);
  // Overlap: the second window starts before the first ends.
  EXPECT_LT(s[1].start, s[0].end);
  EXPECT_NE(s.back().text.find("x99"), std::string::npos);
  // Records stay alone even when they would fit together.
  auto r = chunk_blocks({Block{"a", "", 0, 0, 1, false, true}, Block{"b", "", 0, 2, 3, false, true}}, o, words);
  EXPECT_EQ(r.size(), 2u);
}

// Fusion by hand-computed scores: min-max per list then alpha-weighted
// (absent from a list: 0 there), and weighted reciprocal ranks; alpha 0 and 1
// give back one list's order.
TEST(RagFusion, RelativeAndReciprocalRank) {
  const std::vector<Hit> b = {Hit{1, 10}, Hit{2, 5}, Hit{3, 0}}, d = {Hit{3, 0.9}, Hit{4, 0.5}, Hit{1, 0.1}};
  auto ids = [](const std::vector<Hit>& hs) {
    std::vector<int64_t> v;
    for (const Hit& h : hs) v.push_back(h.id);
    return v;
  };
  auto rel = fuse(b, d, {"relative", 0.6}, 10);
  EXPECT_EQ(ids(rel), (std::vector<int64_t>{3, 1, 4, 2}));
  EXPECT_DOUBLE_EQ(rel[0].score, 0.4 * 0 + 0.6 * 1);
  EXPECT_DOUBLE_EQ(rel[1].score, 0.4 * 1 + 0.6 * 0);
  EXPECT_DOUBLE_EQ(rel[2].score, 0.6 * 0.5);
  EXPECT_DOUBLE_EQ(rel[3].score, 0.4 * 0.5);
  EXPECT_EQ(ids(fuse(b, d, {"relative", 1}, 3)), (std::vector<int64_t>{3, 4, 1}));
  EXPECT_EQ(ids(fuse(b, d, {"relative", 0}, 3)), (std::vector<int64_t>{1, 2, 3}));
  auto rrf = fuse(b, d, {"rrf", 0.5}, 2);
  ASSERT_EQ(ids(rrf), (std::vector<int64_t>{1, 3}));  // tied: the lower id first
  EXPECT_DOUBLE_EQ(rrf[0].score, 0.5 / 61 + 0.5 / 63);
  EXPECT_EQ(ids(fuse(b, {}, {"relative", 0.7}, 5)), (std::vector<int64_t>{1, 2, 3}));  // no dense hits: BM25's order
  EXPECT_DOUBLE_EQ(fuse({Hit{7, 3}}, {}, {"relative", 0.7}, 5)[0].score, 1 - 0.7);  // one hit: full marks in its list
  EXPECT_THROW(fuse(b, d, {"convex", 0.5}, 2), Error);
  EXPECT_THROW(fuse(b, d, {"rrf", 1.5}, 2), Error);
}

TEST(RagStore, SearchReplaceRemoveAndSchema) {
  std::string d = solar::testing::temp_dir("rag_store"), db = join_path(d, "s.db");
  {
    auto s = Store::open(db, true, "toy", 2);
    s->put_file("/a", "h1", 3, {Chunk{"apples and pears", "", 0, 0, 16}, Chunk{"quantum physics", "", 0, 17, 32}},
                {1, 0, 0, 1});
    s->put_file("/b", "h2", 3, {Chunk{"pears are sweet", "Fruit", 0, 0, 15}}, {0.6f, 0.8f});
    EXPECT_EQ(s->count_chunks(), 3);
    auto h = s->bm25("pears", 10);
    ASSERT_EQ(h.size(), 2u);
    auto dn = s->dense({0, 1}, 1);
    ASSERT_EQ(dn.size(), 1u);
    s->fill(dn[0]);
    EXPECT_EQ(dn[0].text, "quantum physics");
    EXPECT_EQ(s->bm25("\"AND -(", 5).size(), 1u);  // FTS syntax in a question is just words
    auto hy = s->hybrid("pears", {0.6f, 0.8f}, 2);
    s->fill(hy[0]);
    EXPECT_EQ(hy[0].text, "pears are sweet");  // first in both lists
    s->put_file("/a", "h3", 3, {Chunk{"bananas", "", 0, 0, 7}}, {1, 0});
    EXPECT_EQ(s->count_chunks(), 2);
    EXPECT_TRUE(s->bm25("quantum", 5).empty());
    s->remove_file("/b");
    EXPECT_EQ(s->files(), std::vector<std::string>{"/a"});
    EXPECT_TRUE(s->bm25("pears", 5).empty());
    EXPECT_THROW(Store::open(db, false, "toy", 3), Error);  // dimension mismatch
  }
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &raw), SQLITE_OK);
  sqlite3_exec(raw, "UPDATE meta SET value='99' WHERE key='schema_version'", nullptr, nullptr, nullptr);
  sqlite3_close(raw);
  try {
    Store::open(db, false);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("schema 99, newer"), std::string::npos) << e.what();
  }
  write_file_atomic(join_path(d, "other.db"), "not sqlite at all, just text long enough to be a header....");
  EXPECT_THROW(Store::open(join_path(d, "other.db"), false), Error);
  EXPECT_THROW(Store::open(join_path(d, "none.db"), false), Error);
}

// The real pipeline (needs the model, scripts/embed-model.sh): incremental
// re-indexing, removal, and a `solar rag index` killed with SIGKILL midway.
// "Slow": ~15 s of embedding, left out of the sanitizer run (RagCli covers the path there).
TEST(RagIndex, IncrementalAndKilledMidwaySlow) {
  std::string model;
  try {
    model = embed::find_model();
  } catch (const Error& e) {
    GTEST_SKIP() << "all-MiniLM-L6-v2 not installed (bash scripts/embed-model.sh): " << e.what();
  }
  auto emb = embed::Embedder::open(model);
  std::string d = solar::testing::temp_dir("rag_index"), docs = join_path(d, "docs"), db = join_path(d, "s.db");
  make_dirs(docs);
  write_file_atomic(join_path(docs, "a.md"), "# Cats\n\nCats purr and sleep all day.\n");
  write_file_atomic(join_path(docs, "b.txt"), "The Eiffel Tower is in Paris.\n");
  write_file_atomic(join_path(docs, "c.txt"), "");
  IndexOptions opt;
  opt.progress = false;
  auto s = Store::open(db, true, "m", emb->dim());
  auto r = index_paths(*s, *emb, {docs}, opt);
  EXPECT_EQ(r.indexed, 2);
  EXPECT_EQ(r.skipped, 1);
  auto q = emb->encode({"where is the eiffel tower"});
  auto h = s->dense(q, 1);
  s->fill(h[0]);
  EXPECT_EQ(h[0].file, join_path(docs, "b.txt"));
  r = index_paths(*s, *emb, {docs}, opt);
  EXPECT_EQ(r.unchanged, 2);
  EXPECT_EQ(r.indexed, 0);
  write_file_atomic(join_path(docs, "b.txt"), "Changed: the Colosseum is in Rome.\n");
  remove_all(join_path(docs, "a.md"));
  r = index_paths(*s, *emb, {docs}, opt);
  EXPECT_EQ(r.indexed, 1);
  EXPECT_EQ(r.removed, 1);
  EXPECT_EQ(s->files(), std::vector<std::string>{join_path(docs, "b.txt")});
  s.reset();

  // SIGKILL during a longer index: the store opens, is intact, and a rerun completes it.
  std::string many = join_path(d, "many"), kdb = join_path(d, "k.db");
  make_dirs(many);
  for (int i = 0; i < 150; i++) {
    std::string t;
    for (int j = 0; j < 2; j++) t += "Paragraph " + std::to_string(j) + " of file " + std::to_string(i) + " about topic " + std::to_string(i * j % 13) + ".\n\n";
    write_file_atomic(join_path(many, "f" + std::to_string(i) + ".txt"), t);
  }
  pid_t pid = fork();
  if (pid == 0) {
    execl(SOLAR_BIN, SOLAR_BIN, "rag", "index", "-q", "-t", "1", "-o", kdb.c_str(), many.c_str(), (char*)nullptr);
    _exit(127);
  }
  bool some = false;
  for (int i = 0; i < 6000 && !some; i++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    some = path_exists(kdb) && sql_int(kdb, "SELECT count(*) FROM sqlite_master WHERE name='files'") == 1 &&
           sql_int(kdb, "SELECT count(*) FROM files") >= 3;
  }
  kill(pid, SIGKILL);
  int st = 0;
  waitpid(pid, &st, 0);
  ASSERT_TRUE(some) << "the index never got going";
  ASSERT_TRUE(WIFSIGNALED(st)) << "finished before the kill: make the corpus larger";
  auto ks = Store::open(kdb, false);
  int64_t nfiles = sql_int(kdb, "SELECT count(*) FROM files");
  EXPECT_LT(nfiles, 150);
  EXPECT_EQ(sql_int(kdb, "SELECT count(*) FROM chunks"), sql_int(kdb, "SELECT coalesce(sum(chunks),0) FROM files"));
  EXPECT_EQ(sql_int(kdb, "SELECT count(*) FROM chunks_fts"), sql_int(kdb, "SELECT count(*) FROM chunks"));
  r = index_paths(*ks, *emb, {many}, opt);
  EXPECT_EQ(r.unchanged, nfiles);
  EXPECT_EQ(r.indexed, 150 - nfiles);
  EXPECT_EQ(sql_int(kdb, "SELECT count(*) FROM files"), 150);
  EXPECT_EQ(sql_int(kdb, "SELECT count(*) FROM chunks_fts"), sql_int(kdb, "SELECT count(*) FROM chunks"));
}

TEST(RagExtract, PdfElementsThroughTheParser) {
  if (access(join_path(parent_dir(SOLAR_BIN), "solar-pdf").c_str(), X_OK) != 0)
    GTEST_SKIP() << "solar-pdf was not built (poppler's libpoppler-private-dev missing)";
  solar::testing::PdfBuilder b;
  for (int p = 1; p <= 2; p++) {
    b.text("F1", 9, 72, 30, "Solar Manual").text("F1", 9, 300, 770, std::to_string(p));
    if (p == 1) {
      b.text("F2", 18, 72, 100, "1 Install");
      b.text("F1", 11, 72, 130, "Run the installer and answer its questions.");
      for (double y : {160, 176, 192}) b.line(72, y, 372, y);
      for (double x : {72, 222, 372}) b.line(x, 160, x, 192);
      b.text("F2", 10, 80, 172, "Option").text("F2", 10, 230, 172, "Default");
      b.text("F1", 10, 80, 188, "threads").text("F1", 10, 230, 188, "all cores");
    } else {
      b.text("F2", 13, 72, 100, "1.1 Details");
      b.text("F1", 11, 72, 130, "The details come on the second page.");
    }
    b.page();
  }
  std::string d = solar::testing::temp_dir("rag_pdf_parse");
  write_file_atomic(join_path(d, "m.pdf"), b.bytes());
  auto bl = extract_file(join_path(d, "m.pdf"));
  ASSERT_EQ(bl.size(), 3u);
  for (const Block& x : bl) EXPECT_EQ(x.text.find("Solar Manual"), std::string::npos) << "running header kept: " << x.text;
  EXPECT_EQ(bl[0].text, "Run the installer and answer its questions.");
  EXPECT_EQ(bl[0].heading, "1 Install");
  EXPECT_EQ(bl[0].page, 1);
  EXPECT_TRUE(bl[1].atomic);
  EXPECT_EQ(bl[1].page, 1);
  for (const char* cell : {"Option", "Default", "threads", "all cores"}) EXPECT_NE(bl[1].text.find(cell), std::string::npos) << bl[1].text;
  EXPECT_NE(bl[1].text.find('|'), std::string::npos) << bl[1].text;
  EXPECT_EQ(bl[2].text, "The details come on the second page.");
  EXPECT_EQ(bl[2].heading, "1 Install > 1.1 Details");
  EXPECT_EQ(bl[2].page, 2);
  EXPECT_EQ(bl[2].start, 0);
  EXPECT_EQ(bl[2].end, int64_t(bl[2].text.size()));
  write_file_atomic(join_path(d, "bad.pdf"), "%PDF-1.4 truncated");
  std::string e = solar::testing::error_of([&] { extract_file(join_path(d, "bad.pdf")); });
  EXPECT_NE(e.find("bad.pdf"), std::string::npos) << e;
}

TEST(RagExtract, PdfPagesThroughPdftotextWithoutTheParser) {
  if (std::system("command -v pdftotext > /dev/null 2>&1") != 0) GTEST_SKIP() << "pdftotext absent (poppler-utils, scripts/setup.sh)";
  // solar-pdf named where there is none: the fallback, poppler's pdftotext.
  setenv("SOLAR_PDF", "/nonexistent/solar-pdf", 1);
  struct Unset {
    ~Unset() { unsetenv("SOLAR_PDF"); }
  } unset;
  std::string d = solar::testing::temp_dir("rag_pdf");
  write_file_atomic(join_path(d, "a.pdf"), solar::testing::PdfBuilder().text("F1", 12, 72, 72, "Hello from page one").page().text("F1", 12, 72, 72, "Second page text").page().bytes());
  auto b = extract_file(join_path(d, "a.pdf"));
  ASSERT_EQ(b.size(), 2u);
  EXPECT_EQ(b[0].text, "Hello from page one");
  EXPECT_EQ(b[0].page, 1);
  EXPECT_EQ(b[1].text, "Second page text");
  EXPECT_EQ(b[1].page, 2);
  write_file_atomic(join_path(d, "bad.pdf"), "%PDF-1.4 truncated");
  EXPECT_THROW(extract_file(join_path(d, "bad.pdf")), Error);
}

TEST(RagStore, TrigramTokenizerFindsKoreanSubstrings) {
  std::string d = solar::testing::temp_dir("rag_trigram");
  auto s = Store::open(join_path(d, "t.db"), true, "toy", 1, "trigram");
  s->put_file("/k", "h", 1, {Chunk{"서울특별시는 대한민국의 수도이다", "", 0, 0, 1}, Chunk{"부산광역시", "", 0, 1, 2}}, {1, 1});
  auto h = s->bm25("대한민국 수도", 5);
  ASSERT_EQ(h.size(), 1u);
  s->fill(h[0]);
  EXPECT_EQ(h[0].text, "서울특별시는 대한민국의 수도이다");
  EXPECT_EQ(s->meta("fts_tokenizer"), "trigram");
  EXPECT_THROW(Store::open(join_path(d, "u.db"), true, "toy", 1, "porter"), Error);
}

TEST(RagStore, HnswMatchesExactAndGoesStaleOnChange) {
  std::string d = solar::testing::temp_dir("rag_hnsw"), db = join_path(d, "h.db");
  auto s = Store::open(db, true, "toy", 8);
  std::mt19937 rng(3);
  std::normal_distribution<float> g;
  auto unit = [&] {
    std::vector<float> v(8);
    float n = 0;
    for (float& x : v) {
      x = g(rng);
      n += x * x;
    }
    for (float& x : v) x /= std::sqrt(n);
    return v;
  };
  std::vector<Chunk> chunks;
  std::vector<float> emb;
  for (int i = 0; i < 300; i++) {
    chunks.push_back(Chunk{"c" + std::to_string(i), "", 0, i, i + 1});
    auto v = unit();
    emb.insert(emb.end(), v.begin(), v.end());
  }
  s->put_file("/f", "h", 1, chunks, emb);
  EXPECT_FALSE(s->ann_fresh());
  s->build_ann();
  EXPECT_TRUE(s->ann_fresh());
  int same = 0;
  for (int q = 0; q < 50; q++) {
    auto v = unit();
    auto a = s->dense(v, 5), e = s->dense(v, 5, true);
    ASSERT_EQ(a.size(), 5u);
    same += a[0].id == e[0].id;
    EXPECT_NEAR(a[0].score, s->similarity(a[0].id, v), 1e-5);
  }
  EXPECT_GE(same, 49);  // 300 points, ef 100: HNSW finds the nearest
  s->remove_file("/f");
  EXPECT_FALSE(s->ann_fresh());  // a later change makes it stale: exact search again
  EXPECT_TRUE(s->dense(unit(), 5).empty());
  // A damaged index file is not loaded.
  s->put_file("/f", "h", 1, chunks, emb);
  s->build_ann();
  write_file_atomic(db + ".hnsw", "garbage");
  EXPECT_FALSE(s->ann_fresh());
  EXPECT_EQ(s->dense(unit(), 3).size(), 3u);
}
