// `solar quantize` (quantize/quantize.h): plan every tensor's type, then
// stream the model through core/quantize.h into a GgufWriter.
#include "quantize/quantize.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <exception>
#include <functional>
#include <numeric>

#include "core/error.h"
#include "core/log.h"
#include "core/quantize.h"
#include "formats/gguf.h"
#include "formats/load.h"
#include "model/rope.h"

namespace solar::quantize {

namespace {

constexpr uint32_t kQuantizationVersion = 2;  // GGML_QNT_VERSION
constexpr int64_t kChunkElems = int64_t(1) << 22;  // f32 elements in memory at once (16 MiB)

struct Item {
  const TensorView* src;
  TensorReport report;
  std::vector<int32_t> row_of;  // output row r comes from source row row_of[r]; empty: the same row
};

std::string mib(uint64_t b) {
  char s[32];
  std::snprintf(s, sizeof s, "%.2f MiB", double(b) / (1 << 20));
  return s;
}

// llama.cpp keeps q/k rows in the interleaved-pair RoPE order of Meta's
// checkpoints; an HF source is permuted on the way (as write_gguf does).
std::vector<int32_t> rope_rows(int heads, int head_dim) {
  std::vector<int32_t> id(size_t(heads) * head_dim), out(id.size());
  std::iota(id.begin(), id.end(), 0);
  model::permute_rope_rows(id.data(), out.data(), heads, head_dim, sizeof(int32_t), false);
  return out;
}

// Sets entry e.key, last: gguf_set_val removes an existing entry and appends,
// so the files come out in llama.cpp's order.
void set_kv(std::vector<formats::GgufKv>& kv, formats::GgufKv e) {
  std::erase_if(kv, [&](const formats::GgufKv& k) { return k.key == e.key; });
  kv.push_back(std::move(e));
}

std::vector<Item> plan(const model::Checkpoint& ck, bool gguf_in, const Options& opt) {
  const model::ModelConfig& c = ck.config;
  const ModelInfo info{c.num_hidden_layers, c.num_attention_heads, c.num_key_value_heads, c.tie_word_embeddings};
  std::vector<Item> items;
  for (const std::string& name : model::expected_tensor_names(c)) {
    const TensorView& t = ck.get(name);
    Item it{&t, {formats::gguf_tensor_name(name), t.shape, t.dtype, t.dtype, 0, 0, ""}, {}};
    // What the tensor is as a GGUF: a GGUF's own type; norms of other formats
    // become F32 (as `solar convert` writes them), their matrices keep theirs.
    const DType current = t.shape.size() == 1 && !gguf_in ? DType::F32 : t.dtype;
    TypeChoice choice = tensor_type(opt.mix, info, it.report.name, t.shape, current);
    it.report.to = choice.type;
    it.report.fallback = choice.fallback;
    if (!can_quantize(choice.type))
      fail(ck.source, "tensor '" + it.report.name + "'", std::string("solar cannot write ") + dtype_name(choice.type));
    if (is_quantized(t.dtype) && choice.type != t.dtype && !opt.allow_requantize)
      fail(ck.source, "tensor '" + it.report.name + "'",
           std::string("is already quantized (") + dtype_name(t.dtype) + "); quantizing it again to " +
               dtype_name(choice.type) + " adds a second rounding error (pass --allow-requantize to dequantize "
               "and quantize it anyway, or start from the F32/F16/BF16 model)");
    const bool q = name.ends_with("q_proj.weight"), k = name.ends_with("k_proj.weight");
    if ((q || k) && !c.rope_interleaved) it.row_of = rope_rows(q ? c.num_attention_heads : c.num_key_value_heads, c.head_dim);
    it.report.bytes_in = t.nbytes;
    it.report.bytes_out = tensor_bytes(choice.type, t.shape);
    items.push_back(std::move(it));
  }
  std::stable_sort(items.begin(), items.end(),
                   [](const Item& a, const Item& b) { return tensor_order(a.report.name, b.report.name); });
  return items;
}

std::vector<formats::GgufKv> metadata(const model::Checkpoint& ck, const std::string& in, bool gguf_in,
                                      const Options& opt) {
  std::vector<formats::GgufKv> kv;
  if (gguf_in) {
    for (auto& e : formats::read_gguf_metadata(in))
      if (!e.key.starts_with("split.")) kv.push_back(std::move(e));  // one file out, whatever came in
  } else {
    if (ck.tokenizer_path.empty())
      log_warn("quantize", "no tokenizer found; llama.cpp needs tokenizer metadata (pass --tokenizer PATH)");
    kv = formats::gguf_metadata(ck, uint32_t(opt.mix.ftype));
  }
  set_kv(kv, formats::gguf_kv_u32("general.quantization_version", kQuantizationVersion));
  set_kv(kv, formats::gguf_kv_u32("general.file_type", uint32_t(opt.mix.ftype)));
  return kv;
}

// Streams one tensor, a chunk of rows at a time, rows in parallel. done(p, n):
// n more input bytes are done, those at p if p is not null (rows in order).
void write_tensor(formats::GgufWriter& w, const Item& it, const std::string& source, int threads,
                  const std::function<void(const void*, uint64_t)>& done) {
  const TensorView& t = *it.src;
  const DType from = t.dtype, to = it.report.to;
  const int64_t cols = t.shape.back(), rows = t.numel() / cols;
  const size_t in_row = row_bytes(from, cols), out_row = row_bytes(to, cols);
  const auto* src = static_cast<const uint8_t*>(t.data);
  auto src_row = [&](int64_t r) { return src + size_t(it.row_of.empty() ? r : it.row_of[size_t(r)]) * in_row; };
  const int64_t chunk = std::max<int64_t>(1, kChunkElems / cols);
  if (from == to && is_quantized(from)) {  // nothing to do but copy (and maybe reorder) the blocks
    for (int64_t r = 0; r < rows; ++r) w.write(src_row(r), in_row);
    done(it.row_of.empty() ? src : nullptr, t.nbytes);
    return;
  }
  std::vector<float> f32(size_t(std::min(chunk, rows) * cols));
  std::vector<uint8_t> out(size_t(std::min(chunk, rows)) * out_row);
  std::vector<int64_t> bad(size_t(std::min(chunk, rows)));
  for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
    const int64_t n = std::min(chunk, rows - r0);
    std::exception_ptr err;
#pragma omp parallel for schedule(dynamic, 4) num_threads(threads)
    for (int64_t i = 0; i < n; ++i) {
      try {
        float* x = f32.data() + i * cols;
        convert(src_row(r0 + i), from, x, DType::F32, size_t(cols));
        int64_t j = 0;
        while (j < cols && std::isfinite(x[j])) ++j;
        bad[size_t(i)] = j < cols ? j : -1;
        quantize_row(x, to, out.data() + size_t(i) * out_row, cols);
      } catch (...) {
#pragma omp critical
        err = std::current_exception();
      }
    }
    if (err) std::rethrow_exception(err);
    for (int64_t i = 0; i < n; ++i)
      if (bad[size_t(i)] >= 0) {
        const float v = f32[size_t(i * cols + bad[size_t(i)])];
        fail(source, "tensor '" + it.report.name + "'", "weight [" + std::to_string(r0 + i) + ", " + std::to_string(bad[size_t(i)]) + "] is " +
                                     (std::isnan(v) ? "NaN" : v > 0 ? "+Inf" : "-Inf") +
                                     " (expected finite weights; quantizing would hide it in a scale)");
      }
    w.write(out.data(), size_t(n) * out_row);
    done(it.row_of.empty() ? src_row(r0) : nullptr, size_t(n) * in_row);
  }
}

}  // namespace

Summary quantize_model(const std::string& in, const std::string& out, const Options& opt) {
  const auto t0 = std::chrono::steady_clock::now();
  const bool gguf_in = formats::detect_model_format(in) == formats::ModelFormat::Gguf;
  if (gguf_in && !opt.tokenizer.empty())
    fail("--tokenizer", "", "a GGUF input's metadata, tokenizer included, is carried over as it is");
  formats::LoadOptions lo;
  lo.tokenizer = opt.tokenizer;
  lo.check_tensors = false;  // every row is checked as it is quantized
  model::Checkpoint ck = formats::load_checkpoint(in, lo);
  std::vector<Item> items = plan(ck, gguf_in, opt);

  Summary s;
  size_t fallbacks = 0;
  for (const Item& it : items) {
    s.tensors.push_back(it.report);
    s.elements += uint64_t(it.src->numel());
    s.bytes_in += it.report.bytes_in;
    s.bytes_out += it.report.bytes_out;
    if (it.report.fallback.empty()) continue;
    ++fallbacks;
    log_debug("quantize", it.report.name + ": " + it.report.fallback + "; falling back to " + dtype_name(it.report.to));
  }
  if (fallbacks)
    log_warn("quantize", std::to_string(fallbacks) + " of " + std::to_string(items.size()) +
                             " tensors fell back to another type: their rows are not whole blocks of the type chosen "
                             "(--dry-run lists them)",
             {{"fallbacks", fallbacks}});
  if (!opt.dry_run) {
    std::vector<formats::GgufKv> kv = metadata(ck, in, gguf_in, opt);
    std::vector<formats::GgufTensorDecl> decls;
    for (const Item& it : items) decls.push_back({it.report.name, it.report.shape, it.report.to});
    formats::GgufWriter w(out, kv, decls);
    for (const auto& f : ck.files) f->advise_sequential();
    const int threads = opt.threads > 0 ? opt.threads : omp_get_max_threads();
    uint64_t done = 0;
    size_t index = 0;
    // Done with a stretch of the input: dropping its pages keeps the resident set near one chunk.
    auto drop = [&](const void* data, uint64_t n) {
      const auto* p = static_cast<const uint8_t*>(data);
      for (const auto& f : ck.files)
        if (p >= f->data() && p < f->data() + f->size()) f->advise_dontneed(size_t(p - f->data()), size_t(n));
    };
    for (const Item& it : items) {
      ++index;
      write_tensor(w, it, in, threads, [&](const void* p, uint64_t n) {
        done += n;
        if (p) drop(p, n);
        if (opt.progress) opt.progress(done, s.bytes_in, it.report.name);
      });
      log_debug("quantize", "[" + std::to_string(index) + "/" + std::to_string(items.size()) + "] " + it.report.name + " " +
                                shape_str(it.report.shape) + " " + dtype_name(it.report.from) + " -> " +
                                dtype_name(it.report.to) + ", " + mib(it.report.bytes_in) + " -> " + mib(it.report.bytes_out));
      drop(it.src->data, it.src->nbytes);  // permuted q/k rows: dropped whole
    }
    w.finish();
  }
  s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return s;
}

}  // namespace solar::quantize
