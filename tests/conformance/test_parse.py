"""solar parse against PyMuPDF on PDFs PyMuPDF writes.

- the words solar parse finds (JSON content.text, headers/footers included)
  are PyMuPDF's words in the same order: word-level similarity >= 0.97;
- a heading set in a larger bold font comes out as a heading, a ruled grid as
  a <table> with its cells;
- an AES-256 encrypted PDF is refused with a clear error naming the file,
  and read with --password.
"""
import difflib, json, os, subprocess, sys, tempfile

from common import missing, skip_if_asked

skip_if_asked()
try:
    import fitz  # PyMuPDF
except ImportError:
    missing("PyMuPDF (fitz) is not installed")

solar = sys.argv[1]
tmp = tempfile.mkdtemp()


def parse(path, *extra):
    r = subprocess.run([solar, "parse", "-q", path, *extra], capture_output=True, text=True)
    return r.returncode, r.stdout, r.stderr


doc = fitz.open()
for p in range(3):
    page = doc.new_page(width=595, height=842)
    page.insert_text((72, 90), f"Section {p + 1} Overview", fontsize=20, fontname="hebo")
    y = 130
    for i in range(12):
        page.insert_text((72, y), f"Line {i} of page {p + 1} says something about topic {i * 7 % 11}.", fontsize=11)
        y += 14
    if p == 0:
        for k in range(4):
            page.draw_line((72, 340 + 20 * k), (372, 340 + 20 * k))
        for x in (72, 222, 372):
            page.draw_line((x, 340), (x, 400))
        for r, (a, b) in enumerate([("key", "value"), ("alpha", "one"), ("beta", "two")]):
            page.insert_text((80, 355 + 20 * r), a, fontsize=10)
            page.insert_text((230, 355 + 20 * r), b, fontsize=10)
plain = os.path.join(tmp, "plain.pdf")
doc.save(plain)

rc, out, err = parse(plain)
if rc != 0:
    sys.exit(f"solar parse failed: {err}")
j = json.loads(out)
ours = " ".join(e["content"]["text"] for e in j["elements"]).split()
ref = " ".join(p.get_text("text") for p in fitz.open(plain)).split()
sim = difflib.SequenceMatcher(None, ours, ref, autojunk=False).ratio()
print(f"word similarity to PyMuPDF: {sim:.4f} ({len(ours)} vs {len(ref)} words)")
heads = [e["content"]["text"] for e in j["elements"] if e["category"].startswith("heading")]
tables = [e["content"]["html"] for e in j["elements"] if e["category"] == "table"]
print("headings:", heads)
print("tables:", tables)
ok = sim >= 0.97
ok &= heads == ["Section 1 Overview", "Section 2 Overview", "Section 3 Overview"]
ok &= len(tables) == 1 and "<td>alpha</td><td>one</td>" in tables[0]

locked = os.path.join(tmp, "locked.pdf")
fitz.open(plain).save(locked, encryption=fitz.PDF_ENCRYPT_AES_256, user_pw="sesame", owner_pw="owner")
rc, out, err = parse(locked)
print("encrypted:", rc, err.strip())
ok &= rc == 1 and "locked.pdf" in err and "encrypted" in err
rc, out, err = parse(locked, "--password", "wrong")
ok &= rc == 1 and "wrong password" in err
rc, out, err = parse(locked, "--password", "sesame", "--format", "md")
ok &= rc == 0 and "# Section 1 Overview" in out

print("PASS" if ok else "FAIL")
sys.exit(0 if ok else 1)
