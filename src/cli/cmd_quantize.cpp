// solar quantize — a model to a quantized GGUF (Q8_0, Q4_0, Q4_K_M, Q6_K), as llama-quantize writes it.
#include <cstdio>
#include <map>
#include <memory>

#include "cli/common.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"
#include "core/progress.h"
#include "quantize/quantize.h"

namespace {

int run(const std::vector<std::string>& argv) {
  using namespace solar;
  cli::Args a("quantize",
              "solar quantize -m MODEL -o OUT.gguf --type q8_0|q4_0|q4_k_m|q6_k [options]\n\n"
              "Quantizes an HF folder (F32/F16/BF16 safetensors), a GGUF or a llama2.c .bin into a GGUF that\n"
              "llama.cpp runs: the tensor types llama-quantize chooses for the type, its reference quantizers'\n"
              "bytes (docs/quantize.md).");
  auto& in = a.str("-m,--model", "PATH", "input: HF folder, .gguf or llama2.c .bin");
  auto& out = a.str("-o,--output", "PATH", "output .gguf file");
  auto& type = a.str("--type", "TYPE", "q8_0 (8.5 bits per weight), q4_0 (4.5), q4_k_m (~4.9) or q6_k (6.6)");
  auto& pure = a.flag("--pure", "every 2-D tensor the base type: no Q6_K output, no Q4_K_M mix (fallbacks still apply)");
  auto& out_type = a.str("--output-tensor-type", "TYPE", "type of output.weight (f32, f16, bf16, q4_0, q5_0, q5_1, "
                                                         "q8_0, q4_k, q5_k, q6_k)");
  auto& embd_type = a.str("--token-embedding-type", "TYPE", "type of token_embd.weight (same types)");
  auto& requant = a.flag("--allow-requantize", "quantize tensors that are already quantized (dequantized first: "
                                              "the errors add up)");
  auto& tokenizer = a.str("--tokenizer", "PATH", "tokenizer for an input without one (llama2.c .bin)");
  auto& dry = a.flag("--dry-run", "print the type and size of every tensor; write nothing");
  auto& threads = a.threads();
  auto& force = a.flag("--force", "replace OUT if it exists");
  auto& quiet = a.flag("-q,--quiet", "no progress bar");
  if (!a.parse(argv)) return a.exit_code();
  if (in.empty()) fail("-m/--model", "", "expected an input model path");
  if (type.empty()) fail("--type", "", "expected q8_0, q4_0, q4_k_m or q6_k");
  quantize::Options opt;
  opt.mix.ftype = quantize::parse_ftype(type, "--type");
  opt.mix.pure = pure;
  if (!out_type.empty()) opt.mix.output_type = quantize::parse_tensor_type(out_type, "--output-tensor-type");
  if (!embd_type.empty()) opt.mix.token_embd_type = quantize::parse_tensor_type(embd_type, "--token-embedding-type");
  opt.allow_requantize = requant;
  opt.dry_run = dry;
  opt.tokenizer = tokenizer;
  opt.threads = int(threads);
  if (!dry) {
    if (out.empty()) fail("-o/--output", "", "expected an output .gguf path");
    cli::check_output_apart(out, {in, tokenizer});
    if (path_exists(out) && !force) fail(out, "", "already exists (pass --force to replace it)");
  }
  std::unique_ptr<Progress> bar;
  if (!quiet && !cli::json_logs())
    opt.progress = [&](uint64_t done, uint64_t total, const std::string& tensor) {
      if (!bar) bar = std::make_unique<Progress>("quantize MiB", std::max<int64_t>(1, int64_t(total >> 20)), "B");
      bar->update(int64_t(done >> 20), double(done), tensor);
    };

  quantize::Summary s = quantize::quantize_model(in, out, opt);
  if (bar) bar->finish(double(s.bytes_in));

  std::map<std::string, int> counts;
  int fallbacks = 0;
  for (const auto& t : s.tensors) {
    ++counts[dtype_name(t.to)];
    fallbacks += !t.fallback.empty();
    if (dry)
      std::printf("%-32s %-14s %-5s -> %-5s %10.3f MiB -> %9.3f MiB%s\n", t.name.c_str(), shape_str(t.shape).c_str(),
                  dtype_name(t.from), dtype_name(t.to), double(t.bytes_in) / (1 << 20), double(t.bytes_out) / (1 << 20),
                  t.fallback.empty() ? "" : " (fallback)");
  }
  std::string mix;
  for (const auto& [name, n] : counts) mix += (mix.empty() ? "" : ", ") + name + " " + std::to_string(n);
  std::printf("%s %s -> %s (%s) in %.1f s\n", dry ? "would quantize" : "quantized", in.c_str(), dry ? "-" : out.c_str(),
              quantize::ftype_name(opt.mix.ftype), s.seconds);
  std::printf("  size: %.2f MiB (%.2f bits per weight) -> %.2f MiB (%.2f bits per weight), %.2fx smaller\n",
              double(s.bytes_in) / (1 << 20), s.bpw_in(), double(s.bytes_out) / (1 << 20), s.bpw_out(),
              s.bytes_out ? double(s.bytes_in) / double(s.bytes_out) : 0.0);
  std::printf("  tensors: %zu (%s); %d fell back to another type (row length)\n", s.tensors.size(), mix.c_str(),
              fallbacks);
  log_info("quantize", std::string(dry ? "planned " : "wrote ") + (dry ? in : out),
           {{"output", out}, {"ftype", quantize::ftype_name(opt.mix.ftype)}, {"bytes_in", s.bytes_in},
            {"bytes_out", s.bytes_out}, {"bpw", s.bpw_out()}, {"seconds", s.seconds}});
  return 0;
}

solar::cli::Register reg("quantize", "quantize a model to a GGUF file (q8_0, q4_0, q4_k_m, q6_k) as llama.cpp does", run);

}  // namespace
