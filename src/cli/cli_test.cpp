// The `solar` binary as a user meets it: formats recognised by content, every
// flag value checked, one exit-code convention (2 usage, 1 runtime), one name
// for the output flag, and help text without the parser's old defects.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <nlohmann/json.hpp>
#include <cstring>
#include <numeric>
#include <regex>
#include <sstream>

#include "core/fs.h"
#include "formats/load.h"
#include "train/net.h"
#include "testing/models.h"

namespace solar::cli {
namespace {

using testing::temp_dir;

const std::string kStories = std::string(SOLAR_SHARED_DATA) + "/models/stories260K";
const std::string kModel = kStories + "/stories260K.bin", kTok = kStories + "/tok512.bin";
const std::string kLlamaTok = std::string(SOLAR_SHARED_DATA) + "/tokenizers/llama2.model";

struct Result {
  int rc = -1;
  std::string out, err;
};

// Runs `solar args`; stdout and stderr apart.
Result solar(const std::string& args) {
  static const std::string err_file = join_path(temp_dir("cli_test_stderr"), "stderr");
  Result r;
  FILE* p = popen((std::string(SOLAR_BIN) + " " + args + " 2>" + err_file).c_str(), "r");
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  int st = pclose(p);
  r.rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  r.err = read_file(err_file);
  return r;
}

bool has(const std::string& s, const std::string& needle) { return s.find(needle) != std::string::npos; }

std::vector<std::string> commands() {
  Result r = solar("--help");
  std::vector<std::string> cmds;
  std::istringstream in(r.out.substr(r.out.find("commands:")));
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line) && line.rfind("  ", 0) == 0) cmds.push_back(line.substr(2, line.find(' ', 2) - 2));
  return cmds;
}

TEST(CliFormats, NonModelFilesAreNamedNotParsedAsLlama2c) {
  std::string d = temp_dir("cli_formats");
  std::string text = join_path(d, "notes.txt"), gguf = join_path(d, "broken.gguf"), bin = join_path(d, "junk.bin");
  std::string tiny = join_path(d, "tiny.txt"), st = join_path(d, "model.safetensors");
  write_file_atomic(text, "Hello, this is a text file, not a model at all.\n");
  write_file_atomic(gguf, "GGUX" + std::string(60, '\0'));
  write_file_atomic(bin, "Hello, this is a text file, not a model at all.\n");
  write_file_atomic(tiny, "hi\n");
  std::string header = "{\"__metadata__\":{}}";
  uint64_t len = header.size();
  write_file_atomic(st, std::string(reinterpret_cast<const char*>(&len), 8) + header);
  write_file_atomic(join_path(d, "config.json"), "{}");

  for (const std::string& cmd : std::vector<std::string>{"generate -p x -m", "inspect", "convert -o " + join_path(d, "out") + " -m"}) {
    for (const std::string& p : {text, tiny, bin}) {
      Result r = solar(cmd + " " + p);
      EXPECT_EQ(r.rc, 1) << cmd << " " << p << ": " << r.err;
      EXPECT_TRUE(has(r.err, p + ": not a model file (expected a Hugging Face folder")) << r.err;
      EXPECT_FALSE(has(r.err, "n_heads")) << r.err;
    }
    Result r = solar(cmd + " " + gguf);
    EXPECT_EQ(r.rc, 1) << r.err;
    EXPECT_TRUE(has(r.err, gguf + ": not a model file")) << r.err;
    EXPECT_TRUE(has(r.err, "\"GGUF\", this one with \"GGUX\"")) << r.err;
    r = solar(cmd + " " + st);
    EXPECT_EQ(r.rc, 1) << r.err;
    EXPECT_TRUE(has(r.err, st + ": a safetensors file on its own")) << r.err;
    EXPECT_TRUE(has(r.err, "(" + d + ")")) << "names the folder beside it: " << r.err;
  }
  // Only a name that claims llama2.c gets the header detail.
  EXPECT_TRUE(has(solar("inspect " + bin).err, "as a llama2.c header, dim is 1819043144"));
  EXPECT_FALSE(has(solar("inspect " + text).err, "llama2.c header"));
  remove_all(d);
}

TEST(CliFormats, RealLlama2cStillLoads) {
  if (!path_exists(kModel)) GTEST_SKIP() << "shared data absent: " << kStories;
  Result r = solar("inspect " + kModel);
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_TRUE(has(r.out, "format:        llama2c")) << r.out;
}

TEST(CliUpscale, DropOfHalfTheLayersOrMoreIsAUsageError) {
  std::string d = temp_dir("cli_upscale"), base = join_path(d, "base"), out = join_path(d, "up");
  testing::write_random_model(base, testing::tiny_config(6), 1);
  for (int m : {3, 4, 6}) {
    Result r = solar("upscale -m " + base + " --drop " + std::to_string(m) + " -o " + out);
    EXPECT_EQ(r.rc, 2) << m << ": " << r.err;
    EXPECT_TRUE(has(r.err, "--drop: expected 0 < M < n/2")) << r.err;
    EXPECT_TRUE(has(r.err, "(n = 6 layers): 1..2, got " + std::to_string(m))) << r.err;
    EXPECT_FALSE(path_exists(out));
  }
  Result r = solar("upscale -m " + base + " --drop 2 --dry-run");
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_TRUE(has(r.out, "layers: 8 (from 6)")) << r.out;
  r = solar("upscale -m " + base + " -o " + out);
  EXPECT_EQ(r.rc, 2) << r.err;
  EXPECT_TRUE(has(r.err, "--drop: missing")) << r.err;
  // Required, so its help shows no default.
  std::string help = solar("upscale --help").out;
  std::string line = help.substr(help.find("--drop N"));
  line = line.substr(0, line.find('\n'));
  EXPECT_FALSE(has(line, "default")) << line;
  EXPECT_TRUE(has(line, "required")) << line;
  remove_all(d);
}

TEST(CliInit, TokenizerDecidesTheVocabulary) {
  if (!path_exists(kLlamaTok) || !path_exists(kTok)) GTEST_SKIP() << "shared data absent: " << SOLAR_SHARED_DATA;
  std::string d = temp_dir("cli_init"), out = join_path(d, "m");
  // tiny has 512 pieces; Llama 2's tokenizer 32000.
  Result r = solar("init --preset tiny --outtype bf16 --tokenizer " + kLlamaTok + " -o " + out);
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_TRUE(has(r.err, "vocab_size 32000 from " + kLlamaTok + " (preset tiny has 512)")) << r.err;
  auto cfg = nlohmann::json::parse(read_file(join_path(out, "config.json")));
  EXPECT_EQ(cfg["vocab_size"], 32000);
  r = solar("generate -m " + out + " -p Hello -n 2 --temp 0");
  EXPECT_EQ(r.rc, 0) << "the model loads with its tokenizer: " << r.err;
  // A llama2.c tokenizer.bin has no count: read to its end.
  r = solar("init --preset 10m --layers 1 --outtype bf16 --tokenizer " + kTok + " --force -o " + out);
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(read_file(join_path(out, "config.json")))["vocab_size"], 512);
  r = solar("init --preset tiny --vocab-size 600 --tokenizer " + kTok + " --force -o " + out);
  EXPECT_EQ(r.rc, 2) << r.err;
  EXPECT_TRUE(has(r.err, "--vocab-size: expected the vocabulary of " + kTok + " (512 tokens)")) << r.err;
  remove_all(d);
}

// One initialisation: `solar init` writes exactly what `solar train --preset`
// starts from (train::Net::init) for the same seed.
TEST(CliInit, WritesTheWeightsTrainingStartsFrom) {
  std::string d = temp_dir("cli_init_same"), out = join_path(d, "m");
  Result r = solar("init --preset tiny --outtype f32 --seed 77 -o " + out);
  ASSERT_EQ(r.rc, 0) << r.err;
  model::Checkpoint ck = formats::load_checkpoint(out);
  train::Net net = train::Net::init(ck.config, 77);
  for (const train::Param& p : net.params()) {
    const TensorView& t = ck.get(p.name);
    ASSERT_EQ(t.dtype, DType::F32) << p.name;
    ASSERT_EQ(t.nbytes, p.w.size() * 4) << p.name;
    EXPECT_EQ(0, std::memcmp(t.data, p.w.data(), t.nbytes)) << p.name;
  }
  remove_all(d);
}

TEST(CliContext, LargerThanTrainedIsRefused) {
  if (!path_exists(kModel)) GTEST_SKIP() << "shared data absent: " << kStories;
  std::string m = "-m " + kModel + " --tokenizer " + kTok + " -p Once -n 1 --temp 0";
  for (const char* c : {"100000", "513", "-1"}) {
    Result r = solar("generate " + m + " -c " + c);
    EXPECT_EQ(r.rc, 2) << r.err;
    EXPECT_TRUE(has(r.err, "-c/--ctx-size: expected 0 (the model's full context) to 512 (max_position_embeddings of")) << r.err;
    EXPECT_TRUE(has(r.err, std::string("got ") + c)) << r.err;
  }
  EXPECT_EQ(solar("generate " + m + " -c 512").rc, 0);
  Result r = solar("chat -m " + kModel + " --tokenizer " + kTok + " -c 100000 < /dev/null");
  EXPECT_EQ(r.rc, 2) << r.err;
  EXPECT_TRUE(has(r.err, "-c/--ctx-size")) << r.err;
}

// --log-format json: every line the binary writes on stderr is one JSON
// object (library records, the CLI's own summary, the final error), before
// the command or among its flags; --log-level filters; bad values exit 2.
TEST(CliLogging, JsonLinesAndLevels) {
  if (!path_exists(kModel)) GTEST_SKIP() << "shared data absent: " << kStories;
  std::string m = "-m " + kModel + " --tokenizer " + kTok + " -p Once -n 3 --temp 0";
  auto json_lines = [](const std::string& err) {
    std::vector<nlohmann::json> out;
    std::istringstream in(err);
    std::string line;
    while (std::getline(in, line)) {
      auto j = nlohmann::json::parse(line, nullptr, false);
      EXPECT_TRUE(j.is_object()) << "not a JSON object: " << line;
      if (j.is_object()) out.push_back(j);
    }
    return out;
  };
  auto sources = [](const std::vector<nlohmann::json>& v) {
    std::string s;
    for (auto& j : v) s += j.value("source", "?") + ":" + j.value("level", "?") + " ";
    return s;
  };
  Result r = solar("--log-format json --log-level debug generate " + m + " -v");
  EXPECT_EQ(r.rc, 0) << r.err;
  auto v = json_lines(r.err);
  EXPECT_TRUE(has(sources(v), "session:debug")) << r.err;  // a library record
  EXPECT_TRUE(has(sources(v), "generate:info")) << r.err;
  EXPECT_FALSE(r.out.empty());
  r = solar("generate " + m + " --log-format=json -c 99999");
  EXPECT_EQ(r.rc, 2) << r.err;
  v = json_lines(r.err);
  ASSERT_EQ(v.size(), 1u) << r.err;
  EXPECT_EQ(v[0]["level"], "error");
  EXPECT_EQ(v[0]["exit_status"], 2);
  EXPECT_TRUE(has(v[0].value("message", ""), "-c/--ctx-size")) << r.err;

  // Commands' own status lines are log records too.
  std::string d = temp_dir("cli_logging");
  r = solar("--log-format json convert -m " + kModel + " -o " + join_path(d, "hf") + " --to hf");
  EXPECT_EQ(r.rc, 0) << r.err;
  v = json_lines(r.err);
  EXPECT_TRUE(has(sources(v), "convert:warn")) << r.err;  // no tokenizer.bin beside stories260K.bin
  EXPECT_TRUE(has(sources(v), "convert:info")) << r.err;
  remove_all(d);

  // Levels: warn drops the info summary; the default plain format says "solar generate: ".
  r = solar("generate " + m + " --log-level warn");
  EXPECT_EQ(r.rc, 0);
  EXPECT_FALSE(has(r.err, "prefill")) << r.err;
  r = solar("generate " + m);
  EXPECT_TRUE(has(r.err, "solar generate: prefill")) << r.err;
  EXPECT_FALSE(has(r.err, "session")) << r.err;  // debug is off by default

  EXPECT_EQ(solar("--log-level loud --version").rc, 2);
  EXPECT_EQ(solar("version --log-format xml").rc, 2);
  EXPECT_EQ(solar("--log-format").rc, 2);
  EXPECT_TRUE(has(solar("--help").out, "--log-format plain|json"));
}

TEST(CliThreads, EveryThreadFlagIsBounded) {
  int n = 0;
  for (const auto& cmd : commands()) {
    std::string help = solar(cmd + " --help").out;
    if (!has(help, "-t, --threads")) continue;
    ++n;
    for (const char* t : {"-2", "100000"}) {
      Result r = solar(cmd + " -t " + t);
      EXPECT_EQ(r.rc, 2) << cmd << " -t " << t << ": " << r.err;
      EXPECT_TRUE(has(r.err, "-t: expected 0 (all cores) or 1..")) << r.err;
    }
  }
  EXPECT_GE(n, 6) << "generate, chat, logits, train, tokenizer-train, pipeline";
}

TEST(CliLogits, TopPrintsTheLargestIdsFirst) {
  if (!path_exists(kModel)) GTEST_SKIP() << "shared data absent: " << kStories;
  Result all = solar("logits -m " + kModel + " --ids 1,403,407");
  Result top = solar("logits -m " + kModel + " --ids 1,403,407 --top 3");
  ASSERT_EQ(all.rc, 0) << all.err;
  ASSERT_EQ(top.rc, 0) << top.err;
  std::vector<std::string> text;
  std::istringstream in(all.out);
  for (std::string x; in >> x;) text.push_back(x);
  ASSERT_EQ(text.size(), 512u);
  std::vector<int> ids(text.size());
  std::iota(ids.begin(), ids.end(), 0);
  std::stable_sort(ids.begin(), ids.end(), [&](int a, int b) { return std::stof(text[a]) > std::stof(text[b]); });
  std::string want;
  for (int i = 0; i < 3; ++i) want += (i ? " " : "") + std::to_string(ids[i]) + ":" + text[ids[i]];
  EXPECT_EQ(top.out, want + "\n");
  EXPECT_EQ(solar("logits -m " + kModel + " --ids 1 --top -1").rc, 2);
}

TEST(CliExitCodes, UsageErrorsAreTwoRuntimeFailuresOne) {
  std::string d = temp_dir("cli_exit");
  struct {
    std::string args, expect;
    int rc;
  } cases[] = {
      {"generate -n abc", "-n: expected an integer, got 'abc'", 2},
      {"generate --temp warm", "--temp: expected a number, got 'warm'", 2},
      {"generate -m x.bin --temp 200", "--temp: expected a value in [0, 100]", 2},
      {"generate -p hi", "-m/--model: required", 2},
      {"generate --bogus", "unknown option '--bogus'", 2},
      {"convert -m x.bin", "-o/--output", 2},
      {"init --preset tiny", "-o/--output: required", 2},
      {"init --preset nope -o " + join_path(d, "m"), "--preset: unknown preset 'nope'", 2},
      {"upscale --dry-run", "-m/--model: missing", 2},
      {"inspect", "expected one PATH, got 0", 2},
      {"frobnicate", "unknown command", 2},
      {"generate -p hi -m " + join_path(d, "missing.bin"), "missing.bin: no such file or folder", 1},
      {"inspect " + join_path(d, "missing"), "no such file or folder", 1},
  };
  for (const auto& c : cases) {
    Result r = solar(c.args);
    EXPECT_EQ(r.rc, c.rc) << c.args << ": " << r.err;
    EXPECT_TRUE(has(r.err, c.expect)) << c.args << ": expected '" << c.expect << "' in " << r.err;
  }
  EXPECT_TRUE(has(solar("--help").out, "2 usage error"));
  remove_all(d);
}

TEST(CliOutputFlag, OneNameEverywhereOldSpellingsStillWork) {
  int n = 0;
  for (const auto& cmd : commands()) {
    std::string help = solar(cmd + " --help").out;
    EXPECT_FALSE(has(help, "--out ") || has(help, "--output-dir")) << cmd << ":\n" << help;
    if (has(help, "-o, --output")) ++n;
  }
  EXPECT_GE(n, 8) << "convert, init, merge, pipeline, tokenize, tokenizer-train, train, upscale";
  std::string d = temp_dir("cli_out");
  for (const char* flag : {"--out", "--output-dir", "--output"}) {
    std::string out = join_path(d, std::string("m") + flag);
    Result r = solar("init --preset tiny --layers 1 " + std::string(flag) + " " + out);
    EXPECT_EQ(r.rc, 0) << flag << ": " << r.err;
    EXPECT_TRUE(path_exists(join_path(out, "config.json"))) << flag;
  }
  remove_all(d);
}

TEST(CliVersion, PrintsProjectVersion) {
  std::regex want(R"(solar \d+\.\d+\.\d+( \(git [0-9a-f]+\))?\n)");
  for (const char* a : {"--version", "version"}) {
    Result r = solar(a);
    EXPECT_EQ(r.rc, 0) << a;
    EXPECT_TRUE(std::regex_match(r.out, want)) << a << ": " << r.out;
  }
}

TEST(CliHelp, NoDuplicatedOrUngrammaticalHelp) {
  auto cmds = commands();
  ASSERT_GE(cmds.size(), 14u);
  for (const auto& cmd : cmds) {
    Result r = solar(cmd + " --help");
    EXPECT_EQ(r.rc, 0) << cmd;
    std::istringstream in(r.out);
    for (std::string line; std::getline(in, line);) {
      size_t first = line.find("(default");
      EXPECT_TRUE(first == std::string::npos || line.find("(default", first + 1) == std::string::npos)
          << cmd << ": " << line;
      EXPECT_FALSE(has(line, "repeatable) (repeatable") || has(line, "repeatable (repeatable")) << cmd << ": " << line;
      EXPECT_FALSE(has(line, "required") && has(line, "(default:")) << cmd << ": " << line;
      EXPECT_FALSE(has(line, " a integer")) << cmd << ": " << line;
    }
  }
}

}  // namespace
}  // namespace solar::cli
