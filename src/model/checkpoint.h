// solar/model/checkpoint.h — a model as every command sees it.
//
// A Checkpoint is a config plus named tensors in Hugging Face naming and
// layout, whatever the file format: formats/ readers map the files and fill
// the views in place (no copy), only converting where a format forces it.
// Tensor names (per layer N):
//   model.embed_tokens.weight                     [vocab, d]
//   model.layers.N.input_layernorm.weight         [d]
//   model.layers.N.self_attn.{q,k,v,o}_proj.weight [q_dim,d] [kv_dim,d] [kv_dim,d] [d,q_dim]
//   model.layers.N.post_attention_layernorm.weight [d]
//   model.layers.N.mlp.{gate,up}_proj.weight      [ff, d]
//   model.layers.N.mlp.down_proj.weight           [d, ff]
//   model.norm.weight                             [d]
//   lm_head.weight                                [vocab, d] (absent when tied)
// Threads: a Checkpoint is not synchronised: build it on one thread; once
// built, const access (get, lm_head, validate, the views' bytes) is safe
// from any number of threads (engine/ shares one as shared_ptr<const>).
#pragma once
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/mmap.h"
#include "core/tensor.h"
#include "model/config.h"

namespace solar::model {

struct Checkpoint {
  std::string source;  // path it was read from, for messages
  ModelConfig config;
  std::map<std::string, TensorView> tensors;
  // Keep-alive for the bytes the views point into.
  std::vector<std::shared_ptr<MappedFile>> files;
  std::vector<std::shared_ptr<std::vector<uint8_t>>> owned;
  // Tokenizer: a SentencePiece tokenizer.model, a llama2.c tokenizer.bin, or
  // a GGUF file carrying tokenizer metadata. Empty when none was found.
  std::string tokenizer_path;
  nlohmann::json tokenizer_config = nlohmann::json::object();   // tokenizer_config.json
  nlohmann::json generation_config = nlohmann::json::object();  // generation_config.json

  bool has(const std::string& name) const { return tensors.count(name) != 0; }
  // Throws "<source>: <name>: missing tensor" if absent.
  const TensorView& get(const std::string& name) const;
  // The output head: lm_head.weight, or the embedding when tied.
  const TensorView& lm_head() const;
  // Checks the config (bounds, model/config.h), then the tensors present
  // against it before anything is sized from the config: every name must be
  // one the config implies (unknown names and layers past num_hidden_layers
  // are refused, naming the tensor; an lm_head beside tied embeddings only if
  // it is a byte-identical copy), and every implied tensor must exist with
  // the right shape and byte size; norms must be float (F32/F16/BF16), weight
  // matrices float or block-quantized with rows of whole blocks. Throws
  // naming the file, the first tensor that does not and what was expected.
  void validate() const;
  // Scans every weight for NaN / Inf (a float's exponent all ones; for block
  // types the f16 scales, as the quants themselves are small integers).
  // Parallel (OpenMP) and vectorised, so it runs at memory bandwidth. Throws
  // naming the file, the first such tensor in name order and the element.
  void check_finite() const;
  // Stores `data` in `owned` and returns a view of it.
  TensorView adopt(std::string name, DType dt, std::vector<int64_t> shape, std::vector<uint8_t> data);

 private:
  void check_tied_head() const;
};

std::string layer_tensor(int layer, const char* suffix);  // "model.layers.N.<suffix>"
// Every tensor name the config implies, in the canonical (HF) order.
std::vector<std::string> expected_tensor_names(const ModelConfig& c);
std::vector<int64_t> expected_shape(const ModelConfig& c, const std::string& name);

}  // namespace solar::model
