// bench_upscale — `solar upscale --drop 8` on a Mistral-7B-shaped BF16
// checkpoint (32 -> 48 layers, 14.5 GB in, 21.5 GB out), beside `cp` of the
// same number of output bytes, with peak RSS of each child (wait4).
//
// The source is random BF16 written with HfWriter from one 300 MB random block
// (each tensor a different window of it), in 1 GB shards so the copy baseline
// can be made of whole shards: the source folder once plus enough shards
// again to reach the up-scaled size. Before each timed step everything is
// synced and the source files are evicted from the page cache
// (fadvise DONTNEED; drop_caches too when the kernel allows it), so both read
// cold. Both steps end durable: upscale fsyncs its shards, cp is followed by
// sync. Everything is deleted at the end.
// usage: bench_upscale [--dir /tmp/solar_bench_upscale] [--preset mistral-7b] [--drop 8] [--solar PATH] [--keep]
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "core/fs.h"
#include "formats/hf.h"
#include "formats/load.h"
#include "kernels/kernels.h"
#include "model/checkpoint.h"

using namespace solar;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

static double secs(Clock::time_point a) { return std::chrono::duration<double>(Clock::now() - a).count(); }

struct Child {
  double wall = 0;
  long max_rss_kb = 0;
  int status = -1;
};

// Runs argv, returns wall time and the child's peak RSS.
static Child run(const std::vector<std::string>& argv) {
  std::vector<char*> a;
  for (auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
  a.push_back(nullptr);
  Child c;
  auto t = Clock::now();
  pid_t pid = fork();
  if (pid == 0) {
    execvp(a[0], a.data());
    _exit(127);
  }
  int st = 0;
  struct rusage ru{};
  wait4(pid, &st, 0, &ru);
  c.wall = secs(t);
  c.max_rss_kb = ru.ru_maxrss;
  c.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return c;
}

static bool drop_caches() {
  sync();
  FILE* f = std::fopen("/proc/sys/vm/drop_caches", "w");
  if (!f) return false;
  bool ok = std::fputs("3\n", f) >= 0;
  return std::fclose(f) == 0 && ok;
}

// Clean pages of our own files can always be evicted, privileged or not.
static void evict(const std::string& dir) {
  sync();
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    int fd = ::open(e.path().c_str(), O_RDONLY);
    if (fd < 0) continue;
    fdatasync(fd);
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
  }
}

static uint64_t dir_bytes(const std::string& dir) {
  uint64_t n = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) n += e.file_size();
  return n;
}

int main(int argc, char** argv) {
  std::string dir = "/tmp/solar_bench_upscale", solar = (fs::path(argv[0]).parent_path() / "solar").string();
  std::string preset = "mistral-7b", drop = "8";
  bool keep = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--dir") && i + 1 < argc) dir = argv[++i];
    else if (!std::strcmp(argv[i], "--preset") && i + 1 < argc) preset = argv[++i];
    else if (!std::strcmp(argv[i], "--drop") && i + 1 < argc) drop = argv[++i];
    else if (!std::strcmp(argv[i], "--solar") && i + 1 < argc) solar = argv[++i];
    else if (!std::strcmp(argv[i], "--keep")) keep = true;
    else {
      std::fprintf(stderr, "usage: bench_upscale [--dir DIR] [--preset NAME] [--drop M] [--solar PATH] [--keep]\n");
      return 2;
    }
  }
  std::printf("%s\n", kernels::cpu_report().c_str());
  std::string src = dir + "/source", out = dir + "/up48", cp1 = dir + "/cp_all", cp2 = dir + "/cp_extra";
  remove_all(dir);
  make_dirs(dir);
  struct Cleanup {
    std::string d;
    bool keep;
    ~Cleanup() {
      if (!keep) remove_all(d);
    }
  } cleanup{dir, keep};

  model::ModelConfig c = model::preset_config(preset);
  uint64_t need = 2 * uint64_t(c.num_parameters()) * 2 + (2ull << 30);  // source + up-scaled/copy, BF16
  if (free_disk_bytes(dir) < need) {
    std::fprintf(stderr, "bench_upscale: needs %.1f GB free in %s\n", need / 1e9, dir.c_str());
    return 1;
  }

  // 1. The source checkpoint.
  const size_t block_bytes = 300u << 20;
  std::vector<uint16_t> block(block_bytes / 2);
  std::mt19937 rng(42);
  std::normal_distribution<float> nd(0.f, 0.02f);
  for (size_t i = 0; i < 1 << 20; ++i) block[i] = f32_to_bf16(nd(rng));
  for (size_t i = 1 << 20; i < block.size(); ++i) block[i] = block[i % (1 << 20)] ^ uint16_t((i >> 20) & 7);
  std::vector<formats::TensorDecl> decls;
  for (const auto& n : model::expected_tensor_names(c)) decls.push_back({n, model::expected_shape(c, n), DType::BF16});
  auto t = Clock::now();
  {
    formats::HfWriteOptions o;
    o.max_shard_bytes = 1000ull * 1000 * 1000;
    formats::HfWriter w(src, c, decls, o);
    size_t off = 0;
    for (const auto& d : decls) {
      TensorView v{d.name, DType::BF16, d.shape};
      v.nbytes = size_t(v.numel()) * 2;
      off = (off + 4099 * 2) % (block_bytes - v.nbytes) / 2 * 2;
      v.data = reinterpret_cast<const uint8_t*>(block.data()) + off;
      w.write(v);
    }
    w.finish();
  }
  std::vector<uint16_t>().swap(block);  // forked children inherit our RSS high-water mark
  uint64_t src_bytes = dir_bytes(src);
  std::printf("source: %s, %lld params, %.2f GB in %zu files, written in %.1f s\n", c.architecture.c_str(),
              (long long)c.num_parameters(), src_bytes / 1e9, size_t(std::distance(fs::directory_iterator(src), {})),
              secs(t));

  // 2. solar upscale --drop 8.
  bool dropped = drop_caches();
  evict(src);
  Child up = run({solar, "upscale", "-m", src, "--drop", drop, "-o", out, "--force"});
  if (up.status != 0) {
    std::fprintf(stderr, "bench_upscale: solar upscale failed (status %d)\n", up.status);
    return 1;
  }
  uint64_t out_bytes = dir_bytes(out);
  model::Checkpoint ck = formats::load_checkpoint(out);
  std::printf("upscale: %d layers, %lld params, %.2f GB\n", ck.config.num_hidden_layers,
              (long long)ck.config.num_parameters(), out_bytes / 1e9);
  ck = model::Checkpoint{};
  remove_all(out);

  // 3. cp of as many bytes: the whole source, then source shards again.
  std::vector<std::string> shards;
  for (const auto& e : fs::directory_iterator(src))
    if (e.path().extension() == ".safetensors") shards.push_back(e.path().string());
  std::sort(shards.begin(), shards.end());
  std::vector<std::string> extra = {"cp"};
  uint64_t cp_bytes = src_bytes;
  for (const auto& s : shards) {
    if (cp_bytes >= out_bytes) break;
    extra.push_back(s);
    cp_bytes += fs::file_size(s);
  }
  extra.push_back(cp2);
  make_dirs(cp2);
  drop_caches();
  evict(src);
  auto tc = Clock::now();
  Child c1 = run({"cp", "-r", src, cp1});
  Child c2 = run(extra);
  Child cs = run({"sync"});
  double cp_wall = secs(tc);
  if (c1.status || c2.status || cs.status) {
    std::fprintf(stderr, "bench_upscale: cp failed\n");
    return 1;
  }

  double up_rate = out_bytes / up.wall / 1e9, cp_rate = cp_bytes / cp_wall / 1e9;
  std::printf("\npage cache: %s, source evicted with fadvise(DONTNEED) before each step\n",
              dropped ? "dropped (drop_caches=3)" : "drop_caches not permitted");
  std::printf("%-28s %9s %9s %10s %12s\n", "step", "GB out", "wall s", "GB/s", "peak RSS MB");
  std::printf("%-28s %9.2f %9.1f %10.2f %12.1f\n", ("solar upscale --drop " + drop).c_str(), out_bytes / 1e9, up.wall, up_rate,
              up.max_rss_kb / 1024.0);
  std::printf("%-28s %9.2f %9.1f %10.2f %12.1f\n", "cp (+ sync)", cp_bytes / 1e9, cp_wall, cp_rate,
              std::max(c1.max_rss_kb, c2.max_rss_kb) / 1024.0);
  std::printf("upscale time / cp time, per byte: %.2fx (target <= 1.5x); peak RSS %s 2 GB\n", cp_rate / up_rate,
              up.max_rss_kb < 2 * 1024 * 1024 ? "<" : ">=");
  return 0;
}
