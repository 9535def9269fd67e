// libFuzzer target: a token shard (src/data/shard): open() checks the header,
// the exact size and every id, so whatever opens must read back in range.
#include <vector>

#include "core/error.h"
#include "data/shard.h"
#include "fuzz.h"

namespace solar::fuzz {

void write_seeds(const std::string& dir) {
  std::vector<uint32_t> doc = {1, 5, 6, 7, 2, 1, 9, 2};
  data::write_shard(dir + "/u16.bin", {16, 1, 2}, doc);
  doc.push_back(70000);
  doc.push_back(2);
  data::write_shard(dir + "/u32.bin", {70001, 1, 2}, doc);
}

}  // namespace solar::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string path = solar::fuzz::put("shard.bin", data, size);
  try {
    auto s = solar::data::Shard::open(path);
    for (uint64_t i = 0; i < s.size(); i++)
      if (s.at(i) >= s.info().vocab_size) std::abort();
    std::vector<int32_t> out(s.size());
    if (s.size()) s.read(0, out.size(), out.data());
  } catch (const solar::Error&) {
  }
  return 0;
}
