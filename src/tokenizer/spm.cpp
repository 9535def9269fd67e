// SentencePiece models (Llama 2, Mistral/SOLAR) through libsentencepiece,
// which is the reference implementation HF's slow LlamaTokenizer wraps.
#include <sentencepiece_processor.h>

#include <algorithm>

#include "core/error.h"
#include "tokenizer/tokenizer_impl.h"

namespace solar::tokenizer {
namespace {

class SpmTokenizer : public Tokenizer {
 public:
  explicit SpmTokenizer(std::unique_ptr<sentencepiece::SentencePieceProcessor> sp) : sp_(std::move(sp)) {
    bytes_.assign(sp_->GetPieceSize(), -1);
    for (int i = 0; i < sp_->GetPieceSize(); i++)
      if (sp_->IsByte(i)) bytes_[i] = parse_byte_piece(sp_->IdToPiece(i));
  }

  std::vector<int> encode(std::string_view text, bool add_bos, bool add_eos) const override {
    std::vector<int> ids;
    if (add_bos && bos_id() >= 0) ids.push_back(bos_id());
    if (!text.empty()) {
      std::vector<int> body;
      auto st = sp_->Encode(text, &body);
      if (!st.ok()) fail("", "sentencepiece encode", st.ToString());
      ids.insert(ids.end(), body.begin(), body.end());
    }
    if (add_eos && eos_id() >= 0) ids.push_back(eos_id());
    return ids;
  }

  // HF decode(skip_special_tokens=True): control and unknown pieces vanish;
  // SentencePiece drops the dummy-prefix space and turns bytes into UTF-8.
  std::string decode(const std::vector<int>& ids) const override {
    std::vector<int> keep;
    keep.reserve(ids.size());
    for (int id : ids) {
      check(id);
      if (!sp_->IsControl(id) && !sp_->IsUnknown(id)) keep.push_back(id);
    }
    std::string out;
    auto st = sp_->Decode(keep, &out);
    if (!st.ok()) fail("", "sentencepiece decode", st.ToString());
    return out;
  }

  int vocab_size() const override { return sp_->GetPieceSize(); }
  int bos_id() const override { return sp_->bos_id(); }
  int eos_id() const override { return sp_->eos_id(); }

  Vocab vocab() const override {
    Vocab v;
    int n = vocab_size();
    v.pieces.resize(n);
    v.scores.resize(n);
    v.types.resize(n);
    for (int i = 0; i < n; i++) {
      v.pieces[i] = sp_->IdToPiece(i);
      v.scores[i] = sp_->GetScore(i);
      // The processor API cannot tell user-defined pieces from normal ones.
      v.types[i] = sp_->IsUnknown(i) ? 2 : sp_->IsControl(i) ? 3 : sp_->IsByte(i) ? 6 : sp_->IsUnused(i) ? 5 : 1;
    }
    v.bos = bos_id();
    v.eos = eos_id();
    v.unk = sp_->unk_id();
    v.pad = sp_->pad_id();
    return v;
  }

  int piece_to_id(std::string_view piece) const override {
    int id = sp_->PieceToId(piece);
    // PieceToId answers unk_id for unknown pieces; only "<unk>" itself is it.
    return id == sp_->unk_id() && piece != sp_->IdToPiece(id) ? -1 : id;
  }
  std::string id_to_piece(int id) const override {
    check(id);
    return sp_->IdToPiece(id);
  }
  int byte_value(int id) const override {
    check(id);
    return bytes_[id];
  }

 private:
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
  std::vector<int> bytes_;

  void check(int id) const {
    if (id < 0 || id >= vocab_size())
      fail("", "token id", "expected 0.." + std::to_string(vocab_size() - 1) + ", got " + std::to_string(id));
  }
};

// Whether some piece (ModelProto field 1 → SentencePiece field 1) holds a NUL
// byte: libsentencepiece's trie builder throws on one from a frame it cannot
// unwind, aborting the process, so such a model must never reach it. Walks the
// protobuf wire format only as far as it is well formed; the rest is left to
// libsentencepiece's own parser.
bool piece_has_nul(std::string_view m, int depth = 0) {
  size_t i = 0;
  auto varint = [&](uint64_t& v) {
    v = 0;
    for (int shift = 0; i < m.size() && shift < 64; shift += 7) {
      uint8_t b = static_cast<uint8_t>(m[i++]);
      v |= uint64_t(b & 0x7f) << shift;
      if (!(b & 0x80)) return true;
    }
    return false;
  };
  uint64_t key, v;
  while (i < m.size() && varint(key)) {
    switch (key & 7) {
      case 0: if (!varint(v)) return false; break;
      case 1: i += 8; break;
      case 5: i += 4; break;
      case 2: {
        if (!varint(v) || v > m.size() - i) return false;
        std::string_view field = m.substr(i, v);
        i += v;
        if ((key >> 3) == 1) {
          if (depth == 0 && piece_has_nul(field, 1)) return true;
          if (depth == 1 && field.find('\0') != std::string_view::npos) return true;
        }
        break;
      }
      default: return false;
    }
  }
  return false;
}

// Protocol buffer wire format, as much of it as a ModelProto needs.
struct ProtoWriter {
  std::string out;
  void varint(uint64_t v) {
    for (; v >= 0x80; v >>= 7) out += char(v | 0x80);
    out += char(v);
  }
  void key(int field, int wire) { varint(uint64_t(field) << 3 | uint64_t(wire)); }
  void integer(int field, int64_t v) { key(field, 0), varint(uint64_t(v)); }  // int32 -1: 10 bytes, as protobuf
  void f32(int field, float v) { key(field, 5), out.append(reinterpret_cast<const char*>(&v), 4); }
  void bytes(int field, std::string_view s) { key(field, 2), varint(s.size()), out += s; }
};

}  // namespace

std::string spm_model_proto(const Vocab& v) {
  const int n = int(v.pieces.size());
  if (v.scores.size() != v.pieces.size() || v.types.size() != v.pieces.size())
    fail("", "vocab", "expected " + std::to_string(n) + " scores and types, got " + std::to_string(v.scores.size()) +
                          " and " + std::to_string(v.types.size()));
  enum { kNormal = 1, kUnknown = 2, kByte = 6 };  // sentencepiece_model.proto's SentencePiece.Type
  std::vector<int> types = v.types;
  if (std::find(types.begin(), types.end(), int(kUnknown)) == types.end() && v.unk >= 0 && v.unk < n)
    types[v.unk] = kUnknown;  // SentencePiece needs exactly one
  ProtoWriter m;  // ModelProto: 1 pieces, 2 trainer_spec, 3 normalizer_spec
  for (int i = 0; i < n; ++i) {
    if (types[i] < kNormal || types[i] > kByte)
      fail("", "token[" + std::to_string(i) + "].type",
           "expected 1..6 (normal, unknown, control, user-defined, unused, byte), got " + std::to_string(types[i]));
    ProtoWriter p;  // SentencePiece: 1 piece, 2 score, 3 type
    p.bytes(1, v.pieces[i]);
    p.f32(2, v.scores[i]);
    p.integer(3, types[i]);
    m.bytes(1, p.out);
  }
  ProtoWriter t;  // TrainerSpec: what encoding and HF's converters read
  t.integer(3, 2);  // model_type BPE
  t.integer(4, n);  // vocab_size
  t.integer(35, std::count(types.begin(), types.end(), int(kByte)) > 0);  // byte_fallback
  const std::pair<int, int> specials[] = {{v.unk, 40}, {v.bos, 41}, {v.eos, 42}, {v.pad, 43}};  // *_id; *_piece is +5
  for (auto [id, field] : specials) {
    bool ok = id >= 0 && id < n;
    t.integer(field, ok ? id : -1);
    if (ok) t.bytes(field + 5, v.pieces[id]);
  }
  m.bytes(2, t.out);
  ProtoWriter norm;  // NormalizerSpec, as Llama 2's
  norm.bytes(1, "identity");
  norm.integer(3, 1);  // add_dummy_prefix
  norm.integer(4, 0);  // remove_extra_whitespaces
  norm.integer(5, 1);  // escape_whitespaces
  m.bytes(3, norm.out);

  if (piece_has_nul(m.out)) fail("", "vocab", "a piece holds a NUL byte, which SentencePiece cannot store");
  sentencepiece::SentencePieceProcessor sp;
  if (auto st = sp.LoadFromSerializedProto(m.out); !st.ok())
    fail("SentencePiece refuses it as a tokenizer.model: " + st.ToString());
  return m.out;
}

std::unique_ptr<Tokenizer> spm_from_proto(std::string_view bytes) {
  auto sp = std::make_unique<sentencepiece::SentencePieceProcessor>();
  if (bytes.empty() || piece_has_nul(bytes) || !sp->LoadFromSerializedProto(bytes).ok() || sp->GetPieceSize() == 0) return nullptr;
  return std::make_unique<SpmTokenizer>(std::move(sp));
}

}  // namespace solar::tokenizer
