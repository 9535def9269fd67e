#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "core/dtype.h"
#include "core/error.h"
#include "testing/testing.h"

using namespace solar;

TEST(DType, Bf16RoundTripAndRounding) {
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(1.0f)), 1.0f);
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(-2.5f)), -2.5f);
  // 1 + 2^-8 is exactly halfway between bf16 1.0 and 1+2^-7: ties to even (1.0).
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(1.0f + 1.0f / 256)), 1.0f);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
}

TEST(DType, F16MatchesKnownValues) {
  EXPECT_EQ(f32_to_f16(1.0f), 0x3c00);
  EXPECT_EQ(f32_to_f16(-2.0f), 0xc000);
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7bff);
  EXPECT_EQ(f32_to_f16(1e6f), 0x7c00);           // overflow -> inf
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  std::mt19937 rng(1);
  for (int i = 0; i < 65536; ++i) {  // every finite half round-trips exactly
    uint16_t h = uint16_t(i);
    if ((h & 0x7c00) == 0x7c00) continue;
    EXPECT_EQ(f32_to_f16(f16_to_f32(h)), h) << i;
  }
}

TEST(DType, ParseNamesAndRejectsUnknown) {
  EXPECT_EQ(parse_dtype("bfloat16"), DType::BF16);
  EXPECT_EQ(parse_dtype("F16"), DType::F16);
  EXPECT_THROW(parse_dtype("Q4_K", "config.json: torch_dtype"), Error);
}

// ---- GGML block types -------------------------------------------------------

TEST(DTypeBlocks, SizesAndGgmlIdsMatchGgml) {
  struct Row {
    DType t;
    int64_t k;
    size_t bytes;
    uint32_t id;
  };
  for (Row r : {Row{DType::Q4_0, 32, 18, 2}, {DType::Q4_1, 32, 20, 3}, {DType::Q5_0, 32, 22, 6},
                {DType::Q5_1, 32, 24, 7}, {DType::Q8_0, 32, 34, 8}, {DType::Q2_K, 256, 84, 10},
                {DType::Q3_K, 256, 110, 11}, {DType::Q4_K, 256, 144, 12}, {DType::Q5_K, 256, 176, 13},
                {DType::Q6_K, 256, 210, 14}, {DType::F32, 1, 4, 0}, {DType::F16, 1, 2, 1}, {DType::BF16, 1, 2, 30}}) {
    SCOPED_TRACE(dtype_name(r.t));
    EXPECT_EQ(dtype_block_elems(r.t), r.k);
    EXPECT_EQ(dtype_block_bytes(r.t), r.bytes);
    EXPECT_EQ(ggml_type_id(r.t), r.id);
    EXPECT_EQ(dtype_from_ggml(r.id), r.t);
    EXPECT_EQ(is_quantized(r.t), r.k > 1);
    EXPECT_EQ(is_float(r.t), r.k == 1);
    EXPECT_EQ(row_bytes(r.t, 4 * r.k), 4 * r.bytes);
    EXPECT_EQ(row_bytes(r.t, 0), 0u);
  }
  EXPECT_EQ(std::string(dtype_name(DType::Q4_K)), "Q4_K");
  EXPECT_FALSE(dtype_from_ggml(16));  // IQ2_XXS: not supported
  EXPECT_FALSE(dtype_from_ggml(9));   // Q8_1: GGML's activation type, never stored
  EXPECT_EQ(row_bytes(DType::F16, 7), 14u);
  EXPECT_NE(solar::testing::error_of([] { row_bytes(DType::Q8_0, 48); }).find("not a whole number of 32-element blocks"),
            std::string::npos);
  EXPECT_NE(solar::testing::error_of([] { row_bytes(DType::Q4_K, 32); }).find("Q4_K"), std::string::npos);
  EXPECT_NE(solar::testing::error_of([] { dtype_size(DType::Q8_0); }).find("row_bytes"), std::string::npos);
}

namespace {

void put_f16(std::vector<uint8_t>& b, size_t at, float v) {
  uint16_t h = f32_to_f16(v);
  b[at] = uint8_t(h & 0xff);
  b[at + 1] = uint8_t(h >> 8);
}

std::vector<float> deq(const std::vector<uint8_t>& b, DType t) {
  std::vector<float> y(b.size() / dtype_block_bytes(t) * size_t(dtype_block_elems(t)));
  dequantize_row(b.data(), t, y.data(), int64_t(y.size()));
  return y;
}

}  // namespace

// Hand-built blocks whose values are exact in f32: the expected numbers come
// from the block layouts, not from the dequantizer's code.
TEST(DTypeBlocks, Q8_0AndQ4_0HandBuiltBlocks) {
  std::vector<uint8_t> q8(2 * 34);
  put_f16(q8, 0, 0.5f);
  put_f16(q8, 34, -0.25f);
  for (int j = 0; j < 32; ++j) q8[2 + j] = uint8_t(int8_t(j * 8 - 128)), q8[36 + j] = uint8_t(int8_t(j - 16));
  auto y = deq(q8, DType::Q8_0);
  for (int j = 0; j < 32; ++j) {
    EXPECT_EQ(y[j], 0.5f * float(j * 8 - 128)) << j;
    EXPECT_EQ(y[32 + j], -0.25f * float(j - 16)) << j;
  }
  std::vector<uint8_t> q4(18);
  put_f16(q4, 0, 2.0f);
  for (int j = 0; j < 16; ++j) q4[2 + j] = uint8_t(j | (15 - j) << 4);
  y = deq(q4, DType::Q4_0);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], 2.0f * float(j - 8)) << j;            // low nibbles: elements 0..15
    EXPECT_EQ(y[16 + j], 2.0f * float(15 - j - 8)) << j;  // high nibbles: elements 16..31
  }
}

TEST(DTypeBlocks, Q4_1Q5_0Q5_1HandBuiltBlocks) {
  std::vector<uint8_t> b(20);
  put_f16(b, 0, 0.5f);
  put_f16(b, 2, -1.0f);
  for (int j = 0; j < 16; ++j) b[4 + j] = uint8_t(j | (15 - j) << 4);
  auto y = deq(b, DType::Q4_1);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], 0.5f * j - 1.0f);
    EXPECT_EQ(y[16 + j], 0.5f * (15 - j) - 1.0f);
  }

  // Q5: qh bit i is element i's fifth bit; here the odd elements have it.
  // Q5_0 {d; qh[4]; qs[16]}: (q − 16)·d; Q5_1 {d; m; qh[4]; qs[16]}: q·d + m.
  const uint32_t qh = 0xAAAAAAAAu;
  for (DType t : {DType::Q5_0, DType::Q5_1}) {
    const size_t at = t == DType::Q5_1 ? 4 : 2;  // qh follows d (and m)
    b.assign(dtype_block_bytes(t), 0);
    put_f16(b, 0, 0.25f);
    if (t == DType::Q5_1) put_f16(b, 2, 3.0f);
    std::memcpy(&b[at], &qh, 4);
    for (int j = 0; j < 16; ++j) b[at + 4 + j] = uint8_t(j | (15 - j) << 4);
    y = deq(b, t);
    for (int i = 0; i < 32; ++i) {
      int lo = i < 16 ? i : 15 - (i - 16), q = lo + (i % 2 ? 16 : 0);
      EXPECT_EQ(y[i], t == DType::Q5_0 ? 0.25f * float(q - 16) : 0.25f * float(q) + 3.0f) << dtype_name(t) << " " << i;
    }
  }
}

// K-quants: one non-zero quant or sub-block scale at a time, so each
// expectation pins one field's position in the block.
TEST(DTypeBlocks, KQuantFieldPositions) {
  // Q4_K {d; dmin; scales[12]; qs[128]}: sub-block j < 4 has scale scales[j] & 63,
  // min scales[j+4] & 63; sub-blocks 4..7 take low/high nibbles of scales[8..11]
  // plus the top two bits of scales[0..7].
  std::vector<uint8_t> b(144, 0);
  put_f16(b, 0, 1.0f);
  put_f16(b, 2, 0.5f);
  b[4 + 1] = 3;                 // sub-block 1 scale 3
  b[4 + 5] = 2;                 // sub-block 1 min 2
  b[4 + 10] = 0x57;             // sub-block 6: scale low 7, min low 5
  b[4 + 2] = 0x40;              // sub-block 6 scale high bits 01 -> 7 + 16
  b[16 + 0] = 0x5A;             // sub-block 0: elem 0 = 0xA; sub-block 1: elem 32 = 5
  b[16 + 3 * 32 + 4] = 0xC0;    // sub-block 6 (qs[96..127] low nibble), elem 196 = 0; sub-block 7 elem 228 = 0xC
  auto y = deq(b, DType::Q4_K);
  EXPECT_EQ(y[0], 0.f);                       // scale 0, min 0
  EXPECT_EQ(y[32], 3.0f * 5 - 0.5f * 2);      // sub-block 1
  EXPECT_EQ(y[33], -1.0f);
  EXPECT_EQ(y[196], -0.5f * 5);               // sub-block 6: quant 0, min 5
  EXPECT_EQ(y[197], -0.5f * 5);
  EXPECT_EQ(y[228], 0.f);                     // sub-block 7: scale 0
  // Q5_K: as Q4_K plus qh[32] (bit j of qh[l] is the fifth bit of sub-block j's element l).
  b.assign(176, 0);
  put_f16(b, 0, 1.0f);
  b[4 + 3] = 1;       // sub-block 3 scale 1
  b[16 + 7] = 1 << 3; // sub-block 3, l = 7: +16
  b[48 + 32 + 7] = 0x20;  // qs for sub-blocks 2/3, l = 7: high nibble 2 -> sub-block 3
  y = deq(b, DType::Q5_K);
  EXPECT_EQ(y[3 * 32 + 7], 18.f);
  EXPECT_EQ(y[3 * 32 + 6], 0.f);
  // Q6_K {ql[128]; qh[64]; int8 scales[16]; d}: values (q − 32)·d·scale[i/16].
  b.assign(210, 0);
  put_f16(b, 208, 0.5f);
  for (int s = 0; s < 16; ++s) b[192 + s] = uint8_t(int8_t(s % 2 ? s + 1 : -s - 1));  // ±(s + 1)
  b[64 + 5] = 0x3;          // ql[64 + 5] low nibble: element 128 + 5
  b[128 + 32 + 5] = 0x2;    // qh[32 + 5] bits 0..1: high bits 2 of element 128 + 5
  y = deq(b, DType::Q6_K);
  EXPECT_EQ(y[128 + 5], 0.5f * -9.f * float((3 | 2 << 4) - 32));  // scale 8 = −9
  EXPECT_EQ(y[16], 0.5f * 2.f * -32.f);  // all-zero quant: −32
  EXPECT_EQ(y[255], 0.5f * 16.f * -32.f);
  // Q3_K {hmask[32]; qs[64]; scales[12]; d}: q = 2 bits − (hmask bit clear ? 4 : 0),
  // 16 six-bit scales − 32.
  b.assign(110, 0);
  put_f16(b, 108, 1.0f);
  for (int j = 0; j < 12; ++j) b[96 + j] = 0;  // every scale 0 − 32 = −32
  b[0] = 0xFF;       // hmask[0]: element 0 of each 32 has the high bit
  b[32 + 0] = 0x1B;  // qs[0]: elements 0, 32, 64, 96 get 3, 2, 1, 0
  y = deq(b, DType::Q3_K);
  EXPECT_EQ(y[0], -32.f * 3);
  EXPECT_EQ(y[32], -32.f * 2);
  EXPECT_EQ(y[96], -32.f * 0);
  EXPECT_EQ(y[1], -32.f * -4);  // hmask bit clear: −4
  // Q2_K {scales[16]; qs[64]; d; dmin}: dl = d·(s & 15), ml = dmin·(s >> 4).
  b.assign(84, 0);
  put_f16(b, 80, 2.0f);
  put_f16(b, 82, 1.0f);
  b[2] = 0x31;       // sub-block 2 (elements 32..47): scale 1, min 3
  b[16 + 0] = 0x0C;  // qs[0] bits 2..3 = 3: element 32
  y = deq(b, DType::Q2_K);
  EXPECT_EQ(y[32], 2.0f * 3 - 3.0f);
  EXPECT_EQ(y[33], -3.0f);
  EXPECT_EQ(y[0], 0.f);
}

TEST(DTypeBlocks, ConvertAndLoadF32Dequantize) {
  std::vector<uint8_t> q8(2 * 34);
  put_f16(q8, 0, 0.5f);
  put_f16(q8, 34, 1.0f);
  for (int j = 0; j < 32; ++j) q8[2 + j] = uint8_t(j), q8[36 + j] = uint8_t(int8_t(-j));
  std::vector<float> f(64);
  convert(q8.data(), DType::Q8_0, f.data(), DType::F32, 64);
  EXPECT_EQ(f[3], 1.5f);
  EXPECT_EQ(f[35], -3.f);
  std::vector<uint16_t> h(64);
  convert(q8.data(), DType::Q8_0, h.data(), DType::BF16, 64);
  EXPECT_EQ(bf16_to_f32(h[35]), -3.f);
  EXPECT_EQ(load_f32(q8.data(), DType::Q8_0, 35), -3.f);
  EXPECT_NE(solar::testing::error_of([&] { convert(q8.data(), DType::Q8_0, f.data(), DType::F32, 40); }).find("32-element"),
            std::string::npos);
  EXPECT_NE(solar::testing::error_of([&] { convert(f.data(), DType::F32, q8.data(), DType::Q8_0, 32); }).find("cannot convert"),
            std::string::npos);
}
