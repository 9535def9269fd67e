// libFuzzer target: a GGUF file (header, metadata, tensor infos, data)
// through load_checkpoint, i.e. detection, parsing and Checkpoint::validate,
// plus its tokenizer metadata (the vocabulary, and the tokenizer.model made
// from it) and inspect's view of the file: results or a solar::Error.
#include "core/error.h"
#include "core/log.h"
#include "formats/gguf.h"
#include "formats/hf.h"
#include "models.h"

namespace solar::fuzz {

void write_seeds(const std::string& dir) {
  model::Checkpoint ck = formats::read_hf(tiny_hf_model(scratch() + "/model"));
  formats::write_gguf(dir + "/tiny_f32.gguf", ck, DType::F32);
  formats::write_gguf(dir + "/tiny_f16.gguf", ck, DType::F16);
}

}  // namespace solar::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool quiet = [] {  // gguf_tokenizer_model warns on every non-"llama" vocabulary
    solar::set_log_level(solar::LogLevel::Off);
    return true;
  }();
  (void)quiet;
  std::string path = solar::fuzz::put("model.gguf", data, size);
  solar::fuzz::load_model_file(path);
  for (auto read : {+[](const std::string& p) { (void)solar::formats::read_gguf_vocab(p); },
                    +[](const std::string& p) { (void)solar::formats::gguf_tokenizer_model(p); },
                    +[](const std::string& p) { (void)solar::formats::read_gguf_info(p); }}) {
    try {
      read(path);
    } catch (const solar::Error&) {
    }
  }
  return 0;
}
