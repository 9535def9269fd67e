// solar init — write a random-weight checkpoint of a named or given shape.
#include <cstdio>

#include "cli/common.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/log.h"
#include "formats/hf.h"
#include "formats/load.h"
#include "model/checkpoint.h"
#include "model/init.h"
#include "tokenizer/tokenizer.h"

namespace solar::cli {

static int run_init(const std::vector<std::string>& argv) {
  Args a("init", "solar init (--preset NAME | --config config.json) -o OUT [options]");
  auto& preset = a.str("--preset", "NAME", "shape: " + model::preset_names());
  auto& config = a.str("--config", "FILE", "config.json giving the shape instead of a preset");
  auto& out = a.str("-o,--output", "DIR", "output HF folder");
  auto& dtype = a.str("--outtype", "TYPE", "f32, f16 or bf16", "");
  auto& seed = a.integer("-s,--seed", 1234, "RNG seed", 0, INT64_MAX);
  auto& tokenizer = a.str("--tokenizer", "PATH", "tokenizer.model / tokenizer.bin to copy into the folder; sets vocab_size");
  auto& vocab = a.integer("--vocab-size", 0, "override vocab_size (default: the tokenizer's, else the shape's)");
  auto& layers = a.integer("--layers", 0, "override num_hidden_layers; 0 = the shape's");
  auto& shard = a.str("--shard-size", "SIZE", "max bytes per safetensors shard", "5GB");
  auto& force = a.flag("--force", "replace an existing output folder");
  if (!a.parse(argv)) return a.exit_code();
  if (out.empty()) fail("-o/--output", "", "required");
  check_output_apart(out, {config, tokenizer});
  if (preset.empty() == config.empty()) fail("--preset/--config", "", "give exactly one of --preset NAME or --config FILE");
  model::ModelConfig c = !preset.empty() ? model::preset_config(preset)
                                  : model::config_from_json(read_json_file(config), config);
  check_range("--vocab-size", double(vocab), 0, 1 << 24);
  if (vocab > 0) c.vocab_size = int(vocab);
  // A model whose vocabulary differs from its tokenizer's is refused by every
  // command that loads both, so the tokenizer decides.
  if (!tokenizer.empty()) {
    auto tok = formats::open_tokenizer(tokenizer);  // a tokenizer.bin is read to its end: its own count
    if (vocab > 0 && tok->vocab_size() != vocab)
      fail("--vocab-size", "", "expected the vocabulary of " + tokenizer + " (" + std::to_string(tok->vocab_size()) +
                                   " tokens) or no --vocab-size, got " + std::to_string(vocab));
    if (tok->vocab_size() != c.vocab_size)
      log_info("init", "vocab_size " + std::to_string(tok->vocab_size()) + " from " + tokenizer + " (" +
                           (preset.empty() ? config : "preset " + preset) + " has " + std::to_string(c.vocab_size) + ")");
    c.vocab_size = tok->vocab_size();
    c.bos_token_id = tok->bos_id();
    c.eos_token_id = tok->eos_id();
  }
  check_range("--layers", double(layers), 0, 1 << 12);
  if (layers > 0) c.num_hidden_layers = int(layers);
  if (!dtype.empty()) c.torch_dtype = parse_dtype(dtype, "--outtype");
  c.validate(preset.empty() ? config : "--preset " + preset);

  std::vector<formats::TensorDecl> decls;
  for (const auto& n : model::expected_tensor_names(c)) decls.push_back({n, model::expected_shape(c, n), c.torch_dtype});
  formats::HfWriteOptions opt;
  opt.force = force;
  opt.max_shard_bytes = formats::parse_size(shard, "--shard-size");
  opt.tokenizer_path = tokenizer;
  opt.model_card = "# Random-weight model\n\nWritten by `solar init` (" +
                   (preset.empty() ? "config " + config : "preset " + preset) + ", seed " + std::to_string(seed) +
                   "). Weights are random: for tests and benchmarks.\n";
  formats::HfWriter w(out, c, decls, opt);
  std::vector<uint8_t> buf;
  for (const auto& d : decls) {
    TensorView t{d.name, d.dtype, d.shape, nullptr, 0};
    t.nbytes = tensor_bytes(d.dtype, t.shape);
    buf.resize(t.nbytes);
    model::init_tensor(c, d.name, uint64_t(seed), buf.data(), d.dtype, size_t(t.numel()));
    t.data = buf.data();
    w.write(t);
  }
  w.finish();
  log_info("init",
           "wrote " + out + ": " + std::to_string(c.num_hidden_layers) + " layers, " +
               std::to_string(c.num_parameters()) + " parameters (" + dtype_name(c.torch_dtype) + ")",
           {{"output", out}, {"layers", c.num_hidden_layers}, {"parameters", c.num_parameters()}});
  return 0;
}

static Register reg("init", "write a random-weight checkpoint (presets: tiny … mistral-7b)", run_init);

}  // namespace solar::cli
