"""solar rag's retrieval quality floors on a subset of Natural Questions (bench/rag_nq.py --check).

The first 40 questions of ../shared/data/eval/nq_openbook_short_rag.jsonl, their gold passages as
the corpus: recall@5 (and @10 and MRR@10 for hybrid) of solar's BM25, dense and hybrid must stay
above the floors in bench/rag_nq.py (the hybrid MRR floor fails equal-weight RRF's 0.927 here). Peers are skipped here (the bench compares them); this guards against a
chunking, tokenizer, FTS or fusion regression.
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import skip_if_asked  # noqa: E402

skip_if_asked()
here = os.path.dirname(os.path.abspath(__file__))
bench = os.path.join(here, "..", "..", "bench", "rag_nq.py")
r = subprocess.run([sys.executable, bench, sys.argv[1], "--limit", "40", "--threads", "1", "--no-peers", "--check"])
sys.exit(r.returncode)
