// solar/data/loader.h — batches of token windows from a `solar tokenize` folder.
//
// Training batches are a pure function of (seed, index): each row is a window
// of T+1 tokens at a position drawn from a hash of (seed, index, row), with
// shards weighted by how many windows they hold. The loader keeps no cursor,
// so resuming at step s needs nothing but s — and shards stay memory-mapped,
// never read whole. Validation walks the val shard sequentially in
// non-overlapping windows, the same ones every time, so val losses compare
// across evaluations and runs.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/shard.h"

namespace solar::data {

class Loader {
 public:
  // Opens dir/train-*.bin and dir/val-*.bin (the val split may be absent:
  // has_val() is then false). Throws if there are no train shards, the shards
  // disagree on vocab, or no shard holds one window of T+1 tokens.
  Loader(const std::string& dir, int batch, int seq_len, uint64_t seed);

  const ShardInfo& info() const { return info_; }
  uint64_t train_tokens() const { return train_tokens_; }
  uint64_t val_tokens() const { return val_tokens_; }
  bool has_val() const { return val_windows() > 0; }

  // B rows of T+1 tokens for micro-batch number `index` (= step * grad_accum
  // + micro): the same tokens for the same (seed, index), whatever ran before.
  void batch(uint64_t index, int32_t* out) const;
  // Validation batch number i (0, 1, …): rows are consecutive windows of the
  // val split at stride T, wrapping around when the split is short.
  void val_batch(uint64_t i, int32_t* out) const;
  // Windows the val split holds without wrapping.
  uint64_t val_windows() const;

 private:
  int B_, T_;
  uint64_t seed_;
  ShardInfo info_;
  std::vector<Shard> train_, val_;
  std::vector<uint64_t> cum_windows_;  // prefix sums of train windows per shard
  uint64_t train_tokens_ = 0, val_tokens_ = 0;
};

}  // namespace solar::data
