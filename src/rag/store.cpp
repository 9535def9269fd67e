// The SQLite store: schema, one transaction per file, BM25 through FTS5,
// exact dense search over the embeddings loaded once per Store.
// Debian's hnswlib 0.6.2 prefetches one link past a full neighbour list
// (searchBaseLayer, under USE_SSE): a 4-byte read past a malloc'd block,
// inside malloc's rounding in practice, but AddressSanitizer stops on it.
// Sanitized builds take hnswlib's plain path, without the prefetches.
#if defined(__SANITIZE_ADDRESS__)
#define NO_MANUAL_VECTORIZATION
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NO_MANUAL_VECTORIZATION
#endif
#endif
#include <hnswlib/hnswlib.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>

#include "core/error.h"
#include "core/fs.h"
#include "kernels/ops.h"
#include "rag/rag.h"

namespace solar::rag {
namespace {

// A prepared statement that finalizes itself; errors name the store.
class Stmt {
 public:
  Stmt(sqlite3* db, const std::string& sql, const std::string& store) : db_(db), store_(store) {
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s_, nullptr) != SQLITE_OK) fail(store, "SQL", sqlite3_errmsg(db));
  }
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt& bind(int i, const std::string& v) {
    sqlite3_bind_text(s_, i, v.data(), int(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& bind(int i, int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  Stmt& bind_blob(int i, const void* p, size_t n) {
    sqlite3_bind_blob(s_, i, p, int(n), SQLITE_TRANSIENT);
    return *this;
  }
  bool step() {
    int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    fail(store_, "SQLite", sqlite3_errmsg(db_));
  }
  void run() {
    step();
    sqlite3_reset(s_);
  }
  int64_t i64(int c) const { return sqlite3_column_int64(s_, c); }
  double f64(int c) const { return sqlite3_column_double(s_, c); }
  std::string str(int c) const {
    const unsigned char* t = sqlite3_column_text(s_, c);
    return t ? std::string(reinterpret_cast<const char*>(t), size_t(sqlite3_column_bytes(s_, c))) : std::string();
  }
  const void* blob(int c, int* n) const {
    *n = sqlite3_column_bytes(s_, c);
    return sqlite3_column_blob(s_, c);
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* s_ = nullptr;
  std::string store_;
};

// FTS5 query syntax would read a user's quotes, '-' or 'AND' as operators:
// the question's words are quoted and OR-ed, BM25 ranks the rest.
std::string fts_query(const std::string& q) {
  std::string out, w;
  auto flush = [&] {
    if (!w.empty()) out += (out.empty() ? "\"" : " OR \"") + w + "\"";
    w.clear();
  };
  for (char c : q) {
    if (isalnum(uint8_t(c)) || (uint8_t(c) & 0x80)) w += c;
    else flush();
  }
  flush();
  return out;
}

Hit make_hit(int64_t id, double score) {
  Hit h;
  h.id = id;
  h.score = score;
  return h;
}

}  // namespace

void Store::exec(const std::string& sql) const {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string m = err ? err : "unknown error";
    sqlite3_free(err);
    fail(path_, "SQLite", m);
  }
}

Store::~Store() {
  if (db_) sqlite3_close(db_);
}

std::unique_ptr<Store> Store::open(const std::string& path, bool create, const std::string& model_name, int64_t dim,
                                   const std::string& fts_tokenizer) {
  if (!create && !path_exists(path)) fail(path, "store", "not found: build it with `solar rag index -o " + path + " PATH…`");
  if (fts_tokenizer != "unicode61" && fts_tokenizer != "trigram")
    fail(path, "--fts-tokenizer", "expected unicode61 or trigram, got " + fts_tokenizer);
  std::unique_ptr<Store> s(new Store());
  s->path_ = path;
  int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
  if (sqlite3_open_v2(path.c_str(), &s->db_, flags, nullptr) != SQLITE_OK)
    fail(path, "store", std::string("cannot open: ") + (s->db_ ? sqlite3_errmsg(s->db_) : "out of memory"));
  sqlite3_busy_timeout(s->db_, 5000);
  s->exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;");
  bool has_meta = false;
  {
    Stmt q(s->db_, "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='meta'", path);
    if (!q.step()) fail(path, "store", "not a SQLite database");
    has_meta = q.i64(0) > 0;
  }
  if (!has_meta) {
    Stmt any(s->db_, "SELECT count(*) FROM sqlite_master", path);
    any.step();
    if (any.i64(0) > 0) fail(path, "store", "a SQLite file, but not a solar rag store (no meta table)");
    if (!create) fail(path, "store", "empty: build it with `solar rag index`");
    if (dim <= 0) fail(path, "store", "a new store needs the embedding dimension");
    std::string tok = fts_tokenizer == "trigram" ? "trigram" : "unicode61 remove_diacritics 2";
    s->exec("BEGIN;"
            "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
            "CREATE TABLE files(path TEXT PRIMARY KEY, hash TEXT NOT NULL, size INTEGER NOT NULL, chunks INTEGER NOT NULL);"
            "CREATE TABLE chunks(id INTEGER PRIMARY KEY, file TEXT NOT NULL REFERENCES files(path) ON DELETE CASCADE,"
            " page INTEGER NOT NULL, heading TEXT NOT NULL, start INTEGER NOT NULL, end INTEGER NOT NULL,"
            " text TEXT NOT NULL, embedding BLOB NOT NULL);"
            "CREATE INDEX chunks_file ON chunks(file);"
            "CREATE VIRTUAL TABLE chunks_fts USING fts5(heading, text, tokenize='" + tok + "');");
    Stmt m(s->db_, "INSERT INTO meta VALUES(?, ?)", path);
    m.bind(1, std::string("schema_version")).bind(2, std::to_string(kSchemaVersion)).run();
    m.bind(1, std::string("embed_model")).bind(2, model_name).run();
    m.bind(1, std::string("dim")).bind(2, std::to_string(dim)).run();
    m.bind(1, std::string("fts_tokenizer")).bind(2, fts_tokenizer).run();
    m.bind(1, std::string("generation")).bind(2, std::string("0")).run();
    s->exec("COMMIT;");
  }
  std::string v = s->meta("schema_version");
  int ver = atoi(v.c_str());
  if (ver > kSchemaVersion)
    fail(path, "schema_version", "the store has schema " + v + ", newer than this solar reads (" +
                                     std::to_string(kSchemaVersion) + "): update solar or rebuild the store");
  if (ver < 1) fail(path, "schema_version", "expected 1.." + std::to_string(kSchemaVersion) + ", got \"" + v + "\"");
  s->dim_ = atoll(s->meta("dim").c_str());
  if (s->dim_ <= 0) fail(path, "meta.dim", "expected a positive integer");
  if (dim > 0 && dim != s->dim_)
    fail(path, "meta.dim", "the store holds " + std::to_string(s->dim_) + "-dim embeddings, the model makes " + std::to_string(dim));
  return s;
}

std::string Store::meta(const std::string& key) const {
  Stmt q(db_, "SELECT value FROM meta WHERE key=?", path_);
  q.bind(1, key);
  return q.step() ? q.str(0) : std::string();
}

std::string Store::file_hash(const std::string& path) const {
  Stmt q(db_, "SELECT hash FROM files WHERE path=?", path_);
  q.bind(1, path);
  return q.step() ? q.str(0) : std::string();
}

std::vector<std::string> Store::files() const {
  Stmt q(db_, "SELECT path FROM files ORDER BY path", path_);
  std::vector<std::string> out;
  while (q.step()) out.push_back(q.str(0));
  return out;
}

int64_t Store::count_chunks() const {
  Stmt q(db_, "SELECT count(*) FROM chunks", path_);
  q.step();
  return q.i64(0);
}

void Store::write(const std::function<void()>& body) {
  exec("BEGIN IMMEDIATE;");
  try {
    body();
    exec("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation';");
    exec("COMMIT;");
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK;", nullptr, nullptr, nullptr);
    throw;
  }
  ids_.clear();  // dense search reloads
  vecs_.clear();
  ann_.reset();
}

void Store::drop_rows(const std::string& file) {
  Stmt f(db_, "DELETE FROM chunks_fts WHERE rowid IN (SELECT id FROM chunks WHERE file=?)", path_);
  f.bind(1, file).run();
  Stmt d(db_, "DELETE FROM files WHERE path=?", path_);  // cascades to chunks
  d.bind(1, file).run();
}

void Store::remove_file(const std::string& path) {
  write([&] { drop_rows(path); });
}

void Store::put_file(const std::string& path, const std::string& hash, int64_t size, const std::vector<Chunk>& chunks,
                     const std::vector<float>& emb) {
  if (emb.size() != chunks.size() * size_t(dim_)) fail(path_, "put_file", "embeddings do not match the chunks");
  write([&] {
    drop_rows(path);
    Stmt fi(db_, "INSERT INTO files VALUES(?, ?, ?, ?)", path_);
    fi.bind(1, path).bind(2, hash).bind(3, size).bind(4, int64_t(chunks.size())).run();
    Stmt c(db_, "INSERT INTO chunks(file, page, heading, start, end, text, embedding) VALUES(?,?,?,?,?,?,?)", path_);
    Stmt t(db_, "INSERT INTO chunks_fts(rowid, heading, text) VALUES(?,?,?)", path_);
    for (size_t i = 0; i < chunks.size(); i++) {
      const Chunk& k = chunks[i];
      c.bind(1, path).bind(2, int64_t(k.page)).bind(3, k.heading).bind(4, k.start).bind(5, k.end).bind(6, k.text);
      c.bind_blob(7, &emb[i * size_t(dim_)], size_t(dim_) * sizeof(float)).run();
      t.bind(1, int64_t(sqlite3_last_insert_rowid(db_))).bind(2, k.heading).bind(3, k.text).run();
    }
  });
}

void Store::fill(Hit& h) const {
  Stmt q(db_, "SELECT file, page, heading, start, end, text FROM chunks WHERE id=?", path_);
  q.bind(1, h.id);
  if (!q.step()) fail(path_, "chunks", "no chunk " + std::to_string(h.id));
  h.file = q.str(0);
  h.page = int(q.i64(1));
  h.heading = q.str(2);
  h.start = q.i64(3);
  h.end = q.i64(4);
  h.text = q.str(5);
}

double Store::similarity(int64_t id, const std::vector<float>& qv) const {
  Stmt q(db_, "SELECT embedding FROM chunks WHERE id=?", path_);
  q.bind(1, id);
  if (!q.step()) fail(path_, "chunks", "no chunk " + std::to_string(id));
  int n = 0;
  const void* p = q.blob(0, &n);
  if (n != int(dim_ * int64_t(sizeof(float))) || int64_t(qv.size()) != dim_) fail(path_, "chunks.embedding", "wrong size");
  std::vector<float> v(static_cast<size_t>(dim_));
  memcpy(v.data(), p, size_t(n));
  return kernels::dot(v.data(), qv.data(), dim_);
}

std::vector<Hit> Store::bm25(const std::string& query, int64_t k) const {
  std::vector<Hit> out;
  std::string m = fts_query(query);
  if (m.empty()) return out;
  Stmt q(db_, "SELECT rowid, bm25(chunks_fts) FROM chunks_fts WHERE chunks_fts MATCH ? ORDER BY bm25(chunks_fts) LIMIT ?", path_);
  q.bind(1, m).bind(2, k);
  while (q.step()) out.push_back(make_hit(q.i64(0), -q.f64(1)));  // FTS5's bm25() is lower-is-better
  return out;
}

void Store::load_vectors() const {
  if (!ids_.empty()) return;
  Stmt q(db_, "SELECT id, embedding FROM chunks ORDER BY id", path_);
  while (q.step()) {
    int n = 0;
    const void* p = q.blob(1, &n);
    if (n != int(dim_ * int64_t(sizeof(float)))) fail(path_, "chunks.embedding", "chunk " + std::to_string(q.i64(0)) + ": wrong size");
    ids_.push_back(q.i64(0));
    size_t o = vecs_.size();
    vecs_.resize(o + size_t(dim_));
    memcpy(&vecs_[o], p, size_t(n));
  }
}

struct Store::Ann {
  hnswlib::InnerProductSpace space;
  std::unique_ptr<hnswlib::HierarchicalNSW<float>> index;
  explicit Ann(size_t dim) : space(dim) {}
};

namespace {
std::string file_fnv(const std::string& path) {
  std::string b = read_file(path, uint64_t(1) << 40);
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : b) h = (h ^ c) * 1099511628211ull;
  return std::to_string(h) + ":" + std::to_string(b.size());
}
}  // namespace

bool Store::ann_fresh() const {
  std::string want = meta("hnsw");
  if (want.empty() || !path_exists(path_ + ".hnsw")) return false;
  return want == meta("generation") + ":" + file_fnv(path_ + ".hnsw");
}

void Store::build_ann() {
  load_vectors();
  Ann a{size_t(dim_)};
  a.index = std::make_unique<hnswlib::HierarchicalNSW<float>>(&a.space, std::max<size_t>(1, ids_.size()), 16, 200, 100);
  for (size_t i = 0; i < ids_.size(); i++) a.index->addPoint(&vecs_[i * size_t(dim_)], hnswlib::labeltype(ids_[i]));
  std::string tmp = temp_path_for(path_ + ".hnsw");
  a.index->saveIndex(tmp);
  if (rename(tmp.c_str(), (path_ + ".hnsw").c_str()) != 0) fail(path_ + ".hnsw", "rename", strerror(errno));
  fsync_dir(parent_dir(path_ + ".hnsw").empty() ? "." : parent_dir(path_ + ".hnsw"));
  Stmt m(db_, "INSERT OR REPLACE INTO meta VALUES('hnsw', ?)", path_);
  m.bind(1, meta("generation") + ":" + file_fnv(path_ + ".hnsw")).run();
}

std::vector<Hit> Store::dense(const std::vector<float>& qv, int64_t k, bool exact) const {
  if (int64_t(qv.size()) != dim_) fail(path_, "query", "vector of " + std::to_string(qv.size()) + ", expected " + std::to_string(dim_));
  std::vector<Hit> out;
  if (!exact && !ann_ && ann_fresh()) {
    ann_ = std::make_shared<Ann>(size_t(dim_));
    ann_->index = std::make_unique<hnswlib::HierarchicalNSW<float>>(&ann_->space, path_ + ".hnsw");
  }
  if (!exact && ann_) {
    ann_->index->setEf(size_t(std::max<int64_t>(k, 100)));
    auto pq = ann_->index->searchKnn(qv.data(), size_t(std::max<int64_t>(0, k)));
    for (; !pq.empty(); pq.pop()) out.push_back(make_hit(int64_t(pq.top().second), 1.0 - double(pq.top().first)));
    std::reverse(out.begin(), out.end());
    return out;
  }
  load_vectors();
  std::vector<std::pair<float, int64_t>> sc(ids_.size());
#pragma omp parallel for if (ids_.size() > 4096)
  for (size_t i = 0; i < ids_.size(); i++) sc[i] = {kernels::dot(&vecs_[i * size_t(dim_)], qv.data(), dim_), ids_[i]};
  size_t n = std::min(sc.size(), size_t(std::max<int64_t>(0, k)));
  std::partial_sort(sc.begin(), sc.begin() + ptrdiff_t(n), sc.end(), [](auto& a, auto& b) { return a.first > b.first; });
  for (size_t i = 0; i < n; i++) out.push_back(make_hit(sc[i].second, double(sc[i].first)));
  return out;
}

bool valid_fusion(const std::string& method) { return method == "relative" || method == "rrf"; }

std::vector<Hit> fuse(const std::vector<Hit>& bm25, const std::vector<Hit>& dense, const Fusion& f, int64_t k) {
  if (!valid_fusion(f.method)) fail("--fusion", "", "expected relative or rrf, got " + f.method);
  if (!(f.alpha >= 0 && f.alpha <= 1)) fail("--alpha", "", "expected a weight in [0, 1], got " + std::to_string(f.alpha));
  std::map<int64_t, double> fused;
  auto add = [&](const std::vector<Hit>& list, double w) {
    if (list.empty()) return;
    double lo = list[0].score, hi = list[0].score;
    for (const Hit& h : list) lo = std::min(lo, h.score), hi = std::max(hi, h.score);
    for (size_t r = 0; r < list.size(); r++) {
      // One score (or one hit) carries no spread: it counts fully.
      const double x = f.method == "rrf" ? 1.0 / (60.0 + double(r + 1)) : hi > lo ? (list[r].score - lo) / (hi - lo) : 1.0;
      fused[list[r].id] += w * x;
    }
  };
  add(bm25, 1 - f.alpha);
  add(dense, f.alpha);
  std::vector<Hit> out;
  for (auto& [id, s] : fused) out.push_back(make_hit(id, s));
  std::sort(out.begin(), out.end(), [](const Hit& a, const Hit& b) { return a.score != b.score ? a.score > b.score : a.id < b.id; });
  if (int64_t(out.size()) > k) out.resize(size_t(k));
  return out;
}

std::vector<Hit> Store::hybrid(const std::string& query, const std::vector<float>& qv, int64_t k, bool exact, const Fusion& f) const {
  // Deep enough that min-max normalisation sees a list's spread even for a small k.
  const int64_t depth = std::max<int64_t>(4 * k, 50);
  return fuse(bm25(query, depth), dense(qv, depth, exact), f, k);
}

}  // namespace solar::rag
