// solar convert — any checkpoint solar reads (HF folder, GGUF, llama2.c .bin)
// to an HF folder or a GGUF file.
#include <cstdio>
#include <optional>

#include "cli/common.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"
#include "formats/gguf.h"
#include "formats/hf.h"
#include "formats/load.h"

namespace {

int run(const std::vector<std::string>& argv) {
  using namespace solar;
  cli::Args a("convert", "solar convert -m IN -o OUT [--to hf|gguf] [--outtype f32|f16|bf16] [options]");
  auto& in = a.str("-m,--model", "PATH", "input: HF folder, .gguf or llama2.c .bin");
  auto& out = a.str("-o,--output", "PATH", "output HF folder or .gguf file");
  auto& to = a.str("--to", "FORMAT", "hf or gguf (default: gguf when OUT ends in .gguf, else hf)");
  auto& outtype = a.str("--outtype", "TYPE", "f32, f16 or bf16 (default: the input's dtype; f32 for a quantized GGUF, which is dequantized)");
  auto& shard = a.str("--shard-size", "SIZE", "maximum safetensors shard size (hf)", "5GB");
  auto& tokenizer = a.str("--tokenizer", "PATH", "tokenizer to carry over (tokenizer.model, tokenizer.bin or .gguf)");
  auto& force = a.flag("--force", "replace OUT if it exists");
  if (!a.parse(argv)) return a.exit_code();
  if (in.empty()) fail("-m/--model", "", "expected an input model path");
  if (out.empty()) fail("-o/--output", "", "expected an output path");

  std::string fmt = to.empty() ? (out.ends_with(".gguf") ? "gguf" : "hf") : to;
  if (fmt != "hf" && fmt != "gguf") fail("--to", "", "expected hf or gguf, got '" + to + "'");
  std::optional<DType> dtype;
  if (outtype == "f32") dtype = DType::F32;
  else if (outtype == "f16") dtype = DType::F16;
  else if (outtype == "bf16") dtype = DType::BF16;
  else if (!outtype.empty()) fail("--outtype", "", "expected f32, f16 or bf16, got '" + outtype + "'");
  cli::check_output_apart(out, {in, tokenizer});
  if (path_exists(out) && !force) fail(out, "", "already exists (pass --force to replace it)");

  model::Checkpoint ck = formats::load_checkpoint(in, formats::LoadOptions{tokenizer});
  if (!tokenizer.empty()) formats::open_tokenizer(tokenizer, ck.config.vocab_size);  // carried over only if it reads
  if (fmt == "gguf") {
    DType dt = dtype ? *dtype : ck.config.torch_dtype;
    if (ck.tokenizer_path.empty())
      log_warn("convert", "no tokenizer found; llama.cpp needs tokenizer metadata (pass --tokenizer PATH)");
    formats::write_gguf(out, ck, dt);
    log_info("convert", "wrote " + out + " (GGUF, " + dtype_name(dt) + ", " + std::to_string(ck.tensors.size()) + " tensors)",
             {{"output", out}, {"format", "gguf"}, {"tensors", ck.tensors.size()}});
  } else {
    // A GGUF's vocabulary becomes a tokenizer.model (or a warning naming a type solar cannot write).
    if (ck.tokenizer_path.empty())
      log_warn("convert", "no tokenizer.model/tokenizer.bin to copy into " + out + " (pass --tokenizer PATH)");
    formats::HfWriteOptions opt;
    opt.dtype = dtype;
    opt.max_shard_bytes = formats::parse_size(shard, "--shard-size");
    opt.force = force;
    formats::write_hf(out, ck, opt);
    log_info("convert", "wrote " + out + " (HF folder, " + std::to_string(ck.tensors.size()) + " tensors)",
             {{"output", out}, {"format", "hf"}, {"tensors", ck.tensors.size()}});
  }
  return 0;
}

solar::cli::Register reg("convert", "convert an HF folder, GGUF or llama2.c .bin to an HF folder or GGUF", run);

}  // namespace
