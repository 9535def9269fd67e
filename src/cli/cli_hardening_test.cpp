// Issue 10 through the binary: inputs that are not regular files, integer
// flags out of range, outputs that would replace their own input, leftovers
// of killed writers, and `tokenizer train` over an existing file.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <tuple>

#include "core/fs.h"
#include "data/shard.h"
#include "testing/models.h"

namespace solar::cli {
namespace {

using testing::dead_pid;
using testing::temp_dir;

bool has(const std::string& s, const std::string& needle) { return s.find(needle) != std::string::npos; }

// `solar args` under a 60 s timeout (exit 124: it hung); stdout+stderr in *out.
int solar(const std::string& args, std::string* out) { return testing::run_solar(args, out, "", 60); }


const std::string kTok = std::string(SOLAR_SHARED_DATA) + "/models/stories260K/tok512.bin";

struct Files {
  std::string d, model, fifo, text, data;
  Files() {
    d = temp_dir("cli_hardening");
    model = join_path(d, "m");
    testing::write_random_model(model, testing::tiny_config(4), 1);
    fifo = join_path(d, "fifo");
    mkfifo(fifo.c_str(), 0600);
    text = join_path(d, "text.txt");
    write_file_atomic(text, "Once upon a time there was a cat.\n\nIt sat on a mat.\n");
    data = join_path(d, "data");  // token shards for train, in tiny's vocabulary
    make_dirs(data);
    std::vector<uint32_t> tokens(4096);
    for (size_t i = 0; i < tokens.size(); i++) tokens[i] = uint32_t(i * 7919 % 512);
    data::write_shard(join_path(data, "train-00000.bin"), {512, 1, 2}, tokens);
  }
  ~Files() { remove_all(d); }
};

// Before: `inspect FIFO` and `--tokenizer FIFO` blocked forever, `-f /dev/zero`
// read until out of memory, `-f DIR` was an empty prompt.
TEST(CliInputs, OnlyRegularFilesAreReadAndNothingBlocks) {
  Files f;
  const std::string m = " -m " + f.model, gen = "generate -n 1 --temp 0" + m;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"inspect " + f.fifo, f.fifo + ": expected a regular file, got a FIFO"},
      {gen + " -p x --tokenizer " + f.fifo, f.fifo + ": expected a regular file, got a FIFO"},
      {gen + " -f " + f.fifo, f.fifo + ": expected a regular file, got a FIFO"},
      {gen + " -f /dev/zero", "/dev/zero: expected a regular file, got a character device"},
      {gen + " -f " + f.d, f.d + ": expected a regular file, got a folder"},
      {"logits --ids 1 -m " + f.fifo, f.fifo + ": expected a regular file, got a FIFO"},
      {"convert -m " + f.model + " -o " + join_path(f.d, "o") + " --tokenizer " + f.text, f.text + ": "},
      {"init --config " + f.fifo + " -o " + join_path(f.d, "o"), f.fifo + ": expected a regular file"},
      {"upscale --recipe " + f.fifo + " -o " + join_path(f.d, "o"), f.fifo + ": expected a regular file"},
      {"merge --recipe " + f.fifo + " -o " + join_path(f.d, "o"), f.fifo + ": expected a regular file"},
      {"tokenize -m " + kTok + " -i " + f.fifo + " -o " + join_path(f.d, "o"), f.fifo + ": expected a regular file"},
      {"tokenizer-train --vocab-size 300 --input " + f.fifo + " -o " + join_path(f.d, "t.model"),
       f.fifo + ": expected a regular file, got a FIFO"},
      {"train --data " + f.data + " -o " + join_path(f.d, "o") + " --config " + f.fifo, f.fifo + ": expected a regular file"},
  };
  for (const auto& [args, msg] : cases) {
    if (has(args, kTok) && !path_exists(kTok)) continue;  // shared data absent
    std::string out;
    int rc = solar("--log-level error " + args + " < /dev/null", &out);
    EXPECT_EQ(rc, 1) << args << ": " << out;
    EXPECT_TRUE(has(out, "solar: error: ")) << args << ": " << out;
    if (!msg.empty()) {
      EXPECT_TRUE(has(out, msg)) << args << ": " << out;
    }
  }
}

// Before: --repeat-last-n -5 and tokenize-text --vocab-size -1 were accepted;
// pipeline --heads 0 divided by zero; upscale --drop 2^32+2 was read as 2.
TEST(CliBounds, IntegerFlagsOutOfRangeAreUsageErrors) {
  Files f;
  const std::string m = " -m " + f.model + " -p x";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"generate" + m + " --repeat-last-n -5", "--repeat-last-n: expected an integer in [-1, 2147483647], got -5"},
      {"generate" + m + " -n -2", "-n: expected an integer in [-1, 1000000000], got -2"},
      {"generate" + m + " -s -7", "-s: expected an integer in [-1,"},
      {"chat -m " + f.model + " -n 4294967296", "-n: expected an integer in [-1, 1000000000]"},
      {"logits -m " + f.model + " --ids 1 --batch -1", "--batch: expected an integer in [0, 2147483647], got -1"},
      {"logits -m " + f.model + " --ids 1 --top 4294967297", "--top: expected an integer in [0,"},
      // Before: exit 1, "token id 600 out of range [0, 512)" naming no flag.
      {"logits -m " + f.model + " --ids 1,600", "--ids: expected token ids in [0, 512), got 600"},
      {"logits -m " + f.model + " --ids -3", "--ids: expected token ids in [0, 512), got -3"},
      {"tokenize-text" + m + " --vocab-size -1", "--vocab-size: expected an integer in [0, 16777216], got -1"},
      {"init --preset tiny --layers 4294967298 -o " + join_path(f.d, "o"), "--layers: expected a value in [0, 4096]"},
      {"init --preset tiny --seed -1 -o " + join_path(f.d, "o"), "--seed: expected an integer in [0,"},
      {"upscale" + std::string(" -m ") + f.model + " --drop 4294967298 --dry-run", "--drop: expected an integer in [0,"},
      {"pipeline --heads 0", "--heads: expected an integer in [1, 4096], got 0"},
      {"pipeline --seq-len 1073741824", "--seq-len: expected an integer in [1, 1048576]"},
      {"pipeline --vocab-size -1", "--vocab-size: expected an integer in [260, 1048576], got -1"},
      {"tokenize -m x -i x -o x --seq-len -1", "--seq-len: expected an integer in [0, 16777216], got -1"},
      {"tokenizer-train --vocab-size 100 --input x -o x", "--vocab-size: expected an integer in [260, 1048576]"},
      {"generate" + m + " -t 2147483647", "-t: expected 0 (all cores) or 1.."},
      // Before: a scalar flag given twice kept the last value silently.
      {"generate" + m + " -n 1 -n 2", "-n: given twice (expected once"},
      {"generate" + m + " -n 1 --n-predict=2", "--n-predict: given twice (expected once"},
      {"merge -m a -m b -o x -o y", "-o: given twice (expected once"},
      // Before: exit 1, as if a file were at fault.
      {"chat -m " + f.model + " --tokenizer " + kTok + " --chat-template foo",
       "--chat-template: expected solar, llama2, mistral or chatml, got 'foo'"},
  };
  for (const auto& [args, msg] : cases) {
    if (has(args, kTok) && !path_exists(kTok)) continue;  // shared data absent
    std::string out;
    EXPECT_EQ(solar(args + " < /dev/null", &out), 2) << args << ": " << out;
    EXPECT_TRUE(has(out, msg)) << args << ": " << out;
  }
}

// Before: `convert -m a -o a/model.safetensors --force` turned the input's
// weights file into a folder.
TEST(CliOutputs, OutputThatIsOrHoldsOrSitsInTheInputIsRefused) {
  Files f;
  const std::string weights = join_path(f.model, "model.safetensors");
  const std::string before = read_file(weights);
  const std::vector<std::string> cases = {
      "convert -m " + f.model + " -o " + weights + " --force",
      "convert -m " + f.model + " -o " + f.model + " --force",
      "convert -m " + f.model + " -o " + f.d + " --force",
      "upscale -m " + f.model + " --drop 1 -o " + join_path(f.model, "up") + " --force",
      "merge -m " + f.model + " -m " + f.model + " -o " + f.model + "/ --force",
      "init --preset tiny --config " + join_path(f.model, "config.json") + " -o " + f.model + " --force",
      "tokenizer-train --vocab-size 300 --input " + f.text + " -o " + f.text + " --force",
      "tokenize -m " + join_path(f.model, "config.json") + " -i " + f.text + " -o " + f.d + " --force",
  };
  for (const auto& args : cases) {
    std::string out;
    EXPECT_EQ(solar(args, &out), 2) << args << ": " << out;
    EXPECT_TRUE(has(out, "-o/--output: ")) << args << ": " << out;
    EXPECT_TRUE(has(out, " overlaps the input ")) << args << ": " << out;
  }
  EXPECT_EQ(read_file(weights), before);
  EXPECT_TRUE(path_exists(f.text));
  std::string out;
  EXPECT_EQ(solar("convert -m " + f.model + " -o " + join_path(f.d, "m2") + " --force", &out), 0) << out;
}

// Before: an interrupted convert/upscale/merge/init left OUT.tmp-PID (and
// OUT.old-PID with --force) forever.
TEST(CliOutputs, LeftoversOfKilledWritersAreRemovedByTheNextRun) {
  Files f;
  const std::string dead = std::to_string(dead_pid()), alive = std::to_string(getpid());
  for (const char* cmd : {"convert -m M -o OUT", "init --preset tiny -o OUT", "upscale -m M --drop 1 -o OUT",
                          "merge -m M -m M -o OUT", "convert -m M -o OUT.gguf"}) {
    std::string args = cmd;
    const bool gguf = has(args, "OUT.gguf");
    const std::string outp = join_path(f.d, gguf ? "out.gguf" : "out");
    args.replace(args.find("-o OUT"), std::string::npos, "-o " + outp + " --force");
    while (args.find(" M ") != std::string::npos) args.replace(args.find(" M "), 3, " " + f.model + " ");
    for (const std::string& n : {".tmp-" + dead, ".old-" + dead, ".tmp-" + alive}) {
      if (gguf && n.starts_with(".old")) continue;
      make_dirs(outp + n);
      write_file_atomic(join_path(outp + n, "model.safetensors"), std::string(4096, 'x'));
    }
    std::string out;
    ASSERT_EQ(solar(args, &out), 0) << args << ": " << out;
    EXPECT_FALSE(path_exists(outp + ".tmp-" + dead)) << args;
    EXPECT_FALSE(path_exists(outp + ".old-" + dead)) << args;
    EXPECT_TRUE(path_exists(outp + ".tmp-" + alive)) << args << ": a live process's temporary stays";
    remove_all(outp + ".tmp-" + alive);
    remove_all(outp);
  }
}

// Before: `tokenizer train` replaced an existing output without --force.
TEST(CliTokenizerTrain, ExistingOutputNeedsForce) {
  Files f;
  std::string corpus;
  for (int i = 0; i < 200; i++) corpus += "The quick brown fox " + std::to_string(i) + " jumps over the lazy dog.\n";
  write_file_atomic(f.text, corpus);
  const std::string out = join_path(f.d, "tok.model");
  write_file_atomic(out, "precious");
  const std::string args = "tokenizer-train --vocab-size 300 --input " + f.text + " -o " + out;
  std::string log;
  EXPECT_EQ(solar(args, &log), 1) << log;
  EXPECT_TRUE(has(log, out + ": already exists (use --force to replace)")) << log;
  EXPECT_EQ(read_file(out), "precious");
  ASSERT_EQ(solar(args + " --force", &log), 0) << log;
  EXPECT_NE(read_file(out), "precious");
}

// Before: `convert -o /dev/full --force` (run as root) renamed a folder over
// the device node, and a file output renamed over a FIFO: a special file is
// never an output, --force or not. A FIFO stands for devices here.
TEST(CliOutputs, SpecialFilesAreNeverReplaced) {
  Files f;
  const std::string fifo_gguf = join_path(f.d, "fifo.gguf");
  ASSERT_EQ(mkfifo(fifo_gguf.c_str(), 0600), 0);
  const std::vector<std::string> cases = {
      "convert -m " + f.model + " -o " + f.fifo + " --force",
      "convert -m " + f.model + " -o " + fifo_gguf + " --force",
      "quantize -m " + f.model + " --type q8_0 -o " + f.fifo + " --force",
      "init --preset tiny -o " + f.fifo + " --force",
      "upscale -m " + f.model + " --drop 1 -o " + f.fifo + " --force",
      "merge -m " + f.model + " -m " + f.model + " -o " + f.fifo + " --force",
      "tokenize -m " + kTok + " -i " + f.text + " -o " + f.fifo + " --force",
      "tokenizer-train --vocab-size 300 --input " + f.text + " -o " + f.fifo + " --force",
  };
  for (const auto& args : cases) {
    if (has(args, kTok) && !path_exists(kTok)) continue;
    std::string out;
    EXPECT_EQ(solar(args + " < /dev/null", &out), 1) << args << ": " << out;
    EXPECT_TRUE(has(out, ": expected an output path that is absent, a regular file or a folder, got a FIFO")) << args << ": " << out;
    struct stat st{};
    EXPECT_TRUE(lstat(f.fifo.c_str(), &st) == 0 && S_ISFIFO(st.st_mode)) << args << ": the FIFO was replaced";
  }
  struct stat st{};
  EXPECT_TRUE(lstat(fifo_gguf.c_str(), &st) == 0 && S_ISFIFO(st.st_mode));
}

// Before: `solar inspect M > /dev/full` printed nothing and exited 0.
TEST(CliOutputs, StdoutWriteErrorsFail) {
  struct stat st{};
  if (stat("/dev/full", &st) != 0 || !S_ISCHR(st.st_mode)) GTEST_SKIP() << "no /dev/full";
  Files f;
  const std::string err = join_path(f.d, "err.txt");
  for (const std::string& args : std::vector<std::string>{"inspect " + f.model, "--help", "generate --help", "tokenize-text -m " + kTok + " -p hello"}) {
    if (has(args, kTok) && !path_exists(kTok)) continue;
    int st2 = std::system((std::string(SOLAR_BIN) + " " + args + " > /dev/full 2> " + err + " < /dev/null").c_str());
    EXPECT_TRUE(WIFEXITED(st2) && WEXITSTATUS(st2) == 1) << args << ": " << st2;
    EXPECT_TRUE(has(read_file(err), "error: stdout: write failed: No space left on device")) << args << ": " << read_file(err);
  }
}

// Before: rag ask --min-score nan (and serve's --rag-min-score) were taken,
// making every source "not relevant".
TEST(CliBounds, FloatFlagsOutOfRangeAreUsageErrors) {
  Files f;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"rag ask -m " + f.model + " store q --min-score nan", "--min-score: expected a value in [-1, 1], got nan"},
      {"rag ask -m " + f.model + " store q --min-score 2", "--min-score: expected a value in [-1, 1], got 2"},
      {"serve -m " + f.model + " --rag-min-score -inf", "--rag-min-score: expected a value in [-1, 1], got -inf"},
      {"merge --method slerp -m " + f.model + " -m " + f.model + " --t 2 -o " + join_path(f.d, "o"),
       "--method slerp: parameters.t: expected a value in [0, 1], got 2"},
      {"merge --method slerp -m " + f.model + " -m " + f.model + " --t -0.5,0.5 -o " + join_path(f.d, "o"),
       "parameters.t: expected a value in [0, 1], got -0.5"},
  };
  for (const auto& [args, msg] : cases) {
    std::string out;
    EXPECT_EQ(solar(args + " < /dev/null", &out), 2) << args << ": " << out;
    EXPECT_TRUE(has(out, msg)) << args << ": " << out;
  }
  EXPECT_FALSE(path_exists(join_path(f.d, "o")));
}

// Before: a recipe's slerp t outside [0, 1] extrapolated, and a key written
// twice (YAML or JSON) silently kept the last value.
TEST(CliMerge, RecipesWithOutOfRangeTOrRepeatedKeysAreRefused) {
  Files f;
  const std::string m2 = join_path(f.d, "m2");
  testing::write_random_model(m2, testing::tiny_config(4), 2);
  const std::string two = "  - model: " + f.model + "\n  - model: " + m2 + "\n";
  const std::vector<std::tuple<std::string, std::string, std::string>> cases = {
      {"t.yaml", "merge_method: slerp\nbase_model: " + f.model + "\nmodels:\n" + two + "parameters:\n  t: [0, 1.5]\n",
       "t.yaml: parameters.t: expected a value in [0, 1], got 1.5"},
      {"dup.yaml", "merge_method: linear\nmerge_method: slerp\nmodels:\n" + two,
       "dup.yaml: line 2: duplicate key 'merge_method'"},
      {"dup2.yaml", "merge_method: linear\nmodels:\n  - model: " + f.model + "\n    parameters: {weight: 1, weight: 0}\n  - model: " + m2 + "\n",
       "dup2.yaml: line 4: duplicate key 'weight'"},
      {"dup.json", "{\"merge_method\": \"linear\", \"models\": [{\"model\": \"" + f.model + "\", \"model\": \"" + m2 + "\"}]}",
       "dup.json: model: duplicate key"},
  };
  for (const auto& [name, text, msg] : cases) {
    const std::string r = join_path(f.d, name);
    write_file_atomic(r, text);
    std::string out;
    EXPECT_EQ(solar("merge --recipe " + r + " -o " + join_path(f.d, "o"), &out), 1) << name << ": " << out;
    EXPECT_TRUE(has(out, msg)) << name << ": " << out;
  }
  EXPECT_FALSE(path_exists(join_path(f.d, "o")));
}

// Before: a malformed line of sft/dpo data said only "expected one JSON
// object a line" (not where the syntax broke, nor invalid UTF-8), and a
// meta.json "tokenizer" of another type escaped as "[json.exception…]".
TEST(CliData, MalformedJsonLinesAndMetaFieldsAreNamed) {
  Files f;
  const std::string sft = join_path(f.d, "sft.jsonl"), dpo = join_path(f.d, "dpo.jsonl");
  write_file_atomic(sft, "{\"text\": \"a b c d e f\"}\n{\"text\": \"x\xff\"}\n");
  write_file_atomic(dpo, "{\"prompt\": \"q\", \"chosen\": \"a\", \"rejected\": \"b\"}\n{\"prompt\": \n");
  nlohmann::json meta = {{"tokenizer", 5}};
  write_file_atomic(join_path(f.data, "meta.json"), meta.dump());
  const std::string o = " -o " + join_path(f.d, "o");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"sft -m " + f.model + " --tokenizer " + kTok + " --data " + sft + o + " --steps 1 --max-length 64",
       sft + ":2: JSON syntax error: "},
      {"dpo -m " + f.model + " --tokenizer " + kTok + " --data " + dpo + o + " --steps 1", dpo + ":2: JSON syntax error: "},
      {"train --data " + f.data + o + " --preset tiny --steps 1 -b 1 --seq-len 16",
       join_path(f.data, "meta.json") + ": tokenizer: expected a path string, got number 5"},
  };
  for (const auto& [args, msg] : cases) {
    if (has(args, kTok) && !path_exists(kTok)) continue;
    std::string out;
    EXPECT_EQ(solar(args + " < /dev/null", &out), 1) << args << ": " << out;
    EXPECT_TRUE(has(out, msg)) << args << ": " << out;
    EXPECT_FALSE(has(out, "json.exception")) << args << ": " << out;
  }
}

// Before: a meta.json "tokenizer" that was missing was silently not copied,
// and one that was no tokenizer (a text file, a folder) was copied into every
// checkpoint as tokenizer.model; now train refuses both before writing -o.
TEST(CliData, MetaTokenizerIsCheckedBeforeTraining) {
  Files f;
  const std::string meta = join_path(f.data, "meta.json"), o = join_path(f.d, "o");
  const std::string missing = join_path(f.d, "gone.model"), junk = join_path(f.d, "junk.model");
  write_file_atomic(junk, "not a tokenizer\n");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {missing, meta + ": tokenizer: expected an existing tokenizer file, got " + missing + " (not found)"},
      {junk, meta + ": tokenizer: expected a loadable tokenizer, got " + junk + " ("},
      {f.d, meta + ": tokenizer: expected a tokenizer file (it is copied into each checkpoint), got the folder " + f.d},
  };
  for (const auto& [tok, msg] : cases) {
    write_file_atomic(meta, nlohmann::json({{"tokenizer", tok}}).dump());
    std::string out;
    EXPECT_EQ(solar("train --data " + f.data + " -o " + o + " --preset tiny --steps 1 -b 1 --seq-len 16 < /dev/null", &out), 1)
        << tok << ": " << out;
    EXPECT_TRUE(has(out, msg)) << tok << ": " << out;
    EXPECT_FALSE(path_exists(o)) << tok << ": nothing written before the check";
  }
  if (!path_exists(kTok)) return;
  write_file_atomic(meta, nlohmann::json({{"tokenizer", kTok}}).dump());
  std::string out;
  ASSERT_EQ(solar("train --data " + f.data + " -o " + o + " --preset tiny --steps 1 -b 1 --seq-len 16 -q < /dev/null", &out), 0)
      << out;
  EXPECT_EQ(read_file(join_path(o, "final/tokenizer.bin")), read_file(kTok));
}

}  // namespace
}  // namespace solar::cli
