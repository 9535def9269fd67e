#include "data/shard.h"

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "core/fs.h"

namespace solar::data {

uint32_t shard_dtype_for(uint32_t vocab_size) { return vocab_size <= 65535 ? 2 : 4; }

namespace {
template <class T>
void put(std::string& s, T v) {
  s.append(reinterpret_cast<const char*>(&v), sizeof v);
}
template <class T>
T get(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
}  // namespace

namespace {
// bos and eos become the trained model's bos_token_id / eos_token_id: ids of its vocabulary.
void check_specials(const std::string& path, const ShardInfo& info) {
  if (info.vocab_size == 0) fail(path, "vocab_size", "expected > 0, got 0");
  for (auto [name, id] : {std::pair{"bos", info.bos}, {"eos", info.eos}})
    if (id >= info.vocab_size)
      fail(path, name, "expected a token id < vocab_size " + std::to_string(info.vocab_size) + ", got " + std::to_string(id));
}
}  // namespace

void write_shard(const std::string& path, const ShardInfo& info, const std::vector<uint32_t>& tokens) {
  check_specials(path, info);
  uint32_t dt = shard_dtype_for(info.vocab_size);
  std::string h(kShardMagic, 8);
  put(h, kShardVersion);
  put(h, dt);
  put(h, uint64_t(tokens.size()));
  put(h, info.vocab_size);
  put(h, info.bos);
  put(h, info.eos);
  AtomicFile f(path);
  f.write(h);
  std::vector<uint8_t> buf;
  const size_t chunk = 1 << 20;
  for (size_t i = 0; i < tokens.size(); i += chunk) {
    size_t n = std::min(chunk, tokens.size() - i);
    buf.resize(n * dt);
    for (size_t j = 0; j < n; j++) {
      uint32_t t = tokens[i + j];
      if (t >= info.vocab_size)
        fail(path, "tokens[" + std::to_string(i + j) + "]",
             "expected id < vocab_size " + std::to_string(info.vocab_size) + ", got " + std::to_string(t));
      if (dt == 2) {
        uint16_t v = uint16_t(t);
        std::memcpy(&buf[j * 2], &v, 2);
      } else {
        std::memcpy(&buf[j * 4], &t, 4);
      }
    }
    f.write(buf.data(), buf.size());
  }
  f.commit();
}

Shard Shard::open(const std::string& path) {
  Shard s;
  s.file_ = MappedFile::open(path);
  const uint8_t* p = s.file_->data();
  size_t size = s.file_->size();
  if (size < kShardHeaderBytes)
    fail(path, "header", "expected " + std::to_string(kShardHeaderBytes) + " bytes, got " + std::to_string(size) +
                             " (truncated)");
  if (std::memcmp(p, kShardMagic, 8) != 0) fail(path, "magic", "expected \"SOLTOK01\" (a solar token shard)");
  uint32_t version = get<uint32_t>(p + 8);
  if (version != kShardVersion) fail(path, "version", "expected 1, got " + std::to_string(version));
  s.dtype_ = get<uint32_t>(p + 12);
  s.count_ = get<uint64_t>(p + 16);
  s.info_.vocab_size = get<uint32_t>(p + 24);
  s.info_.bos = get<uint32_t>(p + 28);
  s.info_.eos = get<uint32_t>(p + 32);
  if (s.dtype_ != 2 && s.dtype_ != 4) fail(path, "dtype", "expected 2 (u16) or 4 (u32), got " + std::to_string(s.dtype_));
  check_specials(path, s.info_);
  if (s.dtype_ == 2 && s.info_.vocab_size > 65536)
    fail(path, "dtype", "expected 4 (u32) for vocab_size " + std::to_string(s.info_.vocab_size) + ", got 2");
  uint64_t payload = size - kShardHeaderBytes;
  if (s.count_ > payload / s.dtype_ || payload != s.count_ * s.dtype_)
    fail(path, "token_count",
         "header says " + std::to_string(s.count_) + " tokens (" + std::to_string(s.count_ * s.dtype_) +
             " bytes) but the file holds " + std::to_string(payload) + " bytes after the header (truncated?)");
  s.tokens_ = p + kShardHeaderBytes;
  uint32_t vmax = 0;
  uint64_t imax = 0;
  for (uint64_t i = 0; i < s.count_; i++) {
    uint32_t t = s.at(i);
    if (t > vmax) vmax = t, imax = i;
  }
  if (s.count_ && vmax >= s.info_.vocab_size)
    fail(path, "tokens[" + std::to_string(imax) + "]",
         "expected id < vocab_size " + std::to_string(s.info_.vocab_size) + ", got " + std::to_string(vmax));
  return s;
}

uint32_t Shard::at(uint64_t i) const {
  return dtype_ == 2 ? get<uint16_t>(tokens_ + i * 2) : get<uint32_t>(tokens_ + i * 4);
}

void Shard::read(uint64_t start, size_t n, int32_t* out) const {
  if (start + n > count_)
    fail(path(), "", "read past the end: [" + std::to_string(start) + ", " + std::to_string(start + n) + ") of " +
                         std::to_string(count_) + " tokens");
  for (size_t i = 0; i < n; i++) out[i] = int32_t(at(start + i));
}

std::vector<std::string> list_shards(const std::string& dir, const std::string& prefix) {
  namespace fs = std::filesystem;
  std::vector<std::string> out;
  std::error_code ec;
  for (auto& e : fs::directory_iterator(dir, ec)) {
    std::string n = e.path().filename().string();
    // prefix-NNNNN.bin exactly: temporaries ("….bin.tmp-PID") do not count.
    if (n.size() == prefix.size() + 10 && n.compare(0, prefix.size() + 1, prefix + "-") == 0 &&
        n.ends_with(".bin") && std::all_of(n.begin() + prefix.size() + 1, n.end() - 4, ::isdigit))
      out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace solar::data
