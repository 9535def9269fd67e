#include "formats/safetensors.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <random>

#include "core/error.h"
#include "core/fs.h"

namespace solar::formats {
namespace {

std::string tmp_path(const std::string& name) {
  std::string d = ::testing::TempDir() + "solar_st_" + std::to_string(getpid());
  make_dirs(d);
  return join_path(d, name);
}

// A file image: u64 length (or `len` when given), header text, data bytes.
std::string image(const std::string& header, size_t data_bytes, int64_t len = -1) {
  std::string s(8, '\0');
  uint64_t n = len < 0 ? header.size() : uint64_t(len);
  for (int i = 0; i < 8; ++i) s[i] = char(n >> (8 * i) & 0xff);
  return s + header + std::string(data_bytes, '\x01');
}

// The parse error for `img`, or "" when it parsed.
std::string parse_error(const std::string& img) {
  try {
    parse_safetensors(reinterpret_cast<const uint8_t*>(img.data()), img.size(), "bad.safetensors");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Safetensors, RoundTripKeepsNamesDtypesShapesBytes) {
  std::mt19937 rng(7);
  std::vector<std::vector<uint8_t>> bufs;
  std::vector<TensorToWrite> ts;
  auto add = [&](const char* name, DType dt, std::vector<int64_t> shape) {
    TensorView t{name, dt, shape};
    bufs.emplace_back(tensor_bytes(t));
    for (auto& b : bufs.back()) b = uint8_t(rng());
    t.data = bufs.back().data();
    t.nbytes = bufs.back().size();
    ts.push_back({t, dt});
  };
  add("z.first", DType::F32, {3, 5});
  add("a.second", DType::BF16, {7});
  add("ids", DType::I64, {2, 2});
  add("empty", DType::U8, {0, 4});
  add("scalar", DType::I8, {});
  add("half", DType::F16, {1, 3, 2});
  std::string p = tmp_path("rt.safetensors");
  write_safetensors(p, ts, {{"format", "pt"}, {"note", "x"}});

  SafetensorsFile f = read_safetensors(p);
  EXPECT_EQ(f.file->size(), safetensors_file_size(ts, {{"format", "pt"}, {"note", "x"}}));
  uint64_t hlen = 0;
  std::memcpy(&hlen, f.file->data(), 8);
  EXPECT_EQ(hlen % 8, 0u) << "header padded so the data block is 8-byte aligned";
  EXPECT_EQ(f.metadata.at("format"), "pt");
  EXPECT_EQ(f.metadata.at("note"), "x");
  ASSERT_EQ(f.tensors.size(), ts.size());
  for (size_t i = 0; i < ts.size(); ++i) {  // written in given order = data-offset order
    const TensorView& got = f.tensors[i];
    EXPECT_EQ(got.name, ts[i].src.name);
    EXPECT_EQ(got.dtype, ts[i].src.dtype);
    EXPECT_EQ(got.shape, ts[i].src.shape);
    ASSERT_EQ(got.nbytes, ts[i].src.nbytes);
    if (got.nbytes)  // empty tensors may have null data; memcmp(nullptr, …, 0) is UB
      EXPECT_EQ(std::memcmp(got.data, ts[i].src.data, got.nbytes), 0) << got.name;
  }
  // Byte-exact golden header for a one-tensor file.
  std::vector<float> one{1.0f, -2.0f};
  write_safetensors(p, {{TensorView{"w", DType::F32, {2}, one.data(), 8}, DType::F32}});
  std::string bytes = read_file(p);
  std::string js = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  js.append((8 - js.size() % 8) % 8, ' ');
  EXPECT_EQ(bytes.substr(8, js.size()), js);
  EXPECT_EQ(bytes.size(), 8 + js.size() + 8);
}

TEST(Safetensors, F32ToBF16ToF32WithinRounding) {
  // More elements than one conversion chunk, so chunk boundaries are crossed.
  const size_t n = (1 << 20) + 1234;
  std::vector<float> x(n);
  std::mt19937 rng(1);
  std::normal_distribution<float> nd(0, 3);
  for (auto& v : x) v = nd(rng);
  x[0] = 0, x[1] = 1e-30f, x[2] = -65504.f, x[3] = INFINITY;
  std::string p = tmp_path("bf16.safetensors"), p2 = tmp_path("back.safetensors");
  write_safetensors(p, {{TensorView{"x", DType::F32, {int64_t(n)}, x.data(), n * 4}, DType::BF16}});
  SafetensorsFile f = read_safetensors(p);
  ASSERT_EQ(f.tensors[0].dtype, DType::BF16);
  ASSERT_EQ(f.tensors[0].nbytes, n * 2);
  write_safetensors(p2, {{f.tensors[0], DType::F32}});
  SafetensorsFile g = read_safetensors(p2);
  const float* y = static_cast<const float*>(g.tensors[0].data);
  for (size_t i = 0; i < n; ++i) {
    ASSERT_EQ(y[i], bf16_to_f32(f32_to_bf16(x[i]))) << i;  // round to nearest even, exactly
    if (std::isfinite(x[i])) {
      ASSERT_LE(std::fabs(y[i] - x[i]), std::fabs(x[i]) * (1.0f / 256)) << i;
    }
  }
  EXPECT_TRUE(std::isinf(y[3]));
}

TEST(Safetensors, BadInputsNameFileAndField) {
  auto T = [](const std::string& body) { return "{" + body + "}"; };
  std::string ok = R"("w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  struct Case {
    const char* what;
    std::string img, field;
  } cases[] = {
      {"shorter than 8 bytes", "abc", "header.len"},
      {"header length past EOF", image(T(ok), 8, 4000), "header.len"},
      {"absurd header length", image(T(ok), 8, int64_t(1) << 60), "header.len"},
      {"invalid JSON", image("{\"w\": {", 8), "header"},
      {"not an object", image("[1, 2]", 8), "header"},
      {"entry not an object", image(T(R"("w": 5)"), 8), "w"},
      {"missing dtype", image(T(R"("w":{"shape":[2],"data_offsets":[0,8]})"), 8), "w: dtype"},
      {"dtype not a string", image(T(R"("w":{"dtype":7,"shape":[2],"data_offsets":[0,8]})"), 8), "w: dtype"},
      {"unknown dtype", image(T(R"("w":{"dtype":"F64","shape":[1],"data_offsets":[0,8]})"), 8), "w: dtype"},
      {"torch spelling is not safetensors", image(T(R"("w":{"dtype":"float32","shape":[2],"data_offsets":[0,8]})"), 8), "w: dtype"},
      {"missing shape", image(T(R"("w":{"dtype":"F32","data_offsets":[0,8]})"), 8), "w: shape"},
      {"shape not a list", image(T(R"("w":{"dtype":"F32","shape":"2","data_offsets":[0,8]})"), 8), "w: shape"},
      {"shape of strings", image(T(R"("w":{"dtype":"F32","shape":["2"],"data_offsets":[0,8]})"), 8), "w: shape"},
      {"fractional dim", image(T(R"("w":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]})"), 8), "w: shape"},
      {"negative dim", image(T(R"("w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]})"), 8), "w: shape"},
      {"overflowing shape", image(T(R"("w":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,8]})"), 8), "w: shape"},
      {"shape x dtype != bytes", image(T(R"("w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]})"), 8), "w: shape"},
      {"missing data_offsets", image(T(R"("w":{"dtype":"F32","shape":[2]})"), 8), "w: data_offsets"},
      {"data_offsets wrong type", image(T(R"("w":{"dtype":"F32","shape":[2],"data_offsets":"0-8"})"), 8), "w: data_offsets"},
      {"data_offsets one number", image(T(R"("w":{"dtype":"F32","shape":[2],"data_offsets":[8]})"), 8), "w: data_offsets"},
      {"negative offset", image(T(R"("w":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]})"), 8), "w: data_offsets"},
      {"begin > end", image(T(R"("w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]})"), 8), "w: data_offsets"},
      {"past the data block", image(T(R"("w":{"dtype":"F32","shape":[2],"data_offsets":[4,12]})"), 8), "w: data_offsets"},
      {"overlap", image(T(R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]})"), 12), "b: data_offsets: overlaps tensor 'a'"},
      {"duplicate name", image(T(ok + "," + ok), 8), "w: duplicate"},
      {"metadata not an object", image(T(ok + R"(,"__metadata__":[1])"), 8), "__metadata__"},
      {"metadata value not a string", image(T(ok + R"(,"__metadata__":{"k":1})"), 8), "__metadata__.k"},
  };
  for (const auto& c : cases) {
    std::string err = parse_error(c.img);
    EXPECT_NE(err.find("bad.safetensors: "), std::string::npos) << c.what << ": " << err;
    EXPECT_NE(err.find(c.field), std::string::npos) << c.what << ": expected field '" << c.field << "' in: " << err;
  }
  // The good variant of the same image parses, so the cases fail for their reason only.
  EXPECT_EQ(parse_error(image(T(ok), 8)), "");
}

TEST(Safetensors, ReadFileErrorsNameThePath) {
  std::string p = tmp_path("trunc.safetensors");
  write_file_atomic(p, image(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 4));
  try {
    read_safetensors(p);
    FAIL() << "truncated file accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(p + ": w: data_offsets"), std::string::npos) << e.what();
  }
  EXPECT_THROW(read_safetensors(tmp_path("does-not-exist.safetensors")), Error);
}

TEST(Safetensors, EdgeCasesThatAreValid) {
  // Empty tensors may share an offset; unused bytes between tensors are allowed;
  // header padded with spaces; tensors come back in data order.
  std::string h = R"({"b":{"dtype":"I32","shape":[1],"data_offsets":[8,12]},"e1":{"dtype":"F32","shape":[0],"data_offsets":[4,4]},)"
                  R"("e2":{"dtype":"BF16","shape":[3,0],"data_offsets":[4,4]},"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}   )";
  std::string img = image(h, 12);
  auto ts = parse_safetensors(reinterpret_cast<const uint8_t*>(img.data()), img.size(), "ok");
  ASSERT_EQ(ts.size(), 4u);
  EXPECT_EQ(ts[0].name, "a");
  EXPECT_EQ(ts.back().name, "b");
  EXPECT_EQ(ts.back().data, img.data() + 8 + h.size() + 8);
  EXPECT_EQ(parse_error(image("{}", 0)), "");
}

TEST(Safetensors, WriterRejectsDuplicatesAndWrongSizes) {
  float v[2] = {1, 2};
  TensorView t{"w", DType::F32, {2}, v, 8};
  EXPECT_THROW(write_safetensors(tmp_path("dup.safetensors"), {{t, DType::F32}, {t, DType::F32}}), Error);
  TensorView bad{"w", DType::F32, {3}, v, 8};
  EXPECT_THROW(write_safetensors(tmp_path("size.safetensors"), {{bad, DType::F32}}), Error);
  EXPECT_FALSE(path_exists(tmp_path("size.safetensors")));
  int32_t i[2] = {1, 2};
  EXPECT_THROW(write_safetensors(tmp_path("int.safetensors"), {{TensorView{"i", DType::I32, {2}, i, 8}, DType::BF16}}), Error);
}

}  // namespace
}  // namespace solar::formats
