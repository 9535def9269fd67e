// Temporary stub so the skeleton links; deleted when formats/llama2c.cpp lands.
#include "core/error.h"
#include "formats/llama2c.h"
namespace solar {
Checkpoint read_llama2c(const std::string& p) { fail(p, "", "not implemented yet"); }
}  // namespace solar
