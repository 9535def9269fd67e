// solar/data/shard.h — token shards: tokenized corpora ready to train on.
//
// A shard is one file, little-endian, a 36-byte header then the tokens:
//   offset  size  field
//        0     8  magic "SOLTOK01"
//        8     4  u32 version = 1
//       12     4  u32 dtype: bytes per token, 2 (u16, when vocab_size <= 65535) or 4 (u32)
//       16     8  u64 token count
//       24     4  u32 vocab_size
//       28     4  u32 bos id
//       32     4  u32 eos id
//       36     …  token count × dtype bytes
// Documents are stored back to back, each wrapped as BOS … EOS. Readers map
// the file and never load it whole; open() checks the header, the exact file
// size and that every id, bos and eos included, is below vocab_size, so
// training never meets a bad id.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/mmap.h"

namespace solar::data {

constexpr char kShardMagic[8] = {'S', 'O', 'L', 'T', 'O', 'K', '0', '1'};
constexpr uint32_t kShardVersion = 1;
constexpr size_t kShardHeaderBytes = 36;

struct ShardInfo {
  uint32_t vocab_size = 0, bos = 1, eos = 2;
};

// Bytes per token for a vocabulary: 2 when every id fits in u16, else 4.
uint32_t shard_dtype_for(uint32_t vocab_size);

// Writes a whole shard atomically. Throws if an id (bos, eos included) is >= info.vocab_size.
void write_shard(const std::string& path, const ShardInfo& info, const std::vector<uint32_t>& tokens);

class Shard {
 public:
  // Maps and validates; throws solar::Error "<path>: <field>: expected …".
  static Shard open(const std::string& path);

  const std::string& path() const { return file_->path(); }
  const ShardInfo& info() const { return info_; }
  uint64_t size() const { return count_; }
  uint32_t at(uint64_t i) const;
  // Copies tokens [start, start+n) into out; start+n must be <= size().
  void read(uint64_t start, size_t n, int32_t* out) const;

 private:
  std::shared_ptr<MappedFile> file_;
  ShardInfo info_;
  uint64_t count_ = 0;
  uint32_t dtype_ = 2;
  const uint8_t* tokens_ = nullptr;
};

// The shards "<prefix>-NNNNN.bin" in dir, sorted; empty if there are none.
std::vector<std::string> list_shards(const std::string& dir, const std::string& prefix);

}  // namespace solar::data
