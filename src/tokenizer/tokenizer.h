// solar/tokenizer/tokenizer.h — text <-> token ids, as Hugging Face does it.
//
// Three sources, one interface: a SentencePiece tokenizer.model (Llama 2,
// Mistral/SOLAR; via Debian's libsentencepiece), a llama2.c tokenizer.bin,
// and GGUF tokenizer.ggml.* metadata (both score-based BPE over a Vocab).
// encode() never adds EOS unless asked; BOS per add_bos. Special/control
// tokens in the text are not parsed (like HF's add_special_tokens path).
// Threads: a Tokenizer is immutable once loaded and every method is const
// and thread-safe (SentencePiece's Encode/Decode are, google/sentencepiece
// #207, #657); share one by any number of threads. A StreamDecoder is per
// stream, one thread at a time.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace solar::tokenizer {

// GGUF token types (llama.cpp): 1 normal, 2 unknown, 3 control,
// 4 user-defined, 5 unused, 6 byte.
struct Vocab {
  std::vector<std::string> pieces;  // SentencePiece spelling ("▁the", "<0x0A>")
  std::vector<float> scores;
  std::vector<int> types;
  int bos = 1, eos = 2, unk = 0, pad = -1;  // -1: none
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  virtual std::vector<int> encode(std::string_view text, bool add_bos, bool add_eos = false) const = 0;
  // Whole-sequence decode as HF's tokenizer.decode(skip_special_tokens=True).
  virtual std::string decode(const std::vector<int>& ids) const = 0;
  virtual int vocab_size() const = 0;
  virtual int bos_id() const = 0;
  virtual int eos_id() const = 0;
  virtual Vocab vocab() const = 0;
  // Id of an exact piece, or -1.
  virtual int piece_to_id(std::string_view piece) const = 0;
  // The piece's spelling ("▁the", "<0x0A>"); throws on an id out of range.
  virtual std::string id_to_piece(int id) const = 0;
  // The raw byte of a byte-fallback piece ("<0xE2>" -> 0xE2), or -1.
  virtual int byte_value(int id) const = 0;
};

// Loads by content: a SentencePiece model proto or a llama2.c tokenizer.bin
// (needs vocab_size: the file has no count). GGUF files carry their vocab in
// metadata: formats/load.h's open_tokenizer reads those (and these).
// Throws solar::Error naming the file.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path, int vocab_size_hint = 0);
std::unique_ptr<Tokenizer> tokenizer_from_vocab(Vocab v);

// `v` as a SentencePiece tokenizer.model (a serialized ModelProto), the kind
// Llama 2's and Mistral's vocabularies come from: model type BPE, byte fallback
// when v has byte pieces, Llama's normalizer (none: identity rules, a dummy
// prefix, whitespace runs kept and escaped as "▁"). Piece types are GGUF's,
// which are SentencePiece's numbers; the unk piece is typed UNKNOWN when no
// piece is. Written by hand (no protobuf library), then loaded back through
// libsentencepiece: throws solar::Error with its reason when it would refuse
// the model (duplicate or empty pieces, a type outside 1..6, a NUL byte).
std::string spm_model_proto(const Vocab& v);

// Streaming detokenizer for generate/chat: feed ids one at a time, get the
// text that is now final (holds back incomplete UTF-8 from byte tokens;
// drops the leading space of the first piece after BOS, like HF and run.c).
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok);
  std::string push(int id);
  std::string flush();  // whatever is held back

 private:
  const Tokenizer& tok_;
  std::vector<int> ids_;
  size_t emitted_ = 0;  // bytes of decode(ids_) already returned
};

}  // namespace solar::tokenizer
