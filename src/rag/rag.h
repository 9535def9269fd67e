// solar/rag/rag.h — retrieval over local documents: extract, chunk, store, search.
//
// What: `solar rag index` turns files (plain text, Markdown, reStructuredText,
// HTML, JSONL, PDF through poppler's pdftotext) into chunks that follow the
// document's structure, embeds them (embed/embed.h) and keeps them in one
// SQLite file; `solar rag query/ask` searches it by BM25 (FTS5), dense
// cosine (exact, SIMD dot products) or both fused (fuse()), the best
// candidates optionally reranked by a language model (rerank.h).
//
// The store (one SQLite file, WAL): meta(key, value) with schema_version,
// the embedding model's name and dimension, the FTS tokenizer; files(path,
// hash, size, chunks); chunks(id, file, page, heading, start, end, text,
// embedding BLOB of dim f32); chunks_fts (FTS5 over the chunk text and its
// heading path, rowid = chunk id). A store whose schema_version is newer than
// kSchemaVersion is refused, naming both versions. A large store may have an
// HNSW index beside it (STORE.hnsw, build_ann()); meta records the store
// generation and file hash it was built for, and a stale one is not used.
// Crash safety: each file is replaced (old chunks out, new chunks in, its
// hash recorded) in one transaction, so a killed `index` leaves the store as
// it was after the last whole file; the next run redoes only what changed.
// Grounding (`rag ask`, `serve --rag`): retrieval for the question (hybrid by
// default), the sources whose cosine reaches a floor, optionally reranked by
// the LLM (rerank.h), numbered in a user turn under a system message asking
// for cited answers; nothing relevant: "I don't know" without calling the model.
// Errors: solar::Error naming the file and what was wrong. A file that cannot
// be read or parsed is skipped by index() and reported in its summary.
// Threads: a Store (and a Retriever) is used from one thread at a time;
// embedding uses the kernels' threads.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "chat/chat.h"
#include "embed/embed.h"

struct sqlite3;

namespace solar::rag {

constexpr int kSchemaVersion = 1;

// A structural unit of a document: a paragraph, a list item, a table, a code
// block. `heading` is the path of the headings above it ("Intro > Setup").
struct Block {
  std::string text, heading;
  int page = 0;                 // 1-based for PDFs, 0 elsewhere
  int64_t start = 0, end = 0;   // byte span in the extracted text (of its page for PDFs)
  bool atomic = false;          // a table or code block: kept whole when it fits
  bool alone = false;           // a record (JSONL line): never packed with its neighbours
};

// The blocks of a file, by its extension (.txt .md .markdown .rst .html .htm
// .jsonl .pdf; anything else is read as plain text if it is valid UTF-8,
// else refused). JSONL takes each line's `text_field`.
std::vector<Block> extract_file(const std::string& path, const std::string& text_field = "text");
// The same from text already in memory; `kind` is "txt", "md", "rst", "html" or "jsonl".
std::vector<Block> extract_text(const std::string& text, const std::string& kind, const std::string& source,
                                const std::string& text_field = "text");

struct Chunk {
  std::string text, heading;
  int page = 0;
  int64_t start = 0, end = 0;
};
struct ChunkOptions {
  int64_t max_tokens = 200;  // under the embedder's 256 with room for the heading
  int64_t overlap = 32;      // tokens a split block repeats from the previous window
};
// Packs consecutive blocks under one heading and page into chunks of at most
// max_tokens (count_tokens measures); a block larger than that is cut into
// windows of max_tokens words-worth with `overlap` repeated.
std::vector<Chunk> chunk_blocks(const std::vector<Block>& blocks, const ChunkOptions& opt,
                                const std::function<int64_t(const std::string&)>& count_tokens);

struct Hit {
  int64_t id = 0;
  double score = 0;
  std::string file, heading, text;
  int page = 0;
  int64_t start = 0, end = 0;
  std::optional<double> rerank;  // the reranker's score (rerank.h); `score` stays the retrieval's
};

// How hybrid search merges its BM25 and dense lists. `alpha` is the dense
// list's weight, 1 - alpha the BM25 list's (as Weaviate's hybrid alpha).
//   relative: each list's scores min-max normalised to [0, 1] over the list
//             (a chunk absent from a list gets 0 there), then alpha-weighted
//             and summed (Weaviate's relativeScoreFusion);
//   rrf:      reciprocal rank fusion, weight / (60 + rank) summed.
// The default, relative at 0.75 (Weaviate's default alpha too), lies in the
// flat best region whichever half of Natural Questions picks it (docs/rag.md,
// bench/rag_nq.py --fusion-study); equal-weight RRF let the weaker BM25 list
// pull dense's ranking down.
struct Fusion {
  std::string method = "relative";
  double alpha = 0.75;
};
bool valid_fusion(const std::string& method);  // relative or rrf
// The fused ranking of two lists (each best first), the best k, with their fused scores.
std::vector<Hit> fuse(const std::vector<Hit>& bm25, const std::vector<Hit>& dense, const Fusion& f, int64_t k);

class Store {
 public:
  // Opens or creates `path`. create: a new store records the embedding model
  // and tokenizer ("unicode61" or "trigram"); an existing one keeps its own.
  static std::unique_ptr<Store> open(const std::string& path, bool create, const std::string& model_name = "",
                                     int64_t dim = 0, const std::string& fts_tokenizer = "unicode61");
  ~Store();
  int64_t dim() const { return dim_; }
  std::string meta(const std::string& key) const;

  // The stored hash of a file, or "" when it is not in the store.
  std::string file_hash(const std::string& path) const;
  std::vector<std::string> files() const;
  // Replaces a file's chunks in one transaction (embeddings: chunks.size() × dim).
  void put_file(const std::string& path, const std::string& hash, int64_t size, const std::vector<Chunk>& chunks,
                const std::vector<float>& embeddings);
  void remove_file(const std::string& path);
  int64_t count_chunks() const;

  std::vector<Hit> bm25(const std::string& query, int64_t k) const;
  // Exact cosine over every chunk, or through the HNSW index when build_ann()
  // made one for the store as it is now (and `exact` is false).
  std::vector<Hit> dense(const std::vector<float>& query_vec, int64_t k, bool exact = false) const;
  // Builds the approximate index (hnswlib, inner product, M = 16) over all
  // embeddings into STORE.hnsw (atomically) and records in meta which
  // generation of the store and which file bytes it belongs to: any later
  // change to the chunks, or a damaged file, makes dense() fall back to exact.
  void build_ann();
  bool ann_fresh() const;  // STORE.hnsw exists and matches the store
  // fuse() of both lists, each taken max(4k, 50) deep.
  std::vector<Hit> hybrid(const std::string& query, const std::vector<float>& query_vec, int64_t k, bool exact = false,
                          const Fusion& f = {}) const;
  void fill(Hit& h) const;  // text, file, heading, page, span of h.id
  // Cosine of chunk `id` to a unit query vector (embeddings are unit length).
  double similarity(int64_t id, const std::vector<float>& query_vec) const;
  const std::string& path() const { return path_; }

 private:
  Store() = default;
  sqlite3* db_ = nullptr;
  std::string path_;
  int64_t dim_ = 0;
  mutable std::vector<int64_t> ids_;    // dense search: all embeddings, loaded once
  mutable std::vector<float> vecs_;
  struct Ann;
  mutable std::shared_ptr<Ann> ann_;    // the HNSW index, loaded on first use
  void load_vectors() const;
  void exec(const std::string& sql) const;
  void write(const std::function<void()>& body);  // one transaction; rolled back on a throw
  void drop_rows(const std::string& file);
};

// What index() did, for the summary line.
struct IndexReport {
  int64_t files_seen = 0, indexed = 0, unchanged = 0, removed = 0, skipped = 0, chunks = 0, truncated = 0;
  std::vector<std::string> skipped_why;  // "path: reason"
  double seconds = 0, embed_seconds = 0;
};
struct IndexOptions {
  ChunkOptions chunk;
  std::string text_field = "text";
  bool progress = true;
};
// Indexes files and folders (recursively, hidden entries skipped) into `store`:
// unchanged files (same content hash) are kept, changed ones replaced, and
// stored files that no longer exist, or that lie under a given folder and
// were not found there, are removed.
IndexReport index_paths(Store& store, const embed::Embedder& emb, const std::vector<std::string>& paths,
                        const IndexOptions& opt);

// The text embedded for a chunk: its heading path, then its text.
std::string embed_text(const Chunk& c);

// Relevance scores of `passages` to `question`, one each, in their order
// (rerank.h: rerank() orders hits by them, LlmReranker computes them).
using RelevanceFn = std::function<std::vector<double>(const std::string& question, const std::vector<std::string>& passages)>;
// Reorders hits[0, min(top, size)) by score(question, their passage_text()),
// highest first; equal scores keep the incoming order (a stable sort, so a
// scorer that cannot tell passages apart changes nothing); hits past `top`
// stay after them as they were. Sets Hit::rerank of the scored ones. top <= 0
// or no hits: nothing is scored. Throws solar::Error when the scorer returns
// other than one score per passage, or a NaN.
void rerank(std::vector<Hit>& hits, const std::string& question, int64_t top, const RelevanceFn& score);
// The text a reranker reads for a hit: its heading path, a newline, its text.
std::string passage_text(const Hit& h);

// How a question is searched: the list, hybrid's fusion, the exact dense scan
// even where the store has an HNSW index, and how many of the best candidates
// a reranker rescores (0: none).
struct SearchOptions {
  std::string mode = "hybrid";  // bm25, dense or hybrid
  Fusion fusion;
  bool exact = false;
  int64_t rerank_top = 0;
};

// A store and the embedder that matches it, opened once for many questions.
class Retriever {
 public:
  // embed_model: a model folder, or "" to find it (embed::find_model). Without
  // `with_embedder` only bm25 searches work.
  Retriever(const std::string& store_path, const std::string& embed_model, bool with_embedder = true);
  // The best k hits, filled; mode other than bm25, dense or hybrid: a
  // solar::Error naming --mode. With o.rerank_top and a `rerank` scorer, the
  // best max(k, rerank_top) are retrieved, the first rerank_top reranked, and
  // the best k of that order returned. *qv gets the question's vector (empty
  // for bm25).
  std::vector<Hit> search(const std::string& question, int64_t k, const SearchOptions& o = {}, std::vector<float>* qv = nullptr,
                          const RelevanceFn& rerank = nullptr) const;
  // The question's unit vector (needs the embedder).
  std::vector<float> embed(const std::string& question) const;
  Store& store() const { return *store_; }

 private:
  std::unique_ptr<Store> store_;
  std::unique_ptr<embed::Embedder> emb_;
};
bool valid_mode(const std::string& mode);  // bm25, dense or hybrid

// The hits as `rag query --json` prints them (id, score, file, page, heading,
// start, end, rerank when reranked, and text when asked).
nlohmann::json hits_json(const std::vector<Hit>& hits, bool with_text);
// "file p.N § heading [start,end)": where a source is.
std::string hit_location(const Hit& h);

// What a grounded answer is built from: of the best max(k, rerank_top)
// candidates (o.search), those whose cosine to the question is at least
// min_score; the first rerank_top of them reranked when `rerank` is given
// (after the floor, so `rerank` is called only when some candidate is
// relevant); the best k. And the best cosine seen (-1: no hit).
struct GroundingOptions {
  SearchOptions search;
  int64_t k = 4;
  double min_score = 0.3;
};
struct Grounding {
  std::vector<Hit> sources;
  double best = -1;
};
Grounding retrieve_sources(const Retriever& r, const std::string& question, const GroundingOptions& o,
                           const RelevanceFn& rerank = nullptr);
// The answer when no source is relevant (names the store and both scores).
std::string dont_know(const std::string& store, const Grounding& g, double min_score);
// The system message of a grounded answer.
extern const char* const kGroundedSystem;
// The prompt: kGroundedSystem (then any system messages of `history`), the
// other turns of `history`, and a user turn of the numbered sources and the
// question. Sources are dropped from the end (g.sources shrinks) until the
// prompt leaves min(n_predict, n_ctx / 4) tokens for the answer, down to one;
// the caller checks that the prompt fits at all.
std::vector<int> grounded_prompt(const tokenizer::Tokenizer& tok, chat::ChatTemplate t, const std::vector<chat::ChatMessage>& history,
                                 const std::string& question, Grounding& g, int64_t n_ctx, int64_t n_predict);

}  // namespace solar::rag
