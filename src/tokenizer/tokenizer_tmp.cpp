// Placeholder until tokenizer/ lands.
#include "core/error.h"
#include "tokenizer/tokenizer.h"
namespace solar {
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path, int) { fail(path, "", "tokenizer not implemented yet"); }
}  // namespace solar
