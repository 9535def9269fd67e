#include "core/error.h"

namespace solar {

void fail(const std::string& file, const std::string& field, const std::string& msg) {
  std::string s = file;
  if (!field.empty()) s += (s.empty() ? "" : ": ") + field;
  s += (s.empty() ? "" : ": ") + msg;
  throw Error(s);
}

}  // namespace solar
