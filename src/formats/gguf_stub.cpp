// Temporary stub so the skeleton links; deleted when formats/gguf.cpp lands.
#include "core/error.h"
#include "formats/gguf.h"
namespace solar {
Checkpoint read_gguf(const std::string& p) { fail(p, "", "not implemented yet"); }
}  // namespace solar
