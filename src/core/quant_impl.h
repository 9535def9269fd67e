// solar/core/quant_impl.h — block-layout helpers shared by the dequantizer
// (quant.cpp) and the quantizers (quantize.cpp) only.
#pragma once
#include <cstdint>

namespace solar {

// Q4_K/Q5_K: sub-block j's 6-bit scale and min from the 12 packed bytes at s
// (j < 4: low 6 bits of s[j], s[j+4]; else a nibble of s[j+4] and the top 2
// bits of s[j−4], s[j]).
void scale_min_k4(const uint8_t* s, int j, int& sc, int& m);

}  // namespace solar
