// solar/testing/gguf.h — test helper: GGUF v3 files byte by byte, with any
// metadata and tensors of any GGML type id (solar's writer only writes float
// types), so tests can build quantized and malformed files.
#pragma once
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

namespace solar::testing {

class GgufBuilder {
 public:
  GgufBuilder& u32(const std::string& k, uint32_t v) {
    key(k, 4);
    raw(kv_, v);
    return *this;
  }
  GgufBuilder& boolean(const std::string& k, bool v) {
    key(k, 7);
    raw(kv_, int8_t(v));
    return *this;
  }
  GgufBuilder& string(const std::string& k, const std::string& v) {
    key(k, 8);
    str(kv_, v);
    return *this;
  }
  GgufBuilder& strings(const std::string& k, const std::vector<std::string>& v) {
    array(k, 8, v.size());
    for (const auto& s : v) str(kv_, s);
    return *this;
  }
  template <class T>  // float: array of f32; int32_t: of i32
  GgufBuilder& numbers(const std::string& k, const std::vector<T>& v) {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, int32_t>);
    array(k, std::is_same_v<T, float> ? 6 : 5, v.size());
    for (T x : v) raw(kv_, x);
    return *this;
  }
  // ne innermost first; `data` is stored as given (its size is not checked).
  GgufBuilder& tensor(const std::string& name, uint32_t ggml_type, const std::vector<uint64_t>& ne, const std::string& data) {
    str(infos_, name);
    raw(infos_, uint32_t(ne.size()));
    for (uint64_t e : ne) raw(infos_, e);
    raw(infos_, ggml_type);
    raw(infos_, uint64_t(data_.size()));
    data_ += data;
    data_.resize((data_.size() + 31) / 32 * 32, '\0');
    ++n_tensors_;
    return *this;
  }
  std::string bytes() const {
    std::string s = "GGUF";
    raw(s, uint32_t(3));
    raw(s, n_tensors_);
    raw(s, n_kv_);
    s += kv_ + infos_;
    s.resize((s.size() + 31) / 32 * 32, '\0');
    return s + data_;
  }

 private:
  std::string kv_, infos_, data_;
  uint64_t n_kv_ = 0, n_tensors_ = 0;
  template <class T>
  static void raw(std::string& s, T v) { s.append(reinterpret_cast<const char*>(&v), sizeof v); }
  static void str(std::string& s, const std::string& v) {
    raw(s, uint64_t(v.size()));
    s += v;
  }
  void key(const std::string& k, uint32_t type) {
    str(kv_, k);
    raw(kv_, type);
    ++n_kv_;
  }
  void array(const std::string& k, uint32_t elem, size_t n) {
    key(k, 9);
    raw(kv_, elem);
    raw(kv_, uint64_t(n));
  }
};

}  // namespace solar::testing
