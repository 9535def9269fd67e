// linear() and gemm() dispatch, and their oneDNN paths (compute-bound shapes).
//
// oneDNN measured on this AVX-512 machine without avx512_bf16 (2048³, 1 thread):
// f32 matmul ≈ 130 GFLOP/s (brgemm), bf16 matmul ≈ 35 GFLOP/s (emulated). So
// BF16/F16 weights are widened to f32 one block of rows at a time (each block
// reused for all M rows) and go through f32 matmul, unless Dispatch::dnnl_bf16
// says the CPU runs bf16 natively (avx512_bf16 / AMX).
#include <omp.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <vector>

#include "core/error.h"
#include "kernels/kernels.h"
#include "kernels/kernels_impl.h"

namespace solar::kernels {
namespace {

using dnnl::memory;

struct MatmulKey {
  int64_t M, N, K, sa0, sa1, sb0, sb1, ldc;
  memory::data_type src, wei;
  float alpha, beta;
  // oneDNN fixes a primitive's thread count when it creates it: a primitive
  // made at 1 thread and run at 2 leaves the second idle.
  int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  auto operator<=>(const MatmulKey&) const = default;
};

dnnl::engine& engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

struct Matmul {
  dnnl::matmul p;
  memory::desc scratch;
};

// Primitive creation costs ~0.1 ms (JIT), far more than a decode-sized call,
// so primitives are kept per shape (training's blocked attention alone uses
// ~6 per block of rows). Bounded: prompt lengths vary.
Matmul get_matmul(const MatmulKey& k) {
  static std::mutex mu;
  static std::map<MatmulKey, Matmul> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(k);
  if (it != cache.end()) return it->second;
  if (cache.size() >= 1024) cache.clear();
  memory::desc a({k.M, k.K}, k.src, {k.sa0, k.sa1});
  memory::desc b({k.K, k.N}, k.wei, {k.sb0, k.sb1});
  memory::desc c({k.M, k.N}, memory::data_type::f32, {k.ldc, 1});
  dnnl::primitive_attr attr;
  // oneDNN's own (library-managed) scratchpad belongs to the primitive in
  // Debian's build: when the threads of training's attention loop run one
  // cached primitive at once, each as oneDNN's thread 0, they pack their
  // tiles into the same slot of it and compute with each other's, so results
  // changed from run to run. Each thread passes a scratchpad of its own.
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  if (k.alpha != 1.f) attr.set_output_scales(0, {k.alpha});
  if (k.beta != 0.f) {
    dnnl::post_ops po;
    po.append_sum(k.beta);
    attr.set_post_ops(po);
  }
  dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a, b, c), attr, engine());
  return cache.emplace(k, Matmul{dnnl::matmul(pd), pd.scratchpad_desc()}).first->second;
}

// C[M,N] = alpha·A[M,K]·B[K,N] + beta·C with A, B given by element strides.
void run_matmul(const MatmulKey& k, const void* A, const void* B, float* C) {
  try {
    Matmul m = get_matmul(k);
    thread_local std::vector<uint8_t> scratch;
    scratch.resize(std::max(scratch.size(), m.scratch.get_size()));
    dnnl::engine& e = engine();
    dnnl::stream s(e);
    m.p.execute(s, {{DNNL_ARG_SRC, memory({{k.M, k.K}, k.src, {k.sa0, k.sa1}}, e, const_cast<void*>(A))},
                    {DNNL_ARG_WEIGHTS, memory({{k.K, k.N}, k.wei, {k.sb0, k.sb1}}, e, const_cast<void*>(B))},
                    {DNNL_ARG_DST, memory({{k.M, k.N}, memory::data_type::f32, {k.ldc, 1}}, e, C)},
                    {DNNL_ARG_SCRATCHPAD, memory(m.scratch, e, scratch.data())}});
    s.wait();
  } catch (const dnnl::error& e) {
    fail("oneDNN", "matmul", "M=" + std::to_string(k.M) + " N=" + std::to_string(k.N) + " K=" +
                                 std::to_string(k.K) + ": " + e.what());
  }
}

constexpr auto kF32 = memory::data_type::f32;
constexpr auto kBF16 = memory::data_type::bf16;

// out[i] = bf16(x[i]) for i in [0, n), single-threaded.
void to_bf16_span(const float* x, int64_t n, uint16_t* out) {
  if (detail::dispatch().isa == detail::Isa::Avx512) return detail::to_bf16_avx512(x, n, out);
  for (int64_t i = 0; i < n; ++i) out[i] = f32_to_bf16(x[i]);
}

std::vector<uint16_t> to_bf16(const float* x, int64_t n) {
  std::vector<uint16_t> out(static_cast<size_t>(n));
  const int64_t chunk = 1 << 14;
#pragma omp parallel for schedule(static) if (n > (1 << 16))
  for (int64_t i = 0; i < n; i += chunk) to_bf16_span(x + i, std::min(chunk, n - i), out.data() + i);
  return out;
}

// dst[r·cols + c] = bf16(src[r·ld + c])
void pack_bf16(const float* src, int64_t ld, int64_t rows, int64_t cols, uint16_t* dst) {
#pragma omp parallel for schedule(static) if (rows * cols > (1 << 16))
  for (int64_t r = 0; r < rows; ++r) to_bf16_span(src + r * ld, cols, dst + r * cols);
}

}  // namespace

namespace detail {

std::vector<std::string> dnnl_isas() {
  using I = dnnl::cpu_isa;
  const std::pair<I, const char*> levels[] = {
      {I::avx2, "AVX2"}, {I::avx512_core, "AVX512_CORE"}, {I::avx512_core_bf16, "AVX512_CORE_BF16"},
      {I::avx512_core_amx, "AVX512_CORE_AMX"}};
  // Each level's bits include those of the levels below it.
  const int have = int(dnnl::get_effective_cpu_isa());
  std::vector<std::string> out;
  for (const auto& [isa, name] : levels)
    if ((have & int(isa)) == int(isa)) out.push_back(name);
  return out;
}

void linear_dnnl(const float* x, int64_t M, int64_t K, const void* W, DType wdt, int64_t N, float* y, bool acc) {
  const float beta = acc ? 1.f : 0.f;
  if (wdt == DType::F32) return run_matmul({M, N, K, K, 1, 1, K, N, kF32, kF32, 1.f, beta}, x, W, y);
  if (wdt == DType::BF16 && dispatch().dnnl_bf16) {
    std::vector<uint16_t> xb = to_bf16(x, M * K);
    return run_matmul({M, N, K, K, 1, 1, K, N, kBF16, kBF16, 1.f, beta}, xb.data(), W, y);
  }
  // ~16 MiB of f32 rows per block (L3-resident while all M rows of x pass
  // over it): measured 1.5x faster at 2 threads than 4 MiB blocks, which pay
  // two fork/joins per block.
  const int64_t nb = std::min<int64_t>(N, std::max<int64_t>(64, (int64_t(1) << 22) / K / 16 * 16));
  std::vector<float> block(size_t(nb * K));
  // A block of output columns is strided in y (ldc = N), and oneDNN 2.6 runs
  // a strided destination on its slower gemm:jit path (~60 vs ~130 GFLOP/s
  // measured): blocks write to a dense [M, rows] buffer, then into y.
  std::vector<float> out(nb < N ? size_t(M * nb) : 0);
  const Isa isa = dispatch().isa;
  for (int64_t n0 = 0; n0 < N; n0 += nb) {
    const int64_t n1 = std::min(N, n0 + nb), rows = n1 - n0;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r += 16)
      widen_rows(isa, W, wdt, K, n0 + r, std::min(n1, n0 + r + 16), block.data() + r * K);
    if (nb == N) {
      run_matmul({M, rows, K, K, 1, 1, K, N, kF32, kF32, 1.f, beta}, x, block.data(), y);
      continue;
    }
    run_matmul({M, rows, K, K, 1, 1, K, rows, kF32, kF32, 1.f, 0.f}, x, block.data(), out.data());
#pragma omp parallel for schedule(static) if (M * rows > (1 << 16))
    for (int64_t m = 0; m < M; ++m) {
      const float* src = out.data() + m * rows;
      float* dst = y + m * N + n0;
      if (acc)
        for (int64_t j = 0; j < rows; ++j) dst[j] += src[j];
      else
        std::copy_n(src, rows, dst);
    }
  }
}

}  // namespace detail

// Runs f(n0, n1) over ranges of rows, multiples of 16 (y's cache lines are
// not shared), ~8 per thread taken as threads free up: on a shared machine a
// core slowed by a neighbour does less of the work instead of holding the
// others at the barrier (a static half each made decode as slow as the slower
// core). Tiny layers stay on one thread. A row's result never depends on the
// range it falls in (gemv.cpp, qgemv.cpp, qpanel.cpp), so neither on the
// thread count nor on which thread ran it.
template <class F>
void split_rows(int64_t N, int64_t work, F&& f) {
  if (!worth_threads(work) || omp_get_max_threads() == 1 || omp_in_parallel()) return f(0, N);
  const int64_t T = omp_get_max_threads();
  const int64_t chunk = std::max<int64_t>(16, (N + 8 * T - 1) / (8 * T) + 15) / 16 * 16;
  const int64_t chunks = (N + chunk - 1) / chunk;
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t c = 0; c < chunks; ++c) f(c * chunk, std::min(N, (c + 1) * chunk));
}

void linear(const float* x, int64_t M, int64_t K, const void* W, DType wdt, int64_t N, float* y, bool acc) {
  if (!is_float(wdt) && !is_quantized(wdt))
    fail("linear", "W.dtype", std::string("expected F32, F16, BF16 or a GGML block type, got ") + dtype_name(wdt));
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    if (!acc) std::fill(y, y + M * N, 0.f);
    return;
  }
  const detail::Dispatch& d = detail::dispatch();
  if (M > d.gemv_max_m) return detail::linear_dnnl(x, M, K, W, wdt, N, y, acc);
  if (is_float(wdt))
    return split_rows(N, N * K * M, [&](int64_t n0, int64_t n1) {
      detail::gemv_rows(d.isa, x, M, K, W, wdt, N, n0, n1, y, acc);
    });
  if (!detail::qgemv_supported(wdt)) return detail::linear_dequant(x, M, K, W, wdt, N, y, acc);
  row_bytes(wdt, K);  // throws unless rows are whole blocks
  // The caller's buffer, reused across calls; named by reference, as a
  // thread_local named inside the parallel region is each thread's own.
  thread_local detail::QActs buffer;
  detail::QActs& acts = buffer;
  detail::quantize_acts(x, M, K, wdt, acts);
  split_rows(N, N * K * M, [&](int64_t n0, int64_t n1) {
    detail::qgemv_rows(d.isa, d.vnni, acts, W, N, n0, n1, y, acc);
  });
}

void linear(const float* x, int64_t M, const PackedWeight& w, float* y, bool acc) {
  const PackedOut one{&w, y};
  linear(x, M, std::span(&one, 1), acc);
}

void linear(const float* x, int64_t M, std::span<const PackedOut> outs, bool acc) {
  if (M <= 0 || outs.empty()) return;
  const PackedWeight& w0 = *outs[0].w;
  const bool fl = is_float(w0.dtype);
  for (const PackedOut& o : outs)
    if (o.w->K != w0.K || is_float(o.w->dtype) != fl || (fl && o.w->dtype != w0.dtype)) {
      for (const PackedOut& p : outs) linear(x, M, std::span(&p, 1), acc);  // x prepared per weight
      return;
    }
  // x as the panels read it, once for all the weights: f32 (or bf16 pairs)
  // in tiles, or int8 per 32 elements for every block type.
  thread_local std::vector<int32_t> fbuf;  // named by reference: see linear() above
  thread_local detail::XQ32 qbuf;
  std::vector<int32_t>& xb = fbuf;
  detail::XQ32& xq = qbuf;
  if (fl) {
    xb.resize(size_t(detail::float_x_words(w0.dtype, M, w0.K)));
    detail::float_x_tiles(w0.dtype, x, M, w0.K, xb.data());
  } else {
    detail::quantize_x32(x, M, w0.K, xq);
  }
  const detail::Isa isa = detail::dispatch().isa;
  auto rows = [&](const PackedOut& o, int64_t n0, int64_t n1) {
    if (fl)
      detail::float_packed_rows(*o.w, xb.data(), M, n0 / 16, (n1 + 15) / 16, o.y, acc);
    else
      detail::packed_rows(isa, *o.w, xq, n0 / 16, (n1 + 15) / 16, o.y, acc);
  };
  int64_t N = 0;
  for (const PackedOut& o : outs) N += o.w->N;
  if (!worth_threads(N * w0.K * M) || omp_get_max_threads() == 1 || omp_in_parallel()) {
    for (const PackedOut& o : outs) rows(o, 0, o.w->N);
    return;
  }
  // split_rows' chunks over the weights side by side: one parallel region
  // (q, k and v of a layer were three, each with its barrier).
  const int64_t T = omp_get_max_threads();
  const int64_t chunk = std::max<int64_t>(16, (N + 8 * T - 1) / (8 * T) + 15) / 16 * 16;
  struct Piece {
    const PackedOut* o;
    int64_t n0, n1;
  };
  std::vector<Piece> pieces;
  for (const PackedOut& o : outs)
    for (int64_t n0 = 0; n0 < o.w->N; n0 += chunk) pieces.push_back({&o, n0, std::min(o.w->N, n0 + chunk)});
#pragma omp parallel for schedule(dynamic, 1)
  for (size_t c = 0; c < pieces.size(); ++c) rows(*pieces[c].o, pieces[c].n0, pieces[c].n1);
}

// f32 A·B (neither transposed) with K > 1.5·kChunkK runs in K chunks of at most kChunkK.
constexpr int64_t kChunkK = 1024;

void gemm(bool tA, bool tB, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc, Precision p) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == 0 ? 0.f : beta * C[i * ldc + j];
    return;
  }
  // Strides of op(A)[M,K] and op(B)[K,N] as stored.
  const int64_t sa0 = tA ? 1 : lda, sa1 = tA ? lda : 1, sb0 = tB ? 1 : ldb, sb1 = tB ? ldb : 1;
  if (p == Precision::F32 && !tA && !tB && K > kChunkK * 3 / 2) {
    // oneDNN 2.6's f32 matmul with a row-major (not transposed) B slows to
    // about half speed once K outgrows N (training's dx = dy·W of the MLP
    // down-projection and of the vocabulary head: K = 2048…32000, N = d).
    // Chunks of ~1024 along K, accumulated through beta, run at full speed:
    // measured 1.6–2× at K = 2048 and 32000 (1 and 2 threads).
    const int64_t chunks = (K + kChunkK - 1) / kChunkK, kc = (K + chunks - 1) / chunks;
    for (int64_t k0 = 0; k0 < K; k0 += kc) {
      const int64_t kk = std::min(kc, K - k0);
      run_matmul({M, N, kk, lda, 1, ldb, 1, ldc, kF32, kF32, alpha, k0 == 0 ? beta : 1.f}, A + k0, B + k0 * ldb, C);
    }
    return;
  }
  if (p == Precision::F32) return run_matmul({M, N, K, sa0, sa1, sb0, sb1, ldc, kF32, kF32, alpha, beta}, A, B, C);
  // BF16: inputs rounded to bf16 into packed (ld = width) per-thread buffers,
  // reused across calls (training makes thousands of small ones per step);
  // f32 accumulation.
  const int64_t ar = tA ? K : M, ac = tA ? M : K, br = tB ? N : K, bc = tB ? K : N;
  const int64_t pa0 = tA ? 1 : ac, pa1 = tA ? ac : 1, pb0 = tB ? 1 : bc, pb1 = tB ? bc : 1;
  thread_local std::vector<uint16_t> Ab, Bb;
  Ab.resize(size_t(ar * ac));
  Bb.resize(size_t(br * bc));
  pack_bf16(A, lda, ar, ac, Ab.data());
  pack_bf16(B, ldb, br, bc, Bb.data());
  if (detail::dispatch().dnnl_bf16)
    return run_matmul({M, N, K, pa0, pa1, pb0, pb1, ldc, kBF16, kBF16, alpha, beta}, Ab.data(), Bb.data(), C);
  // No native bf16: the same rounding, then f32 matmul (emulating oneDNN's bf16 path is slower).
  thread_local std::vector<float> Af, Bf;
  Af.resize(Ab.size());
  Bf.resize(Bb.size());
  for (size_t i = 0; i < Ab.size(); ++i) Af[i] = bf16_to_f32(Ab[i]);
  for (size_t i = 0; i < Bb.size(); ++i) Bf[i] = bf16_to_f32(Bb[i]);
  run_matmul({M, N, K, pa0, pa1, pb0, pb1, ldc, kF32, kF32, alpha, beta}, Af.data(), Bf.data(), C);
}

}  // namespace solar::kernels
