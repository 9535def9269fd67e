#include "data/loader.h"

#include <algorithm>
#include <tuple>

#include "core/error.h"
#include "core/fs.h"
#include "core/rng.h"

namespace solar::data {

Loader::Loader(const std::string& dir, int batch, int seq_len, uint64_t seed) : B_(batch), T_(seq_len), seed_(seed) {
  if (batch <= 0) fail("--batch-size", "", "expected > 0, got " + std::to_string(batch));
  if (seq_len <= 0) fail("--seq-len", "", "expected > 0, got " + std::to_string(seq_len));
  if (!is_dir(dir)) fail(dir, "", "not a folder (expected the output of `solar tokenize`)");
  auto train = list_shards(dir, "train");
  if (train.empty()) fail(dir, "", "no train-NNNNN.bin shards (expected the output of `solar tokenize`)");
  for (auto& p : train) train_.push_back(Shard::open(p));
  for (auto& p : list_shards(dir, "val")) val_.push_back(Shard::open(p));
  info_ = train_[0].info();
  uint64_t cum = 0;
  for (auto* set : {&train_, &val_})
    for (auto& s : *set) {
      for (auto [field, mine, first] : {std::tuple{"vocab_size", s.info().vocab_size, info_.vocab_size},
                                        {"bos", s.info().bos, info_.bos}, {"eos", s.info().eos, info_.eos}})
        if (mine != first)
          fail(s.path(), field,
               "expected " + std::to_string(first) + " like " + train_[0].path() + ", got " + std::to_string(mine));
      (set == &train_ ? train_tokens_ : val_tokens_) += s.size();
    }
  for (auto& s : train_) {
    cum += s.size() > uint64_t(T_) ? s.size() - T_ : 0;
    cum_windows_.push_back(cum);
  }
  if (cum == 0)
    fail(dir, "train", "corpus too small: no train shard holds one window of seq_len+1 = " + std::to_string(T_ + 1) +
                           " tokens (" + std::to_string(train_tokens_) + " tokens in all)");
}

void Loader::batch(uint64_t index, int32_t* out) const {
  uint64_t total = cum_windows_.back();
  for (int r = 0; r < B_; r++) {
    uint64_t w = splitmix64(seed_ ^ splitmix64(index * uint64_t(B_) + uint64_t(r))) % total;
    size_t s = std::upper_bound(cum_windows_.begin(), cum_windows_.end(), w) - cum_windows_.begin();
    uint64_t start = w - (s ? cum_windows_[s - 1] : 0);
    train_[s].read(start, size_t(T_) + 1, out + size_t(r) * (T_ + 1));
  }
}

uint64_t Loader::val_windows() const {
  uint64_t n = 0;
  for (auto& s : val_) n += s.size() > uint64_t(T_) ? (s.size() - 1) / T_ : 0;
  return n;
}

void Loader::val_batch(uint64_t i, int32_t* out) const {
  uint64_t total = val_windows();
  if (total == 0)
    fail("val", "", "validation split too small: no window of seq_len+1 = " + std::to_string(T_ + 1) + " tokens (" +
                        std::to_string(val_tokens_) + " tokens)");
  for (int r = 0; r < B_; r++) {
    uint64_t w = (i * uint64_t(B_) + uint64_t(r)) % total;
    for (auto& s : val_) {
      uint64_t n = s.size() > uint64_t(T_) ? (s.size() - 1) / T_ : 0;
      if (w < n) {
        s.read(w * T_, size_t(T_) + 1, out + size_t(r) * (T_ + 1));
        break;
      }
      w -= n;
    }
  }
}

}  // namespace solar::data
