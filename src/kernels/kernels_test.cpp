// Fast kernels against the scalar double-accumulation references, on every
// dispatch path this machine can run.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <random>
#include <set>
#include <sstream>
#include <vector>

#include "core/error.h"
#include "core/fs.h"
#include "kernels/kernels.h"
#include "kernels/kernels_impl.h"

namespace solar::kernels {
namespace {

using detail::Isa;

std::vector<float> randn(size_t n, uint32_t seed) {
  std::mt19937 g(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> v(n);
  for (float& f : v) f = u(g);
  return v;
}

std::vector<uint8_t> as_dtype(const std::vector<float>& v, DType t) {
  std::vector<uint8_t> out(row_bytes(t, int64_t(v.size())));
  convert(v.data(), DType::F32, out.data(), t, v.size());
  return out;
}

// Restores the dispatch knobs a test lowered.
struct DispatchGuard {
  detail::Dispatch saved = detail::dispatch();
  ~DispatchGuard() { detail::dispatch() = saved; }
};

std::vector<Isa> isas() {
  std::vector<Isa> v{Isa::Scalar};
  if (cpu().avx2 && cpu().fma && cpu().f16c) v.push_back(Isa::Avx2);
  if (detail::dispatch().isa == Isa::Avx512) v.push_back(Isa::Avx512);
  return v;
}

// oneDNN 2.6 has bf16 matmul from AVX-512 on (emulated without AVX512-BF16).
bool dnnl_has_bf16() {
  const auto l = detail::dnnl_isas();
  return std::find(l.begin(), l.end(), "AVX512_CORE") != l.end();
}

// Error bound of an f32 dot product relative to mag = Σ|x·w| (plus rounding
// of |y|); `rel` is 1e-5 for f32 inputs, larger where x is rounded to bf16.
void expect_close(const std::vector<float>& got, const std::vector<float>& want, const std::vector<float>& mag,
                  float rel, const std::string& what) {
  int bad = 0;
  for (size_t i = 0; i < got.size() && bad < 5; ++i)
    if (!(std::fabs(got[i] - want[i]) <= rel * mag[i] + 1e-6f)) {
      ADD_FAILURE() << what << " at " << i << ": got " << got[i] << " want " << want[i] << " (Σ|xw|=" << mag[i] << ")";
      ++bad;
    }
}

TEST(KernelsCpu, DescribeMatchesProcCpuinfo) {
  const CpuFeatures& f = cpu();
  EXPECT_FALSE(f.describe().empty());
  EXPECT_TRUE(f.avx512f || !(f.avx512bw || f.avx512vl || f.avx512_bf16));
  EXPECT_TRUE(f.amx_tile || !f.amx_bf16);
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line) && line.rfind("flags", 0) != 0) {
  }
  if (line.empty()) GTEST_SKIP() << "/proc/cpuinfo has no flags line";
  std::istringstream ss(line.substr(line.find(':') + 1));
  std::set<std::string> flags{std::istream_iterator<std::string>(ss), {}};
  // The kernel only lists a flag when the OS saves its registers, as we require.
  EXPECT_EQ(f.avx2, flags.count("avx2") == 1);
  EXPECT_EQ(f.fma, flags.count("fma") == 1);
  EXPECT_EQ(f.f16c, flags.count("f16c") == 1);
  EXPECT_EQ(f.avx512f, flags.count("avx512f") == 1);
  EXPECT_EQ(f.avx512bw, flags.count("avx512bw") == 1);
  EXPECT_EQ(f.avx512vl, flags.count("avx512vl") == 1);
  EXPECT_EQ(f.avx512_bf16, flags.count("avx512_bf16") == 1);
  EXPECT_EQ(f.avx512_vbmi, flags.count("avx512vbmi") == 1);
  EXPECT_EQ(f.avx512_vnni, flags.count("avx512_vnni") == 1);
  EXPECT_TRUE(!f.amx_bf16 || flags.count("amx_bf16"));
}

TEST(KernelsCpu, ReportNamesModelAndPaths) {
  EXPECT_FALSE(cpu().model.empty());
  const std::string r = cpu_report();
  EXPECT_NE(r.find(cpu().model), std::string::npos) << r;
  EXPECT_NE(r.find(cpu().describe()), std::string::npos) << r;
  EXPECT_NE(r.find(std::string("gemv ") + detail::isa_name(detail::dispatch().isa)), std::string::npos) << r;
}

// oneDNN picks its own kernels by instruction set: the linear tests but the
// GEMV ones and the gemm tests run again at each level this CPU has (AVX2,
// AVX-512, AVX512-BF16, AMX), in a child process, since ONEDNN_MAX_CPU_ISA
// only takes effect before oneDNN's first use.
TEST(KernelsDispatch, EveryOneDnnIsaLevel) {
  if (std::getenv("ONEDNN_MAX_CPU_ISA")) GTEST_SKIP() << "already capped";
  const auto levels = detail::dnnl_isas();
  if (levels.empty()) GTEST_SKIP() << "oneDNN runs below AVX2 here";
  const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  const std::string filter = "KernelsLinear.*:KernelsGemm.*:KernelsCpu.OneDnnHonoursIsaCap:-*Gemv*";
  for (const std::string& level : levels) {
    const std::string log = ::testing::TempDir() + "kernels_isa_" + level + ".log";
    const std::string cmd =
        "ONEDNN_MAX_CPU_ISA=" + level + " '" + self + "' --gtest_filter='" + filter + "' > " + log + " 2>&1";
    EXPECT_EQ(std::system(cmd.c_str()), 0) << level << ":\n" << read_file(log);
  }
}

TEST(KernelsCpu, OneDnnHonoursIsaCap) {
  const char* cap = std::getenv("ONEDNN_MAX_CPU_ISA");
  if (!cap) GTEST_SKIP() << "run by KernelsDispatch.EveryOneDnnIsaLevel";
  ASSERT_FALSE(detail::dnnl_isas().empty());
  EXPECT_EQ(detail::dnnl_isas().back(), cap);
}

TEST(KernelsCpu, SetNumThreads) {
  const int before = num_threads();
  set_num_threads(1);
  EXPECT_EQ(num_threads(), 1);
  set_num_threads(0);
  EXPECT_GE(num_threads(), 1);
  set_num_threads(before);
}

TEST(KernelsWiden, ExactForEveryPath) {
  const int64_t K = 37, rows = 5;
  auto v = randn(size_t(K * rows), 1);
  for (DType t : {DType::F32, DType::BF16, DType::F16}) {
    auto w = as_dtype(v, t);
    std::vector<float> want(v.size());
    convert(w.data(), t, want.data(), DType::F32, v.size());
    for (Isa isa : isas()) {
      std::vector<float> got((rows - 1) * K, -1.f);
      detail::widen_rows(isa, w.data(), t, K, 1, rows, got.data());
      for (int64_t i = 0; i < (rows - 1) * K; ++i)
        ASSERT_EQ(got[i], want[K + i]) << dtype_name(t) << " " << detail::isa_name(isa) << " i=" << i;
    }
  }
}

// A dispatch path of linear(): its name, its tolerance relative to Σ|x·w|,
// and how it sets the dispatch knobs.
struct LinearPath {
  std::string name;
  float rel;
  std::function<void(detail::Dispatch&)> set;
};

// Every dtype × M × odd shapes × the paths `paths(dtype)` gives against
// linear_ref, with and without accumulate.
void expect_linear_matches_reference(const std::function<std::vector<LinearPath>(DType)>& paths) {
  DispatchGuard guard;
  const std::pair<int64_t, int64_t> shapes[] = {{67, 129}, {512, 1000}, {16, 4}};
  for (const auto& shape : shapes)
    for (int64_t M : {1, 2, 3, 7, 64, 130}) {
      const int64_t K = shape.first, N = shape.second;  // not a binding: lambdas capture these
      auto x = randn(size_t(M * K), uint32_t(K * 7 + M));
      auto wf = randn(size_t(N * K), uint32_t(N));
      for (DType t : {DType::F32, DType::BF16, DType::F16}) {
        auto w = as_dtype(wf, t);
        std::vector<float> want(size_t(M * N)), mag(size_t(M * N)), xa(x), wa(wf.size());
        linear_ref(x.data(), M, K, w.data(), t, N, want.data());
        convert(w.data(), t, wa.data(), DType::F32, wa.size());
        for (auto* v : {&xa, &wa})
          for (float& f : *v) f = std::fabs(f);
        linear_ref(xa.data(), M, K, wa.data(), DType::F32, N, mag.data());
        for (const LinearPath& path : paths(t)) {
          detail::dispatch() = guard.saved;
          path.set(detail::dispatch());
          const std::string what = path.name + " " + dtype_name(t) + " M=" + std::to_string(M) + " K=" +
                                   std::to_string(K) + " N=" + std::to_string(N);
          std::vector<float> y(size_t(M * N), NAN);
          linear(x.data(), M, K, w.data(), t, N, y.data());
          expect_close(y, want, mag, path.rel, what);
          std::vector<float> acc(size_t(M * N), 0.5f), want_acc(want);
          for (float& f : want_acc) f += 0.5f;
          linear(x.data(), M, K, w.data(), t, N, acc.data(), /*accumulate=*/true);
          expect_close(acc, want_acc, mag, path.rel, what + " accumulate");
        }
      }
    }
}

TEST(KernelsLinear, GemvMatchesReferenceAtEveryIsa) {
  expect_linear_matches_reference([](DType t) {
    std::vector<LinearPath> v;
    for (Isa isa : isas())  // GEMV for every M
      v.push_back({std::string("gemv/") + detail::isa_name(isa), 1e-5f, [isa](detail::Dispatch& d) {
                     d.isa = isa;
                     d.gemv_max_m = 1 << 30;
                     d.bf16_dot = false;
                   }});
    if (t == DType::BF16 && cpu().avx512_bf16 && detail::dispatch().isa == Isa::Avx512)  // x rounded to bf16
      v.push_back({"gemv/avx512-bf16dot", 8e-3f, [](detail::Dispatch& d) {
                     d.gemv_max_m = 1 << 30;
                     d.bf16_dot = true;
                   }});
    return v;
  });
}

TEST(KernelsLinear, OneDnnMatchesReference) {
  expect_linear_matches_reference([](DType t) {
    std::vector<LinearPath> v{{"dnnl/f32", 1e-5f, [](detail::Dispatch& d) {
                                 d.gemv_max_m = 0;  // oneDNN for every M
                                 d.dnnl_bf16 = false;
                               }}};
    if (t == DType::BF16 && dnnl_has_bf16())  // x rounded to bf16: relative error 2^-8 per product
      v.push_back({"dnnl/bf16", 8e-3f, [](detail::Dispatch& d) {
                     d.gemv_max_m = 0;
                     d.dnnl_bf16 = true;
                   }});
    return v;
  });
}

// The AVX512-BF16 GEMV is exactly x rounded to bf16 (nearest even) times W,
// up to f32 summation: K tails of every length reach its masked loads.
TEST(KernelsLinear, Bf16DotIsRoundedXTimesW) {
  if (!cpu().avx512_bf16 || detail::dispatch().isa != Isa::Avx512) GTEST_SKIP() << "no AVX512-BF16 on this CPU";
  DispatchGuard guard;
  detail::dispatch().bf16_dot = true;
  for (int64_t K : {1, 15, 16, 17, 31, 32, 33, 100, 2048})
    for (int64_t M : {1, 2, 3, 4, 5}) {
      const int64_t N = 21;
      auto x = randn(size_t(M * K), uint32_t(K + M)), wf = randn(size_t(N * K), uint32_t(K));
      auto w = as_dtype(wf, DType::BF16);
      auto xr = as_dtype(x, DType::BF16);
      std::vector<float> xf(x.size()), want(size_t(M * N)), mag(want.size()), y(want.size(), NAN), xa, wa(wf.size());
      convert(xr.data(), DType::BF16, xf.data(), DType::F32, xf.size());
      linear_ref(xf.data(), M, K, w.data(), DType::BF16, N, want.data());
      xa = xf;
      convert(w.data(), DType::BF16, wa.data(), DType::F32, wa.size());
      for (auto* v : {&xa, &wa})
        for (float& f : *v) f = std::fabs(f);
      linear_ref(xa.data(), M, K, wa.data(), DType::F32, N, mag.data());
      linear(x.data(), M, K, w.data(), DType::BF16, N, y.data());
      expect_close(y, want, mag, 1e-5f, "bf16dot M=" + std::to_string(M) + " K=" + std::to_string(K));
    }
}

TEST(KernelsLinear, ThreadCountDoesNotChangeResults) {
  const int before = num_threads();
  const int64_t K = 515, N = 1003;
  auto wf = randn(size_t(N * K), 3);
  auto w = as_dtype(wf, DType::BF16);
  for (int64_t M : {1, 3, 64}) {
    auto x = randn(size_t(M * K), 4);
    std::vector<float> y1(size_t(M * N)), y2(size_t(M * N)), y2b(size_t(M * N));
    set_num_threads(1);
    linear(x.data(), M, K, w.data(), DType::BF16, N, y1.data());
    set_num_threads(2);
    linear(x.data(), M, K, w.data(), DType::BF16, N, y2.data());
    linear(x.data(), M, K, w.data(), DType::BF16, N, y2b.data());
    EXPECT_EQ(y2, y2b) << "M=" << M << ": not deterministic at 2 threads";
    if (M <= detail::dispatch().gemv_max_m) {
      EXPECT_EQ(y1, y2) << "M=" << M << ": GEMV depends on thread count";
    }
  }
  set_num_threads(before);
}

// Prefill with W larger than one widening block (16 MiB of f32): several
// blocks, the last one partial, written at their column offsets of y.
TEST(KernelsLinear, PrefillAcrossWideningBlocks) {
  const int64_t M = 9, K = 2048, N = 2100;
  auto x = randn(size_t(M * K), 11), wf = randn(size_t(N * K), 12);
  auto w = as_dtype(wf, DType::BF16);
  std::vector<float> want(size_t(M * N)), mag(size_t(M * N)), y(size_t(M * N), NAN), xa(x), wa(wf.size());
  linear_ref(x.data(), M, K, w.data(), DType::BF16, N, want.data());
  convert(w.data(), DType::BF16, wa.data(), DType::F32, wa.size());
  for (auto* v : {&xa, &wa})
    for (float& f : *v) f = std::fabs(f);
  linear_ref(xa.data(), M, K, wa.data(), DType::F32, N, mag.data());
  DispatchGuard guard;
  detail::dispatch().gemv_max_m = 0;
  detail::dispatch().dnnl_bf16 = false;
  linear(x.data(), M, K, w.data(), DType::BF16, N, y.data());
  expect_close(y, want, mag, 1e-5f, "blocked BF16 prefill");
  // accumulate (the residual add of o_proj/down_proj): y += x·Wᵀ across blocks
  std::vector<float> base = randn(size_t(M * N), 13), acc = base, want_acc(want);
  for (size_t i = 0; i < want_acc.size(); ++i) want_acc[i] += base[i];
  linear(x.data(), M, K, w.data(), DType::BF16, N, acc.data(), /*accumulate=*/true);
  expect_close(acc, want_acc, mag, 1e-5f, "blocked BF16 prefill, accumulate");
}

TEST(KernelsLinear, RejectsNonFloatWeights) {
  float x[4] = {}, y[4];
  int32_t w[16] = {};
  EXPECT_THROW(linear(x, 1, 4, w, DType::I32, 4, y), Error);
}

// gemm: all transposes, alpha/beta, leading dimensions wider than the matrices.
TEST(KernelsGemm, MatchesReferenceAllTransposes) {
  DispatchGuard guard;
  const int64_t M = 37, N = 53, K = 71, pad = 5;
  for (Precision p : {Precision::F32, Precision::BF16})
    for (bool dnnl_bf16 : {false, true}) {
      if ((p == Precision::F32 || !dnnl_has_bf16()) && dnnl_bf16) continue;
      detail::dispatch().dnnl_bf16 = dnnl_bf16;
      for (int tA = 0; tA < 2; ++tA)
        for (int tB = 0; tB < 2; ++tB)
          for (float beta : {0.f, 0.3f}) {
            const int64_t ar = tA ? K : M, ac = tA ? M : K, br = tB ? N : K, bc = tB ? K : N;
            const int64_t lda = ac + pad, ldb = bc + pad, ldc = N + pad;
            auto A = randn(size_t(ar * lda), 10 + tA), B = randn(size_t(br * ldb), 20 + tB);
            auto C0 = randn(size_t(M * ldc), 30);
            if (beta == 0) std::fill(C0.begin(), C0.end(), NAN);  // beta 0 must ignore C
            // The BF16 contract: the f32 reference on bf16-rounded inputs.
            auto Ar = A, Br = B;
            if (p == Precision::BF16)
              for (auto* v : {&Ar, &Br})
                for (float& f : *v) f = bf16_to_f32(f32_to_bf16(f));
            std::vector<float> want(C0), got(C0);
            gemm_ref(tA, tB, M, N, K, 0.7f, Ar.data(), lda, Br.data(), ldb, beta, want.data(), ldc);
            gemm(tA, tB, M, N, K, 0.7f, A.data(), lda, B.data(), ldb, beta, got.data(), ldc, p);
            for (int64_t i = 0; i < M; ++i)
              for (int64_t j = 0; j < ldc; ++j) {
                const float g = got[i * ldc + j], e = want[i * ldc + j];
                if (j >= N) {  // padding untouched
                  ASSERT_TRUE(std::isnan(g) ? std::isnan(C0[i * ldc + j]) : g == C0[i * ldc + j]);
                  continue;
                }
                ASSERT_NEAR(g, e, 1e-4f) << "p=" << int(p) << " dnnl_bf16=" << dnnl_bf16 << " tA=" << tA
                                         << " tB=" << tB << " beta=" << beta << " i=" << i << " j=" << j;
              }
          }
    }
}

// Long K without transposes runs in K chunks accumulated through beta: the
// first chunk must honour beta (and ignore C when it is 0), the rest add.
TEST(KernelsGemm, LongKChunksMatchReference) {
  const int64_t M = 9, N = 21, K = 5000, ldc = N + 3;
  auto A = randn(size_t(M * K), 41), B = randn(size_t(K * N), 42);
  for (float beta : {0.f, 0.5f}) {
    auto C0 = randn(size_t(M * ldc), 43);
    if (beta == 0) std::fill(C0.begin(), C0.end(), NAN);
    std::vector<float> want(C0), got(C0);
    gemm_ref(false, false, M, N, K, 0.3f, A.data(), K, B.data(), N, beta, want.data(), ldc);
    gemm(false, false, M, N, K, 0.3f, A.data(), K, B.data(), N, beta, got.data(), ldc);
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) ASSERT_NEAR(got[i * ldc + j], want[i * ldc + j], 2e-4f) << beta << " " << i << " " << j;
  }
}

TEST(KernelsGemm, Bf16PrecisionWithinBf16ToleranceOfF32) {
  const int64_t M = 64, N = 96, K = 128;
  auto A = randn(size_t(M * K), 5), B = randn(size_t(K * N), 6);
  std::vector<float> c32(size_t(M * N)), c16(size_t(M * N));
  gemm(false, false, M, N, K, 1.f, A.data(), K, B.data(), N, 0.f, c32.data(), N, Precision::F32);
  gemm(false, false, M, N, K, 1.f, A.data(), K, B.data(), N, 0.f, c16.data(), N, Precision::BF16);
  double max_err = 0;
  for (size_t i = 0; i < c32.size(); ++i) max_err = std::max(max_err, double(std::fabs(c32[i] - c16[i])));
  // Σ over K=128 products of [-1,1] values, each off by <= 2·2^-9 relative.
  EXPECT_LT(max_err, 128 * 2.0 / 512);
  EXPECT_GT(max_err, 0) << "BF16 precision did not round its inputs";
}

TEST(KernelsGemm, DeterministicForFixedThreads) {
  const int64_t M = 200, N = 300, K = 400;
  auto A = randn(size_t(M * K), 7), B = randn(size_t(N * K), 8);
  std::vector<float> c1(size_t(M * N)), c2(size_t(M * N));
  gemm(false, true, M, N, K, 1.f, A.data(), K, B.data(), K, 0.f, c1.data(), N);
  gemm(false, true, M, N, K, 1.f, A.data(), K, B.data(), K, 0.f, c2.data(), N);
  EXPECT_EQ(c1, c2);
}

// Training's attention calls gemm from the threads of its own parallel loop,
// all on one cached primitive per shape: run side by side they must give
// what they give one after another, bit for bit (oneDNN's library-managed
// scratchpad is one per primitive, shared by such calls, see matmul.cpp).
TEST(KernelsGemm, ConcurrentCallsMatchSequentialOnes) {
  const int before = num_threads();
  set_num_threads(2);
  struct Shape {
    bool tA, tB;
    int64_t M, N, K;
  };
  for (Precision p : {Precision::F32, Precision::BF16})
    for (Shape s : {Shape{false, true, 64, 64, 8}, Shape{false, false, 64, 8, 64}, Shape{true, false, 64, 8, 64}}) {
      const int jobs = 8;
      const int64_t lda = s.tA ? s.M : s.K, ldb = s.tB ? s.K : s.N;
      std::vector<std::vector<float>> A, B, want(jobs, std::vector<float>(size_t(s.M * s.N)));
      for (int j = 0; j < jobs; ++j) A.push_back(randn(size_t(s.M * s.K), j)), B.push_back(randn(size_t(s.K * s.N), 50 + j));
      auto run = [&](int j, std::vector<float>& C) {
        gemm(s.tA, s.tB, s.M, s.N, s.K, 0.5f, A[j].data(), lda, B[j].data(), ldb, 0.f, C.data(), s.N, p);
      };
#pragma omp parallel for ordered schedule(static)
      for (int j = 0; j < jobs; ++j) {
#pragma omp ordered
        run(j, want[j]);
      }
      // The calls must really run side by side, which a busy machine makes
      // rare: repeat until 100 of them found the other thread inside gemm.
      std::vector<std::vector<float>> got = want;
      std::atomic<int> inside{0}, overlaps{0};
      for (int rep = 0; rep < 500 && overlaps < 100 && got == want; ++rep) {
#pragma omp parallel for schedule(static)
        for (int j = 0; j < jobs; ++j) {
          overlaps += inside++ > 0;
          run(j, got[j]);
          overlaps += inside-- > 1;
        }
      }
      EXPECT_TRUE(got == want) << (p == Precision::F32 ? "f32" : "bf16") << " tA=" << s.tA << " tB=" << s.tB;
    }
  set_num_threads(before);
}

}  // namespace
}  // namespace solar::kernels
