// libFuzzer target: any byte string handed to the safetensors parser must end
// in views inside the buffer or a solar::Error, never a crash or a hang.
#include <cstdint>
#include <cstdlib>

#include "core/error.h"
#include "formats/safetensors.h"
#include "models.h"

namespace solar::fuzz {

void write_seeds(const std::string& dir) {
  std::filesystem::copy_file(tiny_hf_model(scratch() + "/model") + "/model.safetensors", dir + "/tiny.safetensors",
                             std::filesystem::copy_options::overwrite_existing);
}

}  // namespace solar::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    std::map<std::string, std::string> meta;
    for (const auto& t : solar::formats::parse_safetensors(data, size, "fuzz", &meta)) {
      auto* p = static_cast<const uint8_t*>(t.data);
      if (p < data + 8 || p + t.nbytes > data + size) std::abort();
      if (t.nbytes != solar::tensor_bytes(t)) std::abort();
      if (t.nbytes) (void)(p[0] + p[t.nbytes - 1]);  // ASan checks the view is readable
    }
  } catch (const solar::Error&) {
  }
  return 0;
}
