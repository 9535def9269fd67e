#include "testing/testing.h"
#include "train/trainer.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <thread>

#include "core/error.h"
#include "core/fs.h"
#include "core/progress.h"
#include "data/shard.h"
#include "train/checkpoints.h"
#include "train/layers.h"
#include "train/net.h"

namespace fs = std::filesystem;
using namespace solar;
using solar::train::TrainConfig;

namespace {
using solar::testing::error_of;
using solar::testing::temp_dir;


// A byte-level corpus (ids < 256 of a 512 vocab): a slice of tinyshakespeare
// when the shared data is there, else a deterministic synthetic text.
std::string make_data(const std::string& root) {
  std::string text;
  std::string shakespeare = std::string(SOLAR_SHARED_DATA) + "/corpus/tinyshakespeare.txt";
  if (path_exists(shakespeare)) text = read_file_prefix(shakespeare, 24000);
  while (text.size() < 24000) text += "To be, or not to be, that is the question " + std::to_string(text.size() % 97) + ".\n";
  std::vector<uint32_t> train, val;
  for (size_t i = 0; i < text.size(); i++) (i < 22000 ? train : val).push_back(uint8_t(text[i]));
  std::string d = join_path(root, "data");
  make_dirs(d);
  data::write_shard(join_path(d, "train-00000.bin"), {512, 1, 2}, train);
  data::write_shard(join_path(d, "val-00000.bin"), {512, 1, 2}, val);
  return d;
}

// A model small enough that a step takes milliseconds.
std::string make_config(const std::string& root, int vocab = 512) {
  std::string p = join_path(root, "config.json");
  write_file_atomic(p, R"({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 32,
    "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
    "vocab_size": )" + std::to_string(vocab) + R"(, "max_position_embeddings": 64, "rms_norm_eps": 1e-5,
    "tie_word_embeddings": true})");
  return p;
}

TrainConfig base(const std::string& root) {
  TrainConfig c;
  c.data_dir = join_path(root, "data");
  c.config_file = join_path(root, "config.json");
  c.output_dir = join_path(root, "out");
  c.batch_size = 2, c.seq_len = 16, c.steps = 6;
  c.lr = 1e-2f, c.warmup_steps = 2, c.lr_schedule = "cosine";
  c.eval_every = 3, c.eval_batches = 2, c.save_every = 3;
  c.threads = 1, c.precision = kernels::Precision::F32, c.quiet = true;
  return c;
}

std::vector<std::string> cli_args(const TrainConfig& c) {
  return {"train", "--data", c.data_dir, "--config", c.config_file, "-o", c.output_dir, "--batch-size",
          std::to_string(c.batch_size), "--seq-len", std::to_string(c.seq_len), "--steps", std::to_string(c.steps),
          "--lr", std::to_string(c.lr), "--warmup-steps", std::to_string(c.warmup_steps), "--eval-every",
          std::to_string(c.eval_every), "--eval-batches", std::to_string(c.eval_batches), "--save-every",
          std::to_string(c.save_every), "-t", std::to_string(c.threads), "--precision",
          c.precision == kernels::Precision::F32 ? "f32" : "bf16", "-q"};
}

// Starts `solar args…` with output to log; rlimit_fsize > 0 caps file sizes
// (writes past it fail with EFBIG: a disk that fills up mid-checkpoint).
pid_t spawn(const std::vector<std::string>& args, const std::string& log, rlim_t rlimit_fsize = 0) {
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1), dup2(fd, 2);
    if (rlimit_fsize) {
      signal(SIGXFSZ, SIG_IGN);
      rlimit r{rlimit_fsize, rlimit_fsize};
      setrlimit(RLIMIT_FSIZE, &r);
    }
    std::vector<char*> argv{const_cast<char*>(SOLAR_BIN)};
    for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(SOLAR_BIN, argv.data());
    _exit(127);
  }
  return pid;
}

int wait_exit(pid_t pid) {
  int st = 0;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

// (step, loss) and (step, val_loss) as logged.
std::vector<std::pair<int64_t, double>> losses(const std::string& out, const char* key) {
  std::vector<std::pair<int64_t, double>> v;
  for (auto& j : read_metrics(join_path(out, "metrics.jsonl")))
    if (j.contains(key)) v.emplace_back(j["step"].get<int64_t>(), j[key].get<double>());
  return v;
}

}  // namespace

// The fault tests start from a run of 3 steps and its last checkpoint.
struct ThreeSteps {
  TrainConfig c;
  std::string ck, weights;  // checkpoint-3 and its model.safetensors bytes
};
ThreeSteps train_three_steps(const std::string& root) {
  make_data(root);
  make_config(root);
  ThreeSteps t{base(root), "", ""};
  t.c.steps = 3;
  train::run_training(t.c);
  t.ck = join_path(t.c.output_dir, "checkpoint-3");
  t.weights = read_file(join_path(t.ck, "model.safetensors"));
  return t;
}

// Atomic writes leave no ".tmp-" file or folder behind.
void expect_no_temporaries(const std::string& dir) {
  for (auto& e : fs::directory_iterator(dir))
    EXPECT_EQ(e.path().filename().string().find(".tmp-"), std::string::npos) << "leftover " << e.path();
}

// Determinism in every precision this CPU trains in natively (F32, and BF16
// on BF16 hardware), on one thread and on two. Sequences of 32 make attention
// run its heads in parallel, each thread calling gemm (the race matmul.cpp
// describes changed BF16 losses at random there).
struct PrecisionThreads {
  kernels::Precision precision;
  int threads;
};

std::vector<PrecisionThreads> precision_threads() {
  std::vector<PrecisionThreads> v;
  for (auto p : {kernels::Precision::F32, kernels::Precision::BF16})
    if (p == kernels::Precision::F32 || kernels::fastest_precision() == p)
      for (int t : {1, 2}) v.push_back({p, t});
  return v;
}

std::string name(const PrecisionThreads& p) {
  return std::string(p.precision == kernels::Precision::F32 ? "f32" : "bf16") + "_t" + std::to_string(p.threads);
}
void PrintTo(const PrecisionThreads& p, std::ostream* os) { *os << name(p); }

class TrainerDeterminism : public ::testing::TestWithParam<PrecisionThreads> {
 protected:
  TrainConfig config(const std::string& root) {
    make_data(root);
    make_config(root);
    TrainConfig c = base(root);
    c.seq_len = 32, c.precision = GetParam().precision, c.threads = GetParam().threads;
    return c;
  }
};

INSTANTIATE_TEST_SUITE_P(EveryPrecision, TrainerDeterminism, ::testing::ValuesIn(precision_threads()),
                         [](const ::testing::TestParamInfo<PrecisionThreads>& i) { return name(i.param); });

TEST_P(TrainerDeterminism, RerunIsBitIdentical) {
  std::string root = temp_dir("trainer_test_rerun");
  TrainConfig a = config(root), b = a;
  a.output_dir = join_path(root, "a"), b.output_dir = join_path(root, "b");
  train::run_training(a);
  train::run_training(b);
  EXPECT_EQ(losses(a.output_dir, "loss"), losses(b.output_dir, "loss"));
  EXPECT_EQ(losses(a.output_dir, "val_loss"), losses(b.output_dir, "val_loss"));
  EXPECT_TRUE(read_file(join_path(a.output_dir, "final/model.safetensors")) ==
              read_file(join_path(b.output_dir, "final/model.safetensors")));
  fs::remove_all(root);
}

TEST_P(TrainerDeterminism, KillNineMidRunThenResumeIsBitExact) {
  std::string root = temp_dir("trainer_test_resume");
  TrainConfig a = config(root);
  a.steps = 20, a.save_every = 10, a.eval_every = 5;
  a.output_dir = join_path(root, "straight");
  TrainConfig b = a;
  b.output_dir = join_path(root, "killed");

  ASSERT_EQ(wait_exit(spawn(cli_args(a), join_path(root, "a.log"))), 0) << read_file(join_path(root, "a.log"));

  pid_t pid = spawn(cli_args(b), join_path(root, "b.log"));
  auto t0 = std::chrono::steady_clock::now();
  while (!path_exists(join_path(b.output_dir, "checkpoint-10")) && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(60))
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  kill(pid, SIGKILL);
  int rc = wait_exit(pid);
  ASSERT_TRUE(path_exists(join_path(b.output_dir, "checkpoint-10"))) << read_file(join_path(root, "b.log"));
  if (rc != 128 + SIGKILL) std::fprintf(stderr, "note: the run finished (rc %d) before kill -9 landed\n", rc);
  EXPECT_FALSE(path_exists(join_path(b.output_dir, "final")) && rc == 128 + SIGKILL);

  auto args = cli_args(b);
  args.push_back("--resume");
  ASSERT_EQ(wait_exit(spawn(args, join_path(root, "c.log"))), 0) << read_file(join_path(root, "c.log"));

  auto la = losses(a.output_dir, "loss"), lb = losses(b.output_dir, "loss");
  ASSERT_EQ(la.size(), 20u);
  EXPECT_EQ(la, lb);  // exact doubles, steps 1..20 once each
  EXPECT_LT(la.back().second, la.front().second);  // and it learns
  auto va = losses(a.output_dir, "val_loss"), vb = losses(b.output_dir, "val_loss");
  EXPECT_EQ(va.size(), 4u);
  EXPECT_EQ(va, vb);
  for (auto f : {"final/model.safetensors", "checkpoint-20/model.safetensors", "checkpoint-20/optimizer.bin"})
    EXPECT_TRUE(read_file(join_path(a.output_dir, f)) == read_file(join_path(b.output_dir, f))) << f << " differs";
  EXPECT_NE(read_file(join_path(a.output_dir, "loss.svg")).find("<polyline"), std::string::npos);
  expect_no_temporaries(b.output_dir);
  fs::remove_all(root);
}

TEST(TrainerResume, NaNStopsWithClearErrorAndKeepsLastCheckpoint) {
  std::string root = temp_dir("trainer_test_nan");
  ThreeSteps t = train_three_steps(root);  // not a structured binding: clang 14 lambdas cannot capture one
  TrainConfig& c = t.c;
  const std::string &ck = t.ck, &before = t.weights;
  c.resume = true, c.steps = 9, c.lr = 1e30f, c.lr_schedule = "constant";
  std::string e = error_of([&] { train::run_training(c); });
  // Step 4 is taken with lr 1e30 from good weights; step 5 overflows.
  EXPECT_TRUE(e.rfind("step 5: loss is NaN", 0) == 0 || e.rfind("step 5: gradient norm is NaN", 0) == 0) << e;
  EXPECT_NE(e.find("checkpoint-3"), std::string::npos) << e;
  EXPECT_EQ(read_file(join_path(ck, "model.safetensors")), before);
  EXPECT_EQ(train::latest_checkpoint(c.output_dir), ck);
  auto m = read_metrics(join_path(c.output_dir, "metrics.jsonl"));
  ASSERT_FALSE(m.empty());
  EXPECT_EQ(m.back()["step"], 5);
  fs::remove_all(root);
}

TEST(TrainerResume, DiskFullDuringCheckpointKeepsThePreviousOne) {
  std::string root = temp_dir("trainer_test_diskfull");
  ThreeSteps t = train_three_steps(root);  // not a structured binding: clang 14 lambdas cannot capture one
  TrainConfig& c = t.c;
  const std::string &ck = t.ck, &before = t.weights;
  ASSERT_GT(before.size(), 64u * 1024);  // so the cap below fails the next checkpoint's weights
  c.steps = 6;
  auto args = cli_args(c);
  args.push_back("--resume");
  int rc = wait_exit(spawn(args, join_path(root, "log"), 64 * 1024));
  std::string log = read_file(join_path(root, "log"));
  EXPECT_EQ(rc, 1) << log;
  EXPECT_NE(log.find("solar: error:"), std::string::npos) << log;
  EXPECT_EQ(read_file(join_path(ck, "model.safetensors")), before);
  EXPECT_FALSE(path_exists(join_path(c.output_dir, "checkpoint-6")));
  EXPECT_EQ(train::latest_checkpoint(c.output_dir), ck);
  expect_no_temporaries(c.output_dir);
  fs::remove_all(root);
}

TEST(TrainerCheckpoints, KeepsTheLastK) {
  std::string root = temp_dir("trainer_test_keep");
  make_data(root);
  make_config(root);
  TrainConfig c = base(root);
  c.steps = 8, c.save_every = 2, c.save_total_limit = 2, c.eval_every = 0;
  train::run_training(c);
  std::vector<std::string> names;
  for (auto& e : fs::directory_iterator(c.output_dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"checkpoint-6", "checkpoint-8", "final", "loss.svg", "metrics.jsonl"}));
  auto st = nlohmann::json::parse(read_file(join_path(c.output_dir, "checkpoint-8/trainer_state.json")));
  EXPECT_EQ(st["global_step"], 8);
  EXPECT_EQ(st["micro_batches_seen"], 8);
  EXPECT_EQ(st["log_history"].size(), 8u);
  EXPECT_EQ(losses(c.output_dir, "val_loss").size(), 1u);  // eval_every 0: only at the end
  // A finished folder refuses a fresh run (it would mix two runs' checkpoints).
  EXPECT_NE(error_of([&] { train::run_training(c); }).find("--resume"), std::string::npos);
  fs::remove_all(root);
}

TEST(TrainerValidate, BadConfigsFailFastWithOneClearLine) {
  std::string root = temp_dir("trainer_test_validate");
  make_data(root);
  make_config(root);
  auto expect = [&](const std::function<void(TrainConfig&)>& edit, const std::string& want) {
    TrainConfig c = base(root);
    edit(c);
    std::string e = error_of([&] { train::run_training(c); });
    EXPECT_NE(e.find(want), std::string::npos) << "got: '" << e << "' want: '" << want << "'";
    EXPECT_FALSE(path_exists(c.output_dir)) << "failed config still created " << c.output_dir;
  };
  expect([](TrainConfig& c) { c.seq_len = 65; }, "--seq-len: expected <= max_position_embeddings 64");
  expect([&](TrainConfig& c) { c.config_file = make_config(root, 300); }, "vocab_size: expected the data's vocab_size 512");
  expect([](TrainConfig& c) { c.lr = 0; }, "--lr: expected 0 < lr");
  expect([](TrainConfig& c) { c.lr = NAN; }, "--lr: expected 0 < lr");
  expect([](TrainConfig& c) { c.lr = 1e35f; }, "--lr: expected 0 < lr <= 1e30");
  expect([](TrainConfig& c) { c.batch_size = 0; }, "--batch-size: expected");
  expect([](TrainConfig& c) { c.steps = 0; }, "--steps: expected");
  expect([](TrainConfig& c) { c.grad_accum = -1; }, "--grad-accum: expected");
  expect([](TrainConfig& c) { c.preset = "tiny"; }, "expected exactly one model source");
  expect([](TrainConfig& c) { c.save_dtype = "int4"; }, "--save-dtype");
  expect([](TrainConfig& c) { c.lr_schedule = "zigzag"; }, "--lr-schedule");
  expect([&](TrainConfig& c) { c.data_dir = join_path(root, "nope"); }, "not a folder");
  // Corpus too small: a train shard shorter than one window.
  std::string small = join_path(root, "small");
  make_dirs(small);
  data::write_shard(join_path(small, "train-00000.bin"), {512, 1, 2}, std::vector<uint32_t>(10, 5));
  expect([&](TrainConfig& c) { c.data_dir = small; }, "corpus too small");
  fs::remove_all(root);
}

// Every start is logged with what the losses depend on, and checkpoints keep
// the plan (max_steps, schedule) a resume compares against.
TEST(TrainerResume, RecordsPrecisionCpuAndPlan) {
  std::string root = temp_dir("trainer_test_record");
  ThreeSteps t = train_three_steps(root);
  auto m = read_metrics(join_path(t.c.output_dir, "metrics.jsonl"));
  ASSERT_FALSE(m.empty());
  EXPECT_EQ(m[0].value("event", ""), "start");
  EXPECT_EQ(m[0].value("precision", ""), "f32");
  EXPECT_EQ(m[0].value("threads", 0), 1);
  EXPECT_EQ(m[0].value("cpu", ""), kernels::cpu_summary());
  auto st = nlohmann::json::parse(read_file(join_path(t.ck, "trainer_state.json")));
  EXPECT_EQ(st["max_steps"], 3);
  EXPECT_EQ(st["precision"], "f32");
  EXPECT_EQ(st["lr_schedule"], "cosine");
  fs::remove_all(root);
}

// Resuming a finished run (like HF Trainer's) trains nothing, says so, exits 0
// and leaves every output as it was.
TEST(TrainerResume, FinishedRunIsLeftAlone) {
  std::string root = temp_dir("trainer_test_finished");
  make_data(root);
  make_config(root);
  TrainConfig c = base(root);
  c.steps = 7;  // not a multiple of save_every 3: the last step is saved anyway
  train::run_training(c);
  EXPECT_EQ(train::latest_checkpoint(c.output_dir), join_path(c.output_dir, "checkpoint-7"));
  auto snapshot = [&] {
    std::map<std::string, std::pair<std::string, fs::file_time_type>> files;
    for (auto& e : fs::recursive_directory_iterator(c.output_dir))
      if (e.is_regular_file()) files[e.path().string()] = {read_file(e.path().string()), e.last_write_time()};
    return files;
  };
  auto before = snapshot();
  auto args = cli_args(c);
  args.push_back("--resume");
  ASSERT_EQ(wait_exit(spawn(args, join_path(root, "log"))), 0) << read_file(join_path(root, "log"));
  std::string log = read_file(join_path(root, "log"));
  EXPECT_NE(log.find("already finished at step 7"), std::string::npos) << log;
  EXPECT_NE(log.find("nothing to do"), std::string::npos) << log;
  EXPECT_EQ(log.find("resuming"), std::string::npos) << log;
  EXPECT_TRUE(snapshot() == before);
  fs::remove_all(root);
}

// A --steps unlike the checkpoint's plan reshapes the schedule from the resume
// point: said, with old and new totals and the next lr; the same plan is not
// mentioned (here: a run killed between its last checkpoint and final/).
TEST(TrainerResume, ChangedStepsSayTheScheduleChanges) {
  std::string root = temp_dir("trainer_test_reshape");
  ThreeSteps t = train_three_steps(root);
  TrainConfig same = t.c;
  same.output_dir = join_path(root, "same");
  fs::copy(t.c.output_dir, same.output_dir, fs::copy_options::recursive);
  fs::remove_all(join_path(same.output_dir, "final"));
  auto args = cli_args(same);
  args.push_back("--resume");
  ASSERT_EQ(wait_exit(spawn(args, join_path(root, "log1"))), 0) << read_file(join_path(root, "log1"));
  std::string log = read_file(join_path(root, "log1"));
  EXPECT_EQ(log.find("schedule changes"), std::string::npos) << log;
  EXPECT_NE(log.find("nothing to train"), std::string::npos) << log;
  EXPECT_EQ(read_file(join_path(same.output_dir, "final/model.safetensors")),
            read_file(join_path(t.c.output_dir, "final/model.safetensors")));

  t.c.steps = 6;
  args = cli_args(t.c);
  args.push_back("--resume");
  ASSERT_EQ(wait_exit(spawn(args, join_path(root, "log2"))), 0) << read_file(join_path(root, "log2"));
  log = read_file(join_path(root, "log2"));
  EXPECT_NE(log.find("the learning-rate schedule changes at step 3"), std::string::npos) << log;
  EXPECT_NE(log.find("planned as cosine over 3 steps"), std::string::npos) << log;
  EXPECT_NE(log.find("now cosine over 6 steps"), std::string::npos) << log;
  EXPECT_EQ(losses(t.c.output_dir, "loss").size(), 6u);
  fs::remove_all(root);
}

namespace {

// The parts: stepping a Trainer by hand with an objective built from Net's
// forward / cross_entropy / backward (all-ones mask) gives the bytes
// run_training writes; a fully masked objective leaves the weights to decay
// alone (no loss gradient) and reports loss 0.
TEST(TrainerParts, StepByHandWithMaskedObjectiveEqualsRunTraining) {
  std::string root = temp_dir("trainer_parts");
  make_data(root);
  make_config(root);
  TrainConfig c = base(root);
  c.eval_every = 0, c.save_every = 0;
  train::run_training(c);
  const std::string want = read_file(join_path(c.output_dir, "final/model.safetensors"));

  c.output_dir = join_path(root, "parts");
  train::Trainer t(c);
  train::Objective masked = [](train::Net& m, const train::Batch& b, float scale, train::Metrics*) {
    std::vector<float> ones(size_t(b.B) * b.T, 1.f);
    m.forward(b, true);
    double l = train::cross_entropy<float>(m.logits(), m.targets(), int64_t(b.B) * b.T, m.config().vocab_size, scale,
                                           ones.data());
    m.backward(m.logits());
    return l;
  };
  int steps = 0;
  while (!t.done()) {
    train::StepResult r = t.step(masked);
    EXPECT_TRUE(std::isfinite(r.loss) && r.loss > 0);
    ++steps;
  }
  EXPECT_EQ(steps, c.steps);
  EXPECT_GT(t.evaluate(), 0);
  t.finish();
  EXPECT_EQ(read_file(join_path(c.output_dir, "final/model.safetensors")), want);

  // Everything masked: loss 0, no NaN.
  c.output_dir = join_path(root, "none"), c.steps = 1, c.warmup_steps = 0;
  train::Trainer z(c);
  train::StepResult r = z.step([](train::Net& m, const train::Batch& b, float scale, train::Metrics*) {
    std::vector<float> zeros(size_t(b.B) * b.T, 0.f);
    return double(m.forward_backward(b.tokens.data(), b.B, b.T, scale, zeros.data()));
  });
  EXPECT_EQ(r.loss, 0.0);
  EXPECT_EQ(r.grad_norm, 0.f);
}

}  // namespace

// Every regular file under dir with its bytes: "nothing was touched" is this map unchanged.
static std::map<std::string, std::string> file_bytes(const std::string& dir) {
  std::map<std::string, std::string> m;
  for (auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) m[e.path().string()] = read_file(e.path().string());
  return m;
}

// Before: global_step -5 truncated metrics.jsonl from 22 lines to 2 and wrote
// checkpoint--4; 1e15 exited 0 without training; type errors came out as raw
// JSON-library messages with no file.
TEST(TrainerResume, CorruptStateIsRefusedBeforeAnythingIsWritten) {
  std::string root = temp_dir("trainer_test_corrupt_state");
  ThreeSteps t = train_three_steps(root);
  TrainConfig c = t.c;
  c.resume = true, c.steps = 6;
  const std::string state = join_path(t.ck, "trainer_state.json");
  const std::string good = read_file(state);
  for (bool with_final : {true, false}) {
    if (!with_final) fs::remove_all(join_path(c.output_dir, "final"));
    for (const auto& [text, field] : std::vector<std::pair<std::string, std::string>>{
             {R"({"global_step": -5})", "global_step"},
             {R"({"global_step": 1e15})", "global_step"},
             {R"({"global_step": 1000000000000000})", "global_step"},
             {R"({"global_step": "3"})", "global_step"},
             {R"({"global_step": 3, "seed": "abc"})", "seed"},
             {R"({"global_step": 3, "batch_size": [2]})", "batch_size"},
             {R"({"global_step": 3, "log_history": [{"step": 1, "loss": "x"}]})", "log_history[0].loss"},
             {R"({"global_step": 3, "eval_history": [{"step": 3, "val_loss": null}]})", "eval_history[0].val_loss"},
             {"not json", ""}}) {
      write_file_atomic(state, text);
      auto before = file_bytes(c.output_dir);
      std::string e = error_of([&] { train::run_training(c); });
      EXPECT_EQ(e.rfind(state + ": " + field, 0), 0u) << text << " -> " << e;
      EXPECT_TRUE(file_bytes(c.output_dir) == before) << text << ": the output folder changed";
    }
  }
  write_file_atomic(state, good);
  train::run_training(c);
  EXPECT_EQ(losses(c.output_dir, "loss").size(), 6u);
  fs::remove_all(root);
}

// A run of `steps` saving every `every` steps and keeping 2 checkpoints, into root/out.
static TrainConfig rotating(const std::string& root, int64_t steps, int64_t every) {
  make_data(root);
  make_config(root);
  TrainConfig c = base(root);
  c.steps = steps, c.save_every = every, c.save_total_limit = 2, c.eval_every = 0;
  return c;
}

// What kill -9 during rotation leaves, in both designs: the old in-place
// deletion's half-deleted checkpoint-N folders (only config.json and
// trainer_state.json; no weights; empty) and the new rename-aside's dot
// leftovers. Resume takes the newest complete checkpoint, every step is
// trained and logged once, the result is bit-identical to an uninterrupted
// run, and nothing incomplete or left over remains.
TEST(TrainerCheckpoints, RotationLeftoversAreIgnoredResumeCountsRight) {
  std::string root = temp_dir("trainer_test_rotation");
  TrainConfig c = rotating(root, 8, 2), straight = c;
  c.lr_schedule = straight.lr_schedule = "constant";  // the same lr whatever --steps
  c.warmup_steps = straight.warmup_steps = 0;
  straight.steps = 12, straight.output_dir = join_path(root, "straight");
  train::run_training(straight);
  train::run_training(c);

  const std::string out = c.output_dir, dead = std::to_string(solar::testing::dead_pid());
  auto copy = [&](const std::string& from, const std::string& to, std::vector<std::string> drop) {
    fs::copy(join_path(out, from), join_path(out, to), fs::copy_options::recursive);
    for (const auto& f : drop) fs::remove(join_path(join_path(out, to), f));
  };
  copy("checkpoint-6", "checkpoint-4", {"model.safetensors", "optimizer.bin"});
  make_dirs(join_path(out, "checkpoint-2"));
  copy("checkpoint-8", "checkpoint-10", {"model.safetensors"});
  copy("checkpoint-6", ".checkpoint-6.old-" + dead, {"optimizer.bin"});
  copy("checkpoint-8", ".checkpoint-10.tmp-" + dead, {"trainer_state.json"});
  copy("checkpoint-8", "checkpoint-8.old-" + dead, {});
  EXPECT_EQ(train::latest_checkpoint(out), join_path(out, "checkpoint-8"));

  solar::testing::SinkGuard guard;
  std::string log;
  set_log_sink([&](const LogRecord& r) { (log += r.message) += "\n"; });
  c.steps = 12, c.resume = true;
  train::run_training(c);
  EXPECT_NE(log.find("resuming from " + join_path(out, "checkpoint-8") + " (step 8)"), std::string::npos) << log;
  for (const char* n : {"checkpoint-2 is incomplete (no trainer_state.json)", "checkpoint-4 is incomplete (no optimizer.bin)",
                        "checkpoint-10 is incomplete (no model.safetensors)"})
    EXPECT_NE(log.find(n), std::string::npos) << log;
  std::vector<std::string> names;
  for (auto& e : fs::directory_iterator(out)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"checkpoint-10", "checkpoint-12", "final", "loss.svg", "metrics.jsonl"}));
  EXPECT_EQ(train::checkpoint_folders(out).front().missing, "");
  auto l = losses(out, "loss");
  ASSERT_EQ(l.size(), 12u);
  for (int64_t s = 1; s <= 12; ++s) EXPECT_EQ(l[size_t(s - 1)].first, s);
  EXPECT_EQ(l, losses(straight.output_dir, "loss"));
  EXPECT_TRUE(read_file(join_path(out, "final/model.safetensors")) ==
              read_file(join_path(straight.output_dir, "final/model.safetensors")));
  fs::remove_all(root);
}

// kill -9 at random instants of a run that saves and prunes every step: after
// every kill each checkpoint-N folder is complete, and the resumed run ends
// bit-identical to an uninterrupted one with every step logged once.
TEST(TrainerCheckpoints, KillNineLoopNeverLeavesAnIncompleteCheckpoint) {
  std::string root = temp_dir("trainer_test_kill_loop");
  TrainConfig c = rotating(root, 120, 1), straight = c;
  straight.output_dir = join_path(root, "straight");
  train::run_training(straight);

  auto args = cli_args(c);
  args.insert(args.end(), {"--save-total-limit", "2", "--resume"});
  std::mt19937 rng(10);
  int kills = 0, runs = 0;
  while (!path_exists(join_path(c.output_dir, "final")) && runs < 40) {
    ++runs;
    pid_t pid = spawn(args, join_path(root, "log"));
    std::this_thread::sleep_for(std::chrono::milliseconds(20 + rng() % 200));
    kill(pid, SIGKILL);
    int rc = wait_exit(pid);
    kills += rc == 128 + SIGKILL;
    if (rc != 128 + SIGKILL) ASSERT_EQ(rc, 0) << read_file(join_path(root, "log"));
    for (const auto& f : train::checkpoint_folders(c.output_dir))
      EXPECT_EQ(f.missing, "") << f.path << " after kill " << kills;
    EXPECT_LE(train::complete_checkpoints(c.output_dir).size(), 3u);  // 2, and the one being saved
  }
  std::fprintf(stderr, "note: %d runs, %d killed by kill -9\n", runs, kills);
  EXPECT_GE(kills, 3);
  if (!path_exists(join_path(c.output_dir, "final")))
    ASSERT_EQ(wait_exit(spawn(args, join_path(root, "log"))), 0) << read_file(join_path(root, "log"));
  auto l = losses(c.output_dir, "loss");
  ASSERT_EQ(l.size(), 120u);
  EXPECT_EQ(l, losses(straight.output_dir, "loss"));
  EXPECT_TRUE(read_file(join_path(c.output_dir, "final/model.safetensors")) ==
              read_file(join_path(straight.output_dir, "final/model.safetensors")));
  // The last run removed what the killed ones left.
  for (auto& e : fs::directory_iterator(c.output_dir)) {
    const std::string n = e.path().filename().string();
    EXPECT_TRUE(n.find(".tmp-") == std::string::npos && n.find(".old-") == std::string::npos) << n;
  }
  fs::remove_all(root);
}

namespace {

// A BatchSource of packed rows (two examples each, the second half weighted),
// a pure function of the index, and an objective that reports a metric.
class PackedSource : public train::BatchSource {
 public:
  int vocab_size() const override { return 512; }
  void train_batch(uint64_t index, train::Batch& b) const override { fill(1000 + index, b); }
  uint64_t val_batches() const override { return 2; }
  void val_batch(uint64_t i, train::Batch& b) const override { fill(i, b); }

 private:
  static void fill(uint64_t seed, train::Batch& b) {
    b.B = 2, b.T = 16;
    b.tokens = solar::testing::random_tokens(b.B, b.T, 256, seed);
    b.weight.clear(), b.pos.clear(), b.seg.clear();
    for (int r = 0; r < b.B; ++r)
      for (int t = 0; t < b.T; ++t) {
        b.pos.push_back(t < 8 ? t : t - 8);
        b.seg.push_back(t < 8 ? 0 : 1);
        b.weight.push_back(t % 8 >= 4 && t != 7 ? 1.f : 0.f);
      }
    b.ids = {int64_t(seed), int64_t(seed)};
  }
};

double reporting_loss(train::Net& m, const train::Batch& b, float scale, train::Metrics* metrics) {
  (*metrics)["rows/first_id"] = double(b.ids[0]);
  return train::next_token_loss(m, b, scale, metrics);
}

// A source and an objective of one's own: metrics.jsonl carries the
// objective's metrics (mean over micro-batches; evals prefixed "eval_"), no
// token shards are needed, and a run stopped at a checkpoint and resumed
// ends with the bytes of an uninterrupted one.
TEST(TrainerParts, OwnBatchSourceMetricsAndExactResume) {
  std::string root = temp_dir("trainer_source");
  make_config(root);
  TrainConfig c = base(root);
  c.data_dir.clear(), c.grad_accum = 2, c.steps = 4, c.save_every = 2, c.eval_every = 2;
  auto source = std::make_shared<const PackedSource>();
  {
    train::Trainer t(c, source);
    t.run(nullptr, reporting_loss);
  }
  const std::string want = read_file(join_path(c.output_dir, "final/model.safetensors"));
  bool step_seen = false, eval_seen = false;
  for (auto& j : read_metrics(join_path(c.output_dir, "metrics.jsonl"))) {
    if (j.value("step", 0) == 3 && j.contains("loss")) {
      EXPECT_EQ(j["rows/first_id"].get<double>(), 1000 + 4.5);  // micro-batches 4 and 5 of step 3
      step_seen = true;
    }
    if (j.value("step", 0) == 4 && j.contains("val_loss")) {
      EXPECT_EQ(j["eval_rows/first_id"].get<double>(), 0.5);  // val batches 0 and 1
      eval_seen = true;
    }
  }
  EXPECT_TRUE(step_seen && eval_seen);

  c.output_dir = join_path(root, "resumed");
  {
    train::Trainer t(c, source);
    for (int i = 0; i < 2; ++i) t.step(reporting_loss);
    t.save();
  }
  c.resume = true;
  train::Trainer t(c, source);
  EXPECT_EQ(t.global_step(), 2);
  t.run(nullptr, reporting_loss);
  EXPECT_EQ(read_file(join_path(c.output_dir, "final/model.safetensors")), want);
  // "tokens" counts the batches' B*T, carried across the resume.
  int64_t tokens = 0;
  for (auto& j : read_metrics(join_path(c.output_dir, "metrics.jsonl")))
    if (j.contains("tokens")) tokens = j["tokens"].get<int64_t>();
  EXPECT_EQ(tokens, 4 * 2 * 2 * 16);
}

}  // namespace
