// The index pipeline: walk, hash, skip the unchanged, extract, chunk, embed,
// replace the file's chunks in one transaction; then drop what disappeared.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <set>

#include "core/error.h"
#include "core/fs.h"
#include "core/progress.h"
#include "rag/rag.h"

namespace solar::rag {
namespace {

namespace fs = std::filesystem;

// FNV-1a 64 plus the length: detects edits, not adversaries.
std::string content_hash(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  char buf[48];
  snprintf(buf, sizeof buf, "fnv1a64:%016llx:%zu", static_cast<unsigned long long>(h), s.size());
  return buf;
}

bool hidden(const fs::path& p) {
  std::string n = p.filename().string();
  return n.size() > 1 && n[0] == '.';
}

}  // namespace

IndexReport index_paths(Store& store, const embed::Embedder& emb, const std::vector<std::string>& paths,
                        const IndexOptions& opt) {
  auto t0 = std::chrono::steady_clock::now();
  IndexReport rep;
  std::vector<std::string> files, dirs;
  for (const std::string& p : paths) {
    std::error_code ec;
    fs::path abs = fs::weakly_canonical(fs::absolute(p), ec);
    if (ec || !fs::exists(abs)) fail(p, "input", "not found");
    if (fs::is_directory(abs)) {
      dirs.push_back(abs.string());
      for (auto it = fs::recursive_directory_iterator(abs, fs::directory_options::skip_permission_denied, ec);
           it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (ec) break;
        if (hidden(it->path())) {
          if (it->is_directory()) it.disable_recursion_pending();
          continue;
        }
        if (it->is_regular_file()) files.push_back(it->path().string());
      }
    } else {
      files.push_back(abs.string());
    }
  }
  // The store itself (and its WAL files) may sit inside an indexed folder.
  std::string self = fs::weakly_canonical(fs::absolute(store.path())).string();
  std::erase_if(files, [&](const std::string& f) { return f.rfind(self, 0) == 0; });
  std::sort(files.begin(), files.end());
  files.erase(std::unique(files.begin(), files.end()), files.end());
  rep.files_seen = int64_t(files.size());
  auto count = [&](const std::string& t) { return int64_t(emb.tokenizer().pieces(t).size()); };
  Progress bar("index", int64_t(files.size()), "file", stderr, opt.progress ? 10 : 1000);
  double embed_s = 0;
  for (size_t i = 0; i < files.size(); i++) {
    const std::string& f = files[i];
    try {
      std::string content = read_file(f);
      std::string h = content_hash(content);
      if (store.file_hash(f) == h) {
        rep.unchanged++;
      } else {
        if (content.empty()) fail(f, "content", "empty file");
        std::vector<Chunk> chunks = chunk_blocks(extract_file(f, opt.text_field), opt.chunk, count);
        std::vector<std::string> texts;
        for (const Chunk& c : chunks) texts.push_back(embed_text(c));
        auto e0 = std::chrono::steady_clock::now();
        int64_t cut = 0;
        std::vector<float> vecs = emb.encode(texts, &cut);
        embed_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - e0).count();
        store.put_file(f, h, int64_t(content.size()), chunks, vecs);
        rep.indexed++;
        rep.chunks += int64_t(chunks.size());
        rep.truncated += cut;
      }
    } catch (const Error& e) {
      rep.skipped++;
      rep.skipped_why.push_back(e.what());
      // A file that can no longer be read must not keep stale chunks.
      if (!store.file_hash(f).empty()) store.remove_file(f);
    }
    if (opt.progress) bar.update(int64_t(i + 1), double(rep.chunks), std::to_string(rep.chunks) + " chunks");
  }
  if (opt.progress) bar.finish(double(rep.chunks));
  std::set<std::string> seen(files.begin(), files.end());
  for (const std::string& f : store.files()) {
    bool under = std::any_of(dirs.begin(), dirs.end(), [&](const std::string& d) { return f.rfind(d + "/", 0) == 0; });
    if (!path_exists(f) || (under && !seen.count(f))) {
      store.remove_file(f);
      rep.removed++;
    }
  }
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  rep.embed_seconds = embed_s;
  return rep;
}

}  // namespace solar::rag
