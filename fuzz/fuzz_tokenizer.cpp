// libFuzzer target: tokenizer files. The first byte picks the reader: even, a
// SentencePiece model protobuf (tokenizer.model); odd, a llama2.c
// tokenizer.bin read with vocab size = the second byte. Whatever loads must
// encode and decode without crashing.
#include <string_view>

#include "core/error.h"
#include "fuzz.h"
#include "tokenizer/spm_train.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_impl.h"

namespace solar::fuzz {

void write_seeds(const std::string& dir) {
  std::string text;
  for (int i = 0; i < 200; i++) text += "the quick brown fox " + std::to_string(i) + " jumps over the lazy dog\n";
  write_text(scratch() + "/corpus.txt", text);
  tokenizer::TokenizerTrainOptions o;
  o.inputs = {scratch() + "/corpus.txt"};
  o.vocab_size = 300;
  o.output = scratch() + "/seed.model";
  o.threads = 1;
  tokenizer::train_tokenizer(o);
  std::ifstream f(o.output, std::ios::binary);
  std::string model = std::string(1, '\0') + std::string(std::istreambuf_iterator<char>(f), {});
  write_text(dir + "/spm.model", model);
  // tokenizer.bin: max_token_length, then (score, len, bytes) per token.
  auto v = tokenizer::load_tokenizer(o.output)->vocab();
  std::string bin = {'\1', static_cast<char>(v.pieces.size() > 255 ? 255 : v.pieces.size())};
  auto put32 = [&](const void* p) { bin.append(static_cast<const char*>(p), 4); };
  int32_t max_len = 16;
  put32(&max_len);
  for (size_t i = 0; i < v.pieces.size() && i < 255; i++) {
    float s = v.scores[i];
    int32_t n = static_cast<int32_t>(v.pieces[i].size());
    put32(&s);
    put32(&n);
    bin += v.pieces[i];
  }
  write_text(dir + "/tokenizer.bin", bin);
}

}  // namespace solar::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  std::string_view bytes(reinterpret_cast<const char*>(data) + 2, size - 2);
  try {
    std::unique_ptr<solar::tokenizer::Tokenizer> t;
    if (data[0] % 2 == 0) {
      bytes = std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1);
      t = solar::tokenizer::spm_from_proto(bytes);
    } else {
      t = solar::tokenizer::tokenizer_from_vocab(solar::tokenizer::read_llama2c_vocab("tokenizer.bin", bytes, data[1]));
    }
    if (!t) return 0;  // not a ModelProto
    auto ids = t->encode("Hello, world! \xe2\x96\x81 <s> \n\t 123", true, true);
    (void)t->decode(ids);
  } catch (const solar::Error&) {
  }
  return 0;
}
