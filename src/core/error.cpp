#include "core/error.h"

#include <cctype>
#include <cstdint>

namespace solar {

void fail(const std::string& file, const std::string& field, const std::string& msg) {
  std::string s = file;
  if (!field.empty()) s += (s.empty() ? "" : ": ") + field;
  s += (s.empty() ? "" : ": ") + msg;
  bool flag = file.size() > 1 && file[0] == '-' && (file[1] == '-' || std::isalpha(uint8_t(file[1])));
  if (flag) throw UsageError(s);
  throw Error(s);
}

}  // namespace solar
