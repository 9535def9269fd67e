// solar/testing/rag.h — test helper: a small `solar rag` store built by the
// real CLI from files given as text, for the rag and serve tests.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/fs.h"
#include "embed/embed.h"
#include "testing/models.h"

namespace solar::testing {

// Whether all-MiniLM-L6-v2 is installed (scripts/embed-model.sh); tests that index skip without it.
inline bool have_embedder() {
  try {
    embed::find_model();
    return true;
  } catch (const Error&) {
    return false;
  }
}

// Writes the files (name, text) under <tmp>/docs and indexes them into
// <tmp>/s.db with `solar rag index`; returns the store, *docs the folder,
// *out what the indexer printed (a failure is reported and "" returned).
inline std::string rag_store(const std::string& name, const std::vector<std::pair<std::string, std::string>>& files,
                             std::string* docs, std::string* out) {
  const std::string d = temp_dir(name), db = join_path(d, "s.db");
  *docs = join_path(d, "docs");
  make_dirs(*docs);
  for (const auto& [f, text] : files) write_file_atomic(join_path(*docs, f), text);
  if (run_solar("rag index -q -t 1 -o " + db + " " + *docs, out) != 0) {
    ADD_FAILURE() << *out;
    return "";
  }
  return db;
}

}  // namespace solar::testing
