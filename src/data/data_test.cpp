#include <gtest/gtest.h>

#include <unistd.h>

#include <cstring>
#include <functional>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "testing/testing.h"
#include "core/error.h"
#include "core/fs.h"
#include "data/loader.h"
#include "data/shard.h"

namespace fs = std::filesystem;
using namespace solar;
using namespace solar::data;

namespace {
using solar::testing::error_of;
using solar::testing::temp_dir;


std::vector<uint32_t> ramp(size_t n, uint32_t vocab) {
  std::vector<uint32_t> t(n);
  for (size_t i = 0; i < n; i++) t[i] = uint32_t((i * 7919u) % vocab);
  return t;
}

void patch(const std::string& path, size_t off, const void* bytes, size_t n) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(std::streamoff(off));
  f.write(static_cast<const char*>(bytes), std::streamsize(n));
}

}  // namespace

TEST(DataShard, RoundTripU16AndU32) {
  auto d = temp_dir("data_test_rt");
  for (uint32_t vocab : {512u, 65535u, 65536u, 200000u}) {
    auto toks = ramp(10007, vocab);
    toks[0] = vocab - 1;
    std::string p = d + "/s.bin";
    write_shard(p, {vocab, 3, 4}, toks);
    EXPECT_EQ(fs::file_size(p), kShardHeaderBytes + toks.size() * shard_dtype_for(vocab));
    Shard s = Shard::open(p);
    EXPECT_EQ(s.size(), toks.size());
    EXPECT_EQ(s.info().vocab_size, vocab);
    EXPECT_EQ(s.info().bos, 3u);
    EXPECT_EQ(s.info().eos, 4u);
    std::vector<int32_t> back(toks.size());
    s.read(0, toks.size(), back.data());
    for (size_t i = 0; i < toks.size(); i++) ASSERT_EQ(uint32_t(back[i]), toks[i]) << "vocab " << vocab << " i " << i;
  }
  EXPECT_EQ(shard_dtype_for(65535), 2u);
  EXPECT_EQ(shard_dtype_for(65536), 4u);
  fs::remove_all(d);
}

TEST(DataShard, HeaderBytesAreTheDocumentedLayout) {
  auto d = temp_dir("data_test_layout");
  std::string p = d + "/s.bin";
  write_shard(p, {300, 1, 2}, {1, 299, 2});
  std::string b = read_file(p);
  ASSERT_EQ(b.size(), 36u + 6u);
  EXPECT_EQ(b.substr(0, 8), "SOLTOK01");
  uint32_t u32;
  uint64_t u64;
  std::memcpy(&u32, b.data() + 8, 4); EXPECT_EQ(u32, 1u);
  std::memcpy(&u32, b.data() + 12, 4); EXPECT_EQ(u32, 2u);
  std::memcpy(&u64, b.data() + 16, 8); EXPECT_EQ(u64, 3u);
  std::memcpy(&u32, b.data() + 24, 4); EXPECT_EQ(u32, 300u);
  uint16_t t;
  std::memcpy(&t, b.data() + 38, 2); EXPECT_EQ(t, 299);
  fs::remove_all(d);
}

TEST(DataShard, RejectsBadInputWithOneClearLine) {
  auto d = temp_dir("data_test_bad");
  std::string p = d + "/s.bin";
  auto fresh = [&] { write_shard(p, {100, 1, 2}, ramp(50, 100)); };
  fresh();
  fs::resize_file(p, fs::file_size(p) - 1);
  EXPECT_NE(error_of([&] { Shard::open(p); }).find("token_count"), std::string::npos);
  fs::resize_file(p, 10);
  EXPECT_NE(error_of([&] { Shard::open(p); }).find("truncated"), std::string::npos);
  fresh();
  patch(p, 0, "XOLTOK01", 8);
  EXPECT_NE(error_of([&] { Shard::open(p); }).find("magic"), std::string::npos);
  fresh();
  uint32_t v = 2;
  patch(p, 8, &v, 4);
  EXPECT_NE(error_of([&] { Shard::open(p); }).find("version: expected 1, got 2"), std::string::npos);
  fresh();
  v = 3;
  patch(p, 12, &v, 4);
  EXPECT_NE(error_of([&] { Shard::open(p); }).find("dtype"), std::string::npos);
  fresh();
  uint16_t big = 100;  // == vocab_size: out of range
  patch(p, kShardHeaderBytes + 2 * 17, &big, 2);
  std::string e = error_of([&] { Shard::open(p); });
  EXPECT_NE(e.find("tokens[17]: expected id < vocab_size 100, got 100"), std::string::npos) << e;
  EXPECT_NE(error_of([&] { write_shard(p, {100, 1, 2}, {5, 100}); }).find("tokens[1]"), std::string::npos);
  EXPECT_FALSE(path_exists(p + ".tmp-" + std::to_string(getpid())));  // failed writes leave no temporary
  EXPECT_NE(error_of([&] { Shard::open(d + "/missing.bin"); }).find("missing.bin"), std::string::npos);
  fs::remove_all(d);
}

// bos/eos become the trained model's bos_token_id/eos_token_id: an eos of
// 2^32-1 (a tokenizer without one, cast) once reached config.json as -1.
TEST(DataShard, SpecialIdsOutsideTheVocabularyAreRefused) {
  auto d = temp_dir("data_test_specials");
  std::string p = d + "/train-00000.bin";
  write_shard(p, {100, 1, 2}, ramp(50, 100));
  for (auto [off, field] : {std::pair{32, "eos"}, {28, "bos"}}) {
    for (uint32_t bad : {0xFFFFFFFFu, 100u}) {
      write_shard(p, {100, 1, 2}, ramp(50, 100));
      patch(p, size_t(off), &bad, 4);
      std::string e = error_of([&] { Shard::open(p); });
      EXPECT_NE(e.find(p + ": " + field + ": expected a token id < vocab_size 100, got " + std::to_string(bad)),
                std::string::npos) << e;
      EXPECT_NE(error_of([&] { Loader(d, 1, 8, 1); }).find(field), std::string::npos);
    }
  }
  EXPECT_NE(error_of([&] { write_shard(p, {100, 1, 0xFFFFFFFFu}, ramp(50, 100)); }).find("eos: expected"),
            std::string::npos);
  // Shards of one folder must agree on the specials, as on vocab_size.
  write_shard(p, {100, 1, 2}, ramp(50, 100));
  write_shard(d + "/val-00000.bin", {100, 1, 3}, ramp(50, 100));
  EXPECT_NE(error_of([&] { Loader(d, 1, 8, 1); }).find("val-00000.bin: eos: expected 2 like"), std::string::npos);
  fs::remove_all(d);
}

TEST(DataShard, ListShardsIgnoresTemporariesAndSorts) {
  auto d = temp_dir("data_test_list");
  for (auto n : {"train-00001.bin", "train-00000.bin", "train-00002.bin.tmp-12", "val-00000.bin", "train-x.bin"})
    std::ofstream(d + "/" + n) << "";
  auto l = list_shards(d, "train");
  ASSERT_EQ(l.size(), 2u);
  EXPECT_EQ(base_name(l[0]), "train-00000.bin");
  EXPECT_EQ(base_name(l[1]), "train-00001.bin");
  fs::remove_all(d);
}

TEST(DataLoader, DeterministicInBoundsAndCoversShards) {
  auto d = temp_dir("data_test_loader");
  // Token i of shard k is (k*1000 + i) % 997: windows are identifiable.
  std::vector<std::vector<uint32_t>> shards(3);
  size_t sizes[] = {400, 50, 900};
  for (int k = 0; k < 3; k++) {
    for (size_t i = 0; i < sizes[k]; i++) shards[k].push_back(uint32_t((k * 1000 + i) % 997));
    write_shard(d + "/train-0000" + std::to_string(k) + ".bin", {997, 1, 2}, shards[k]);
  }
  write_shard(d + "/val-00000.bin", {997, 1, 2}, ramp(100, 997));
  const int B = 4, T = 64;
  Loader a(d, B, T, 42), b(d, B, T, 42), c(d, B, T, 43);
  EXPECT_EQ(a.train_tokens(), 1350u);
  std::vector<int32_t> x(B * (T + 1)), y(x.size()), z(x.size());
  std::set<int> shards_seen;
  bool differs = false;
  for (uint64_t idx = 0; idx < 200; idx++) {
    a.batch(idx, x.data());
    b.batch(idx, y.data());
    c.batch(idx, z.data());
    ASSERT_EQ(x, y);
    differs |= x != z;
    for (int r = 0; r < B; r++) {
      const int32_t* w = &x[r * (T + 1)];
      // Find the window in a shard: consecutive tokens must match exactly.
      bool found = false;
      for (int k = 0; k < 3 && !found; k++)
        for (size_t s = 0; s + T + 1 <= sizes[k] && !found; s++)
          if (std::equal(w, w + T + 1, shards[k].begin() + s, [](int32_t p, uint32_t q) { return uint32_t(p) == q; }))
            found = true, shards_seen.insert(k);
      ASSERT_TRUE(found) << "batch " << idx << " row " << r << " is not a window of any shard";
    }
  }
  EXPECT_TRUE(differs) << "seed does not change the batches";
  EXPECT_EQ(shards_seen, (std::set<int>{0, 2}));  // shard 1 (50 tokens) holds no window of 65
  // Out of order access gives the same batch (resume needs nothing but the index).
  a.batch(7, x.data());
  Loader fresh(d, B, T, 42);
  fresh.batch(7, y.data());
  EXPECT_EQ(x, y);
  fs::remove_all(d);
}

TEST(DataLoader, ValidationIsSequentialAndWraps) {
  auto d = temp_dir("data_test_val");
  write_shard(d + "/train-00000.bin", {1000, 1, 2}, ramp(500, 1000));
  std::vector<uint32_t> v(100);
  for (size_t i = 0; i < v.size(); i++) v[i] = uint32_t(i);
  write_shard(d + "/val-00000.bin", {1000, 1, 2}, v);
  Loader l(d, 2, 16, 1);
  EXPECT_EQ(l.val_windows(), 6u);  // starts 0, 16, …, 80 (80+17 <= 100)
  std::vector<int32_t> x(2 * 17);
  l.val_batch(0, x.data());
  EXPECT_EQ(x[0], 0); EXPECT_EQ(x[16], 16); EXPECT_EQ(x[17], 16); EXPECT_EQ(x[33], 32);
  l.val_batch(3, x.data());  // windows 6, 7 wrap to 0, 1
  EXPECT_EQ(x[0], 0); EXPECT_EQ(x[17], 16);
  fs::remove_all(d);
}

TEST(DataLoader, ClearErrors) {
  auto d = temp_dir("data_test_lerr");
  EXPECT_NE(error_of([&] { Loader(d, 2, 16, 1); }).find("no train-NNNNN.bin"), std::string::npos);
  write_shard(d + "/train-00000.bin", {1000, 1, 2}, ramp(10, 1000));
  EXPECT_NE(error_of([&] { Loader(d, 2, 16, 1); }).find("corpus too small"), std::string::npos);
  write_shard(d + "/train-00000.bin", {1000, 1, 2}, ramp(100, 1000));
  write_shard(d + "/val-00000.bin", {999, 1, 2}, ramp(100, 999));
  EXPECT_NE(error_of([&] { Loader(d, 2, 16, 1); }).find("vocab_size"), std::string::npos);
  EXPECT_NE(error_of([&] { Loader(d, 0, 16, 1); }).find("--batch-size"), std::string::npos);
  fs::remove_all(d);
}

namespace {
// Runs `solar tokenize …`; returns the exit code, output in *log.
int tokenize(const std::string& args, std::string* log) {
  std::string out = (fs::temp_directory_path() / ("solar_tok_log_" + std::to_string(getpid()))).string();
  int rc = std::system((std::string(SOLAR_BIN) + " tokenize " + args + " > " + out + " 2>&1").c_str());
  *log = read_file(out);
  fs::remove(out);
  return WEXITSTATUS(rc);
}
}  // namespace

TEST(DataTokenize, FolderAndJsonlToShardsDeterministically) {
  std::string tok = std::string(SOLAR_SHARED_DATA) + "/models/stories260K/tok512.bin";
  if (!path_exists(tok)) GTEST_SKIP() << "shared data absent: " << tok;
  auto d = temp_dir("data_test_tokcli");
  make_dirs(d + "/in/sub");
  std::string para;
  for (int i = 0; i < 40; i++) para += "Once upon a time there was a cat number " + std::to_string(i) + ".\n\n";
  std::ofstream(d + "/in/a.txt") << para;
  std::ofstream(d + "/in/sub/b.jsonl") << "{\"text\": \"The dog ran home.\"}\n\n{\"text\": \"It was sunny.\", \"id\": 2}\n";
  std::string log;
  std::string common = " -m " + tok + " -i " + d + "/in --shard-tokens 300 --val-fraction 0.1";
  ASSERT_EQ(tokenize(common + " -o " + d + "/o1", &log), 0) << log;
  ASSERT_EQ(tokenize(common + " -o " + d + "/o2", &log), 0) << log;
  auto meta = nlohmann::json::parse(read_file(d + "/o1/meta.json"));
  EXPECT_EQ(meta["vocab_size"], 512);
  EXPECT_EQ(meta["train_docs"].get<int>() + meta["val_docs"].get<int>(), 42);
  EXPECT_GT(meta["val_docs"].get<int>(), 1);
  EXPECT_GT(meta["train_shards"].size(), 1u);  // 300-token shards
  uint64_t total = 0, bos = 0, eos = 0;
  for (auto& p : list_shards(d + "/o1", "train")) {
    EXPECT_EQ(read_file(p), read_file(d + "/o2/" + base_name(p)));  // same input, same bytes
    Shard s = Shard::open(p);
    total += s.size();
    for (uint64_t i = 0; i < s.size(); i++) bos += s.at(i) == 1, eos += s.at(i) == 2;
  }
  EXPECT_EQ(total, meta["train_tokens"].get<uint64_t>());
  EXPECT_EQ(bos, meta["train_docs"].get<uint64_t>());
  EXPECT_EQ(eos, bos);
  EXPECT_EQ(Shard::open(d + "/o1/train-00000.bin").at(0), 1u);  // BOS first
  // Errors: existing output, empty corpus, one document, missing JSONL field, too short for a sequence.
  EXPECT_EQ(tokenize(common + " -o " + d + "/o1", &log), 1);
  EXPECT_NE(log.find("already exists"), std::string::npos) << log;
  std::ofstream(d + "/blank.txt") << "  \n\n \n";
  EXPECT_EQ(tokenize(" -m " + tok + " -i " + d + "/blank.txt -o " + d + "/o3", &log), 1);
  EXPECT_NE(log.find("empty corpus"), std::string::npos) << log;
  std::ofstream(d + "/one.txt") << "Just one paragraph here.";
  EXPECT_EQ(tokenize(" -m " + tok + " -i " + d + "/one.txt -o " + d + "/o3", &log), 1);
  EXPECT_NE(log.find("at least 2 documents"), std::string::npos) << log;
  std::ofstream(d + "/bad.jsonl") << "{\"content\": \"x\"}\n";
  EXPECT_EQ(tokenize(" -m " + tok + " -i " + d + "/bad.jsonl -o " + d + "/o3", &log), 1);
  EXPECT_NE(log.find("bad.jsonl:1: text: expected a string field"), std::string::npos) << log;
  EXPECT_EQ(tokenize(common + " --seq-len 100000 -o " + d + "/o3", &log), 1);
  EXPECT_NE(log.find("too few tokens for one sequence"), std::string::npos) << log;
  EXPECT_FALSE(path_exists(d + "/o3"));
  fs::remove_all(d);
}
