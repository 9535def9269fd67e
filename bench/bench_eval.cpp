// bench_eval — `solar eval` items per second beside lm-evaluation-harness
// (PyPI lm_eval 0.4, HF backend, transformers in fp32: bench/eval_lmeval.py)
// in the same run: the same random checkpoint of --preset with the Llama-2
// tokenizer, the same local files and items (--limit, in file order as lm_eval
// 0.4 takes them), the same threads.
//   arc_easy        zero-shot, four choices an item: an item's context runs
//                   once, its choices as branches of one token tree
//   mmlu_<subject>  five shots (the subject's first five dev questions): the
//                   shared prefix stays in the KV cache across items
// GFLOP/s counts the blocks' 2·P_matmul FLOPs per position the model actually
// ran (attention and the lm_head rows left out), against kernels::gemm's peak at f32 measured here.
// usage: bench_eval [--preset 110m] [--limit 100] [--subject high_school_psychology]
//                   [--threads 2] [--batch-size 1] [--no-lmeval]
// lm_eval runs with $SOLAR_PYTHON (bash scripts/pyenv.sh prints it), else python3.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "bench.h"
#include "core/fs.h"
#include "core/log.h"
#include "engine/session.h"
#include "eval/eval.h"
#include "formats/hf.h"
#include "model/init.h"

using namespace solar;

namespace {

std::string shared_data() { return std::string(SOLAR_BENCH_DIR) + "/../../shared/data"; }

void write_model(const std::string& dir, const std::string& preset) {
  model::ModelConfig c = model::preset_config(preset);
  c.vocab_size = 32000;
  c.torch_dtype = DType::F32;
  std::vector<std::vector<float>> data;
  std::vector<TensorView> views;
  for (const auto& name : model::expected_tensor_names(c)) {
    auto shape = model::expected_shape(c, name);
    size_t n = 1;
    for (auto d : shape) n *= size_t(d);
    data.emplace_back(n);
    model::init_tensor(c, name, 1234, data.back().data(), DType::F32, n);
    views.push_back({name, DType::F32, shape, data.back().data(), n * 4});
  }
  formats::HfWriteOptions o;
  o.force = true;
  o.tokenizer_path = shared_data() + "/tokenizers/llama2.model";
  formats::write_hf(dir, c, views, o);
}

std::map<std::string, double> lmeval_items_per_s(const std::string& model, const std::string& tasks, int limit,
                                                 int threads, int batch) {
  const char* py = std::getenv("SOLAR_PYTHON");
  std::string cmd = std::string(py && *py ? py : "python3") + " " + SOLAR_BENCH_DIR + "/eval_lmeval.py --model " +
                    model + " --tasks " + tasks + " --limit " + std::to_string(limit) + " --threads " +
                    std::to_string(threads) + " --batch-size " + std::to_string(batch) + " 2>/dev/null";
  std::map<std::string, double> r;
  FILE* f = popen(cmd.c_str(), "r");
  if (!f) return r;
  char line[4096];
  while (fgets(line, sizeof line, f)) {
    const char* t = std::strstr(line, "\"task\": \"");
    const char* v = std::strstr(line, "\"items_per_s\": ");
    if (!t || !v) continue;
    t += 9;
    r[std::string(t, std::strchr(t, '"'))] = std::atof(v + 15);
  }
  pclose(f);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  std::string preset = "110m", subject = "high_school_psychology";
  int limit = 100, threads = 2, batch = 1;
  bool lmeval = true;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "bench_eval: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--preset") preset = val();
    else if (a == "--limit") limit = std::atoi(val().c_str());
    else if (a == "--subject") subject = val();
    else if (a == "--threads") threads = std::atoi(val().c_str());
    else if (a == "--batch-size") batch = std::atoi(val().c_str());
    else if (a == "--no-lmeval") lmeval = false;
    else {
      std::fprintf(stderr, "usage: bench_eval [--preset 110m] [--limit 100] [--subject NAME] [--threads 2] "
                           "[--batch-size 1] [--no-lmeval]\n");
      return 2;
    }
  }
  if (limit < 1 || threads < 1 || batch < 1) {
    std::fprintf(stderr, "bench_eval: expected --limit, --threads and --batch-size >= 1\n");
    return 2;
  }
  if (!path_exists(shared_data() + "/eval/arc_easy.jsonl")) {
    std::fprintf(stderr, "bench_eval: %s/eval is absent\n", shared_data().c_str());
    return 1;
  }
  set_log_level(LogLevel::Warn);
  std::string dir = std::filesystem::temp_directory_path().string() + "/solar_bench_eval_" + preset;
  write_model(dir + "/model", preset);
  double peak = bench::gemm_peak_gflops(kernels::Precision::F32, threads);
  kernels::set_num_threads(threads);
  std::printf("%s\n%s preset (f32, vocab 32000), %d thread(s), %d items a task; gemm peak %.1f GFLOP/s (f32)\n",
              kernels::cpu_report().c_str(), preset.c_str(), threads, limit, peak);
  std::string mmlu = "mmlu_" + subject;
  std::map<std::string, double> theirs;
  if (lmeval) theirs = lmeval_items_per_s(dir + "/model", "arc_easy," + mmlu, limit, threads, batch);

  engine::Session s = engine::open_session(dir + "/model");
  const model::ModelConfig& c = s.config();
  const double d = c.hidden_size;  // the blocks' matmul parameters (the lm_head runs only for scored rows)
  double P = c.num_hidden_layers * (d * (c.q_dim() + 2.0 * c.kv_dim()) + c.q_dim() * d + 3.0 * d * c.intermediate_size);
  std::printf("%-28s %6s %9s %10s %8s %7s %12s %8s\n", "task", "items", "items/s", "positions", "GFLOP/s", "of peak",
              "lm_eval it/s", "speedup");
  for (const std::string& task : {std::string("arc_easy"), mmlu}) {
    eval::EvalConfig cfg;
    cfg.model = dir + "/model";
    cfg.tasks = {task};
    cfg.num_fewshot = task == "arc_easy" ? 0 : 5;
    cfg.limit = limit;
    cfg.files.data_dir = shared_data() + "/eval";
    cfg.out = dir + "/out-" + task;
    cfg.harness = eval::Harness::Current;
    cfg.quiet = true;
    remove_all(cfg.out);
    {  // warm-up: oneDNN's kernels, the first pages of the weights
      eval::EvalConfig w = cfg;
      w.limit = 2;
      w.out = dir + "/warm";
      remove_all(w.out);
      eval::run_eval(w, s);
    }
    auto t0 = bench::Clock::now();
    eval::EvalResults r = eval::run_eval(cfg, s);
    double sec = bench::secs(t0);
    double gflops = 2 * P * double(r.tokens_run) / sec / 1e9;
    char lm[32] = "-", sp[32] = "-";
    auto it = theirs.find(task);
    if (it != theirs.end() && it->second > 0) {
      std::snprintf(lm, sizeof lm, "%.2f", it->second);
      std::snprintf(sp, sizeof sp, "%.1fx", double(r.items) / sec / it->second);
    }
    std::printf("%-28s %6lld %9.2f %10lld %8.1f %6.1f%% %12s %8s\n", (task + (cfg.num_fewshot ? " (5-shot)" : " (0-shot)")).c_str(),
                (long long)r.items, double(r.items) / sec, (long long)r.tokens_run, gflops, 100 * gflops / peak, lm, sp);
  }
  std::printf("positions: tokens run through the model (the prefix cache and the token trie save the rest); "
              "lm_eval: batch size %d, fp32%s\n", batch, lmeval ? "" : " (not run: --no-lmeval)");
  remove_all(dir);
  return 0;
}
