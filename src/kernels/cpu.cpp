// CPU feature detection (CPUID + XGETBV) and the thread count.
#include <cpuid.h>
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>

#include <algorithm>

#ifdef __linux__
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "kernels/kernels.h"
#include "kernels/kernels_impl.h"

namespace solar::kernels {
namespace {

uint64_t xgetbv0() {
  uint32_t lo, hi;
  // Raw opcode rather than _xgetbv(): the baseline is compiled without -mxsave.
  __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(lo), "=d"(hi) : "c"(0));
  return (uint64_t(hi) << 32) | lo;
}

// Linux keeps AMX tile data disabled until a process asks for it.
bool request_amx() {
#ifdef __linux__
  constexpr int kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
#else
  return false;
#endif
}

std::string brand() {
  unsigned r[12] = {};
  if (__get_cpuid_max(0x80000000, nullptr) < 0x80000004) return "unknown CPU";
  for (unsigned i = 0; i < 3; ++i) __get_cpuid(0x80000002 + i, &r[4 * i], &r[4 * i + 1], &r[4 * i + 2], &r[4 * i + 3]);
  std::string s(reinterpret_cast<const char*>(r), sizeof r);
  s = s.substr(0, s.find('\0'));
  const size_t lo = s.find_first_not_of(' '), hi = s.find_last_not_of(' ');
  return lo == std::string::npos ? "unknown CPU" : s.substr(lo, hi - lo + 1);
}

CpuFeatures detect() {
  CpuFeatures f;
  f.model = brand();
  unsigned a, b, c, d;
  if (!__get_cpuid_count(1, 0, &a, &b, &c, &d)) return f;
  bool osxsave = c & (1u << 27), avx = c & (1u << 28);
  bool fma = c & (1u << 12), f16c = c & (1u << 29);
  if (!osxsave || !avx) return f;
  uint64_t xcr0 = xgetbv0();
  bool os_avx = (xcr0 & 0x6) == 0x6;        // XMM + YMM state
  bool os_avx512 = (xcr0 & 0xe6) == 0xe6;   // + opmask, ZMM_Hi256, Hi16_ZMM
  bool os_amx = (xcr0 & 0x60000) == 0x60000;  // XTILECFG + XTILEDATA
  if (!os_avx) return f;
  f.fma = fma;
  f.f16c = f16c;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return f;
  f.avx2 = b & (1u << 5);
  if (os_avx512) {
    f.avx512f = b & (1u << 16);
    f.avx512bw = b & (1u << 30);
    f.avx512vl = b & (1u << 31);
    f.avx512_vbmi = c & (1u << 1);
    f.avx512_vnni = c & (1u << 11);
  }
  bool amx_tile = d & (1u << 24), amx_bf16 = d & (1u << 22), amx_int8 = d & (1u << 25);
  unsigned maxsub = a;
  if (maxsub >= 1 && os_avx512 && __get_cpuid_count(7, 1, &a, &b, &c, &d)) f.avx512_bf16 = a & (1u << 5);
  if (amx_tile && os_amx && request_amx()) {
    f.amx_tile = true;
    f.amx_bf16 = amx_bf16;
    f.amx_int8 = amx_int8 && f.avx512bw && f.avx512vl;  // its kernels' epilogues are AVX-512
  }
  return f;
}

}  // namespace

std::string CpuFeatures::describe() const {
  std::string s;
  auto add = [&](bool on, const char* name) {
    if (!on) return;
    if (!s.empty()) s += ' ';
    s += name;
  };
  add(avx2, "avx2");
  add(fma, "fma");
  add(f16c, "f16c");
  add(avx512f, "avx512f");
  add(avx512bw, "avx512bw");
  add(avx512vl, "avx512vl");
  add(avx512_vbmi, "avx512_vbmi");
  add(avx512_vnni, "avx512_vnni");
  add(avx512_bf16, "avx512_bf16");
  add(amx_tile, "amx_tile");
  add(amx_bf16, "amx_bf16");
  add(amx_int8, "amx_int8");
  return s.empty() ? "generic" : s;
}

const CpuFeatures& cpu() {
  static const CpuFeatures f = detect();
  return f;
}

std::string cpu_summary() { return cpu().model + " (" + cpu().describe() + ")"; }

std::string cpu_report() {
  const CpuFeatures& f = cpu();
  const detail::Dispatch& d = detail::dispatch();
  const auto dnnl = detail::dnnl_isas();
  const dnnl_version_t* v = dnnl_version();
  return "cpu: " + f.model + " (" + std::to_string(omp_get_num_procs()) + " logical CPUs); detected: " +
         f.describe() + "\nused: gemv " + detail::isa_name(d.isa) + ", element-wise " +
         (d.isa == detail::Isa::Scalar ? "portable" : detail::isa_name(d.isa)) + ", bf16 GEMMs " +
         (d.dnnl_bf16 ? "native in oneDNN" : "widened to f32") + ", quantized prefill " +
         (d.isa == detail::Isa::Avx512 && d.amx_int8 ? "AMX-INT8"
          : d.isa == detail::Isa::Avx512 && d.vnni   ? "VNNI"
          : d.isa != detail::Isa::Scalar             ? "AVX2"
                                                     : "scalar") +
         ", oneDNN " + std::to_string(v->major) + "." +
         std::to_string(v->minor) + "." + std::to_string(v->patch) + " at " +
         (dnnl.empty() ? std::string("below AVX2") : dnnl.back());
}

void set_num_threads(int n) { omp_set_num_threads(n > 0 ? n : omp_get_num_procs()); }
int num_threads() { return omp_get_max_threads(); }

Precision fastest_precision() { return detail::dispatch().dnnl_bf16 ? Precision::BF16 : Precision::F32; }

namespace detail {

const char* isa_name(Isa i) {
  switch (i) {
    case Isa::Avx512: return "avx512";
    case Isa::Avx2: return "avx2";
    default: return "scalar";
  }
}

Dispatch& dispatch() {
  static Dispatch d = [] {
    const CpuFeatures& f = cpu();
    Isa isa = f.avx512f && f.avx512bw && f.avx512vl && f.fma && f.f16c ? Isa::Avx512
              : f.avx2 && f.fma && f.f16c                              ? Isa::Avx2
                                                                       : Isa::Scalar;
    // Without avx512_bf16/AMX oneDNN emulates bf16 matmul at ~1/4 of its f32
    // speed, so BF16 weights are widened per block and run through f32 instead.
    // Asking oneDNN, not cpu(), follows ONEDNN_MAX_CPU_ISA (tests lower it).
    const auto dnnl = dnnl_isas();
    const bool bf16 = std::find(dnnl.begin(), dnnl.end(), "AVX512_CORE_BF16") != dnnl.end();
    return Dispatch{isa, bf16, 8, f.avx512_vnni, isa == Isa::Avx512 && f.avx512_bf16, f.amx_int8};  // bench: GEMV beats oneDNN up to M≈8
  }();
  return d;
}

}  // namespace detail
}  // namespace solar::kernels
