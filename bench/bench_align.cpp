// bench_align — `solar sft` and `solar dpo` training throughput beside TRL's
// SFTTrainer and DPOTrainer (bench/align_trl.py, run in the same invocation
// on the same shape, rows, sequence length and threads).
//   SFT: --rows rows of --seq tokens a step, packed examples (prompt and
//        completion halves, loss on the completion), through train::Trainer
//        with sft::SftSource and sft::sft_loss, as `solar sft --packing` runs.
//   DPO: --rows/2 pairs a step = --rows rows (chosen, rejected) of --seq
//        tokens, through dpo::PairSource and dpo::objective with the
//        reference log-probs cached (values do not change the work), as
//        `solar dpo` trains: one policy forward + backward per pair, so a DPO
//        step should cost what an SFT step on the same tokens costs —
//        dpo/sft below is that ratio.
// tokens/s = rows · seq / step time, the fastest of --steps after one
// warm-up step (the vCPUs share cores with neighbours: the fastest step is
// the least disturbed), for solar and TRL alike. GFLOP/s from
// 6·P + 12·L·T·d per token; MFU against kernels::gemm's peak at the row's
// precision, measured in the same run.
// TRL runs with the interpreter in $SOLAR_PYTHON (bash scripts/pyenv.sh prints
// it), else python3; without trl the TRL columns say "-".
// usage: bench_align [--presets 10m,50m] [--seq 256] [--rows 8] [--threads 2]
//          [--steps 4] [--precision auto|f32|bf16] [--no-trl]
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "bench.h"
#include "core/fs.h"
#include "core/log.h"
#include "dpo/dpo.h"
#include "sft/sft.h"
#include "train/trainer.h"

using namespace solar;

namespace {

struct Trl {
  double sft = 0, dpo = 0, dpo_ref = 0;
};

double field(const char* line, const char* key) {
  const char* k = std::strstr(line, key);
  return k ? std::atof(k + std::strlen(key)) : 0;
}

Trl trl_tokens_per_s(const std::string& preset, int T, int rows, int threads, int steps, bool bf16) {
  const char* py = std::getenv("SOLAR_PYTHON");
  std::string script = std::string(SOLAR_BENCH_DIR) + "/align_trl.py";
  std::string cmd = std::string(py && *py ? py : "python3") + " " + script + " --preset " + preset + " --seq " +
                    std::to_string(T) + " --rows " + std::to_string(rows) + " --threads " + std::to_string(threads) +
                    " --steps " + std::to_string(steps) + (bf16 ? " --bf16" : "") + " 2>/dev/null";
  Trl r;
  FILE* f = popen(cmd.c_str(), "r");
  if (!f) return r;
  char line[4096];
  while (fgets(line, sizeof line, f)) {
    if (!std::strstr(line, "\"sft_tokens_per_s\"")) continue;
    r = {field(line, "\"sft_tokens_per_s\": "), field(line, "\"dpo_tokens_per_s\": "),
         field(line, "\"dpo_ref_each_step_tokens_per_s\": ")};
  }
  pclose(f);
  return r;
}

std::vector<int32_t> random_ids(std::mt19937& rng, int n, int vocab) {
  std::vector<int32_t> v(static_cast<size_t>(n));
  for (auto& x : v) x = int32_t(4 + rng() % uint32_t(vocab - 4));
  return v;
}

// The fastest of `steps` steps after a warm-up one, in seconds.
double time_steps(train::Trainer& t, const train::Objective& obj, int steps) {
  t.step(obj);
  double best = 1e30;
  for (int s = 0; s < steps; ++s) {
    auto t0 = bench::Clock::now();
    t.step(obj);
    best = std::min(best, bench::secs(t0));
  }
  return best;
}

train::TrainConfig trainer_config(const std::string& preset, const std::string& out, int rows, int T, int threads,
                                  int steps, kernels::Precision p) {
  train::TrainConfig c;
  c.preset = preset, c.output_dir = out;
  c.batch_size = rows, c.seq_len = T, c.steps = steps + 1;
  c.lr = 1e-5f, c.warmup_steps = 0, c.eval_every = 0, c.save_every = 0;
  c.threads = threads, c.precision = p, c.quiet = true;
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  std::string presets = "10m,50m", precision = "auto";
  int T = 256, rows = 8, threads = 2, steps = 4;
  bool trl = true;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "bench_align: %s needs a value\n", a.c_str());
        std::exit(1);
      }
      return argv[++i];
    };
    if (a == "--presets") presets = next();
    else if (a == "--seq") T = std::atoi(next().c_str());
    else if (a == "--rows") rows = std::atoi(next().c_str());
    else if (a == "--threads") threads = std::atoi(next().c_str());
    else if (a == "--steps") steps = std::atoi(next().c_str());
    else if (a == "--precision") precision = next();
    else if (a == "--no-trl") trl = false;
    else {
      std::fprintf(stderr, "usage: bench_align [--presets 10m,50m] [--seq 256] [--rows 8] [--threads 2] [--steps 4] "
                           "[--precision auto|f32|bf16] [--no-trl]\n");
      return a == "-h" || a == "--help" ? 0 : 1;
    }
  }
  if (T < 16 || rows < 2 || rows % 2 || threads < 1 || steps < 1) {
    std::fprintf(stderr, "bench_align: expected --seq >= 16, an even --rows >= 2, --threads >= 1, --steps >= 1\n");
    return 1;
  }
  set_log_sink([](const LogRecord&) {});  // the trainers' logs are not the figures
  using kernels::Precision;
  const Precision prec = precision == "bf16"  ? Precision::BF16
                         : precision == "f32" ? Precision::F32
                                              : kernels::fastest_precision();
  const char* pname = prec == Precision::BF16 ? "bf16" : "f32";
  const double peak = bench::gemm_peak_gflops(prec, threads);
  std::printf("%s\nsolar at %s (TRL: fp32%s), %d thread(s), %d rows x %d tokens a step; gemm peak %.1f GFLOP/s\n",
              kernels::cpu_report().c_str(), pname, prec == Precision::BF16 ? " and bf16 autocast, the faster" : "",
              threads, rows, T, peak);
  std::printf("%-6s %6s %5s %9s %8s %6s %10s %6s %9s %10s\n", "preset", "params", "stage", "tok/s", "GFLOP/s", "MFU",
              "trl_tok/s", "ratio", "dpo/sft", "trl_ref/s");
  const std::string root = std::filesystem::temp_directory_path().string() + "/bench_align_" + std::to_string(getpid());
  for (const auto& name : bench::split(presets)) {
    const model::ModelConfig c = model::preset_config(name);
    std::mt19937 rng(1);
    // SFT: examples of half a row each, prompt then completion; packed two a row.
    std::vector<sft::Example> ex;
    const int n_ex = 2 * rows * (steps + 2);
    for (int e = 0; e < n_ex; ++e) {
      sft::Example x;
      x.ids = random_ids(rng, (T + 1) / 2, c.vocab_size);
      x.train.assign(x.ids.size(), 0);
      std::fill(x.train.begin() + std::ptrdiff_t(x.ids.size() / 2), x.train.end(), 1);
      ex.push_back(std::move(x));
    }
    sft::SourceOptions so;
    so.max_length = T + 1, so.batch_size = rows, so.packing = true;
    sft::Counts counts;
    auto sft_src = std::make_shared<const sft::SftSource>(ex, std::vector<sft::Example>{}, c.vocab_size, so, &counts);
    train::Trainer ts(trainer_config(name, root + "/sft-" + name, rows, T, threads, steps, prec), sft_src);
    const double sft_s = time_steps(ts, sft::sft_loss, steps);

    // DPO: a quarter-row prompt, completions filling the row.
    std::vector<dpo::Pair> pairs;
    const int n_pairs = rows / 2 * (steps + 2);
    for (int p = 0; p < n_pairs; ++p)
      pairs.push_back({random_ids(rng, T / 4, c.vocab_size), random_ids(rng, T + 1 - T / 4, c.vocab_size),
                       random_ids(rng, T + 1 - T / 4, c.vocab_size)});
    auto pair_src = std::make_shared<const dpo::PairSource>(std::move(pairs), std::vector<dpo::Pair>{}, rows / 2, T,
                                                            c.vocab_size, 0, 1);
    dpo::RefLogps cached;
    cached.logps.assign(size_t(2 * n_pairs), -100.0);
    auto ref = std::make_shared<const dpo::RefLogps>(std::move(cached));
    train::Trainer td(trainer_config(name, root + "/dpo-" + name, rows, T, threads, steps, prec), pair_src);
    const double dpo_s = time_steps(td, dpo::objective({}, ref), steps);

    Trl t;
    if (trl) {
      t = trl_tokens_per_s(name, T, rows, threads, steps, false);
      if (prec == Precision::BF16) {
        Trl b = trl_tokens_per_s(name, T, rows, threads, steps, true);
        t = {std::max(t.sft, b.sft), std::max(t.dpo, b.dpo), std::max(t.dpo_ref, b.dpo_ref)};
      }
    }
    const double fpt = bench::flops_per_token(c, T);
    for (int stage = 0; stage < 2; ++stage) {
      const double tps = double(rows) * T / (stage ? dpo_s : sft_s), theirs = stage ? t.dpo : t.sft;
      char ratio[32] = "-", tr[32] = "-", tref[32] = "-", dps[32] = "";
      if (theirs > 0) std::snprintf(ratio, sizeof ratio, "%.2fx", tps / theirs), std::snprintf(tr, sizeof tr, "%.0f", theirs);
      if (stage && t.dpo_ref > 0) std::snprintf(tref, sizeof tref, "%.0f", t.dpo_ref);
      if (stage) std::snprintf(dps, sizeof dps, "%.2f", dpo_s / sft_s);
      std::printf("%-6s %5.1fM %5s %9.0f %8.1f %5.1f%% %10s %6s %9s %10s\n", name.c_str(), c.num_parameters() / 1e6,
                  stage ? "dpo" : "sft", tps, fpt * tps / 1e9, 100 * fpt * tps / 1e9 / peak, tr, ratio, dps,
                  stage ? tref : "");
      std::fflush(stdout);
    }
  }
  std::filesystem::remove_all(root);
  std::printf("dpo/sft: a DPO step's time over an SFT step's on the same rows (1.0: no reference pass during "
              "training). trl_ref/s: TRL's DPO with the reference model run every step (its default).\n");
  return 0;
}
