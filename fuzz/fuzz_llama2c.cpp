// libFuzzer target: a llama2.c checkpoint (legacy and v1 headers) through
// load_checkpoint: a checkpoint or a solar::Error.
#include <cstring>
#include <vector>

#include "models.h"

namespace solar::fuzz {

// dim 8, hidden 16, 1 layer, 2 heads, 2 KV heads, vocab 16, seq_len 8.
void write_seeds(const std::string& dir) {
  const int32_t dim = 8, hidden = 16, layers = 1, heads = 2, kv = 2, vocab = 16, seq = 8;
  const size_t head = dim / heads;
  const size_t weights = vocab * dim + layers * (dim + 4 * dim * dim + dim + 3 * dim * hidden) + dim;
  const size_t freqs = seq * head / 2 * 2;
  std::vector<float> w(weights + freqs, 0.01f);
  int32_t hdr[7] = {dim, hidden, layers, heads, kv, vocab, seq};
  std::vector<uint8_t> legacy(sizeof hdr + w.size() * 4);
  std::memcpy(legacy.data(), hdr, sizeof hdr);
  std::memcpy(legacy.data() + sizeof hdr, w.data(), w.size() * 4);
  write_bytes(dir + "/legacy.bin", legacy.data(), legacy.size());
  std::vector<uint8_t> v1(256 + weights * 4);
  uint32_t magic = 0x616b3432;  // "ak42" as llama2.c's export writes it
  std::memcpy(v1.data(), &magic, 4);
  int32_t version = 1;
  std::memcpy(v1.data() + 4, &version, 4);
  std::memcpy(v1.data() + 8, hdr, sizeof hdr);
  v1[8 + sizeof hdr] = 1;  // shared classifier
  std::memcpy(v1.data() + 256, w.data(), weights * 4);
  write_bytes(dir + "/v1.bin", v1.data(), v1.size());
}

}  // namespace solar::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // No tokenizer.bin beside it in the scratch folder: tokenizers are fuzz_tokenizer's.
  solar::fuzz::load_model_file(solar::fuzz::put("model.bin", data, size));
  return 0;
}
