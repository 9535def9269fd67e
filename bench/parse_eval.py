#!/usr/bin/env python3
"""solar parse against ground truth, with its peers in the same run.

  python bench/parse_eval.py build/solar [--data ../shared/data/layout] [--only pubtabnet] [--per-table]
                             [--min-teds X] [--pages N]

- debian-reference.en.pdf vs its DocBook HTML (/usr/share/debian-reference):
  heading recall (h1-h4 text found among solar's heading1-3), numbered table
  count, reading order (normalised edit distance between the HTML's block
  order and the output's, see reading_order), pages/s; peers: PyMuPDF text
  blocks (speed, reading order), pdfplumber tables (count and speed on the
  same pages).
- PubLayNet (10 page images, COCO boxes): per-category precision/recall at
  IoU 0.5 and mAP@[.5:.95]. solar gives no confidences, so each IoU
  threshold's AP is that of a single operating point (precision x recall).
- PubTabNet (20 table images): TEDS and TEDS-structure (Zhang-Shasha tree
  edit distance over the table HTML, as PubTabNet defines it: rename cost 1,
  or the normalised Levenshtein distance of two cells' text when tag and
  spans agree; formatting tags inside GT cells (<b>, <i>, <sup>) are dropped).
- PubLayNet's 10 images in one call with -t 1 and -t 2 (image files OCR'd
  side by side): wall time, and whether the outputs agree.
- pages (--only pages): a generated PDF of --pages pages (default 10,000, 32
  lines each): wall time and peak RSS of solar parse (with solar-pdf) against
  PyMuPDF's text blocks on the same file, each in a process of its own.
CPU timings on a shared machine are noisy: compare ratios from one run.
"""
import argparse, html.parser, json, os, platform, re, resource, subprocess, sys, tempfile, time


def cpu_info():
    model, flags = platform.processor(), ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name") and not model.strip():
                model = line.split(":", 1)[1].strip()
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                fl = line.split(":", 1)[1].split()
                flags = " ".join(f for f in ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "amx_tile") if f in fl)
                break
    except OSError:
        pass
    return model, flags


def run_solar(solar, args):
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.time()
    p = subprocess.run([solar, "parse", "-q"] + args, capture_output=True, text=True)
    wall = time.time() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    if p.returncode != 0:
        sys.exit(f"solar parse {' '.join(args)} failed: {p.stderr.strip()}")
    return json.loads(p.stdout), wall, cpu


# ---- tree edit distance (Zhang-Shasha) -------------------------------------------------
class Node:
    def __init__(self, tag, attrs=None, text=""):
        self.tag, self.attrs, self.text, self.children = tag, attrs or {}, text, []


def levenshtein(a, b):
    if a == b:
        return 0
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def rename_cost(a, b, structure_only):
    if a.tag != b.tag:
        return 1.0
    if a.tag in ("td", "th"):
        if a.attrs.get("colspan", "1") != b.attrs.get("colspan", "1") or a.attrs.get("rowspan", "1") != b.attrs.get("rowspan", "1"):
            return 1.0
        if structure_only:
            return 0.0
        m = max(len(a.text), len(b.text))
        return levenshtein(a.text, b.text) / m if m else 0.0
    return 0.0


def postorder(root):
    nodes, lmd = [], []
    def walk(n):
        first = None
        for c in n.children:
            l = walk(c)
            first = l if first is None else first
        nodes.append(n)
        lmd.append(first if first is not None else len(nodes) - 1)
        return lmd[-1]
    walk(root)
    return nodes, lmd


def tree_distance(t1, t2, structure_only):
    n1, l1 = postorder(t1)
    n2, l2 = postorder(t2)
    def keyroots(l):
        seen, kr = set(), []
        for i in range(len(l) - 1, -1, -1):
            if l[i] not in seen:
                seen.add(l[i]); kr.append(i)
        return sorted(kr)
    td = [[0.0] * len(n2) for _ in n1]
    for i in keyroots(l1):
        for j in keyroots(l2):
            li, lj = l1[i], l2[j]
            m, n = i - li + 2, j - lj + 2
            fd = [[0.0] * n for _ in range(m)]
            for x in range(1, m):
                fd[x][0] = fd[x - 1][0] + 1
            for y in range(1, n):
                fd[0][y] = fd[0][y - 1] + 1
            for x in range(1, m):
                for y in range(1, n):
                    a, b = li + x - 1, lj + y - 1
                    if l1[a] == li and l2[b] == lj:
                        fd[x][y] = min(fd[x - 1][y] + 1, fd[x][y - 1] + 1, fd[x - 1][y - 1] + rename_cost(n1[a], n2[b], structure_only))
                        td[a][b] = fd[x][y]
                    else:
                        p, q = l1[a] - li, l2[b] - lj
                        fd[x][y] = min(fd[x - 1][y] + 1, fd[x][y - 1] + 1, fd[p][q] + td[a][b])
    return td[-1][-1], len(n1), len(n2)


def teds(pred, gt, structure_only=False):
    if pred is None:
        return 0.0
    d, a, b = tree_distance(pred, gt, structure_only)
    return 1.0 - d / max(a, b)


class TableHTML(html.parser.HTMLParser):
    """solar's <table> HTML to a tree: table > thead/tbody > tr > td/th (th counts as td, as in PubTabNet)."""
    def __init__(self):
        super().__init__()
        self.root, self.stack = None, []
    def handle_starttag(self, tag, attrs):
        if tag not in ("table", "thead", "tbody", "tr", "td", "th"):
            return
        n = Node("td" if tag == "th" else tag, dict(attrs))
        if tag == "table" and self.root is None:
            self.root = n
        elif self.stack:
            self.stack[-1].children.append(n)
        self.stack.append(n)
    def handle_endtag(self, tag):
        if tag in ("table", "thead", "tbody", "tr", "td", "th") and self.stack:
            self.stack.pop()
    def handle_data(self, data):
        if self.stack and self.stack[-1].tag == "td":
            self.stack[-1].text += data


def pred_tree(h):
    p = TableHTML(); p.feed(h)
    root = p.root
    if root is not None:  # PubTabNet's trees have no attributes on table: strip ours too
        root.attrs = {}
    return root


def gt_tree(entry):
    toks, cells = entry["html"]["structure"]["tokens"], entry["html"]["cells"]
    root, stack, ci, i = Node("table"), [], 0, 0
    stack.append(root)
    while i < len(toks):
        t = toks[i]
        if t in ("<thead>", "<tbody>", "<tr>"):
            n = Node(t[1:-1]); stack[-1].children.append(n); stack.append(n)
        elif t in ("</thead>", "</tbody>", "</tr>"):
            stack.pop()
        elif t in ("<td>", "<td"):
            attrs = {}
            while t != "<td>" and toks[i + 1] != ">":
                i += 1
                k, v = toks[i].strip().split("=")
                attrs[k] = v.strip('"')
            if t == "<td":
                i += 1  # the ">"
            text = re.sub(r"<[^>]+>", "", "".join(cells[ci]["tokens"])) if ci < len(cells) else ""
            ci += 1
            stack[-1].children.append(Node("td", attrs, text.strip()))
        i += 1
    return root


# ---- PubLayNet --------------------------------------------------------------------------
CAT = {"heading1": "title", "heading2": "title", "heading3": "title", "paragraph": "text", "caption": "text",
       "footnote": "text", "code": "text", "equation": "text", "index": "text", "list": "list", "table": "table",
       "figure": "figure", "chart": "figure"}


def iou(a, b):
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0])); iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    i = ix * iy
    u = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - i
    return i / u if u > 0 else 0


def match(preds, gts, t):
    used, tp = set(), 0
    for p in preds:
        best, bj = t, -1
        for j, g in enumerate(gts):
            if j not in used and iou(p, g) >= best:
                best, bj = iou(p, g), j
        if bj >= 0:
            used.add(bj); tp += 1
    return tp


def publaynet(solar, d):
    meta = json.load(open(os.path.join(d, "samples.json")))
    names = {c["id"]: c["name"] for c in meta["categories"]}
    cats = list(names.values())
    gt, pr = {c: {} for c in cats}, {c: {} for c in cats}
    wall = cpu = 0
    for im in meta["images"]:
        j, w, c = run_solar(solar, [os.path.join(d, im["file_name"])])
        wall += w; cpu += c
        for e in j["elements"]:
            k = CAT.get(e["category"])
            if not k:
                continue
            xs = [p["x"] * im["width"] for p in e["coordinates"]]; ys = [p["y"] * im["height"] for p in e["coordinates"]]
            pr[k].setdefault(im["id"], []).append((min(xs), min(ys), max(xs), max(ys)))
        for a in meta["annotations"]:
            if a["image_id"] == im["id"]:
                x, y, bw, bh = a["bbox"]
                gt[names[a["category_id"]]].setdefault(im["id"], []).append((x, y, x + bw, y + bh))
    rows, aps = [], []
    for c in cats:
        ng = sum(len(v) for v in gt[c].values()); npd = sum(len(v) for v in pr[c].values())
        def pr_at(t):
            tp = sum(match(pr[c].get(i, []), gt[c].get(i, []), t) for i in set(gt[c]) | set(pr[c]))
            return (tp / npd if npd else 0), (tp / ng if ng else 0)
        p5, r5 = pr_at(0.5)
        ap = sum(p * r for p, r in (pr_at(t / 100) for t in range(50, 100, 5))) / 10
        if ng:
            aps.append(ap)
        rows.append((c, ng, npd, p5, r5, ap))
    return rows, sum(aps) / len(aps) if aps else 0, len(meta["images"]), wall, cpu


def scanned_threads(solar, d, threads=(1, 2)):
    """The PubLayNet pages as one scanned PDF (PyMuPDF places each image on a page
    sized so that solar's 200 dpi render gives back its pixels): wall time with
    -t 1 and -t 2 (pages OCR'd side by side), and whether the outputs agree."""
    try:
        import fitz
    except ImportError:
        return None
    meta = json.load(open(os.path.join(d, "samples.json")))
    doc = fitz.open()
    for im in meta["images"]:
        w, h = im["width"] * 72 / 200, im["height"] * 72 / 200
        doc.new_page(width=w, height=h).insert_image(fitz.Rect(0, 0, w, h), filename=os.path.join(d, im["file_name"]))
    with tempfile.TemporaryDirectory() as tmp:
        pdf = os.path.join(tmp, "scanned.pdf")
        doc.save(pdf)
        runs = {t: run_solar(solar, [pdf, "-t", str(t)]) for t in threads}
    same = len({json.dumps(j["elements"], sort_keys=True) for j, _, _ in runs.values()}) == 1
    return len(meta["images"]), {t: (w, c) for t, (_, w, c) in runs.items()}, same


def images_threads(solar, d, threads=(1, 2)):
    """All PubLayNet images in one solar call: -t 1 against -t 2."""
    meta = json.load(open(os.path.join(d, "samples.json")))
    files = [os.path.join(d, im["file_name"]) for im in meta["images"]]
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for t in threads:
            out = os.path.join(tmp, f"t{t}")
            t0 = time.time()
            p = subprocess.run([solar, "parse", "-q", "-t", str(t), "-o", out] + files, capture_output=True, text=True)
            if p.returncode != 0:
                sys.exit(f"solar parse -t {t} failed: {p.stderr.strip()}")
            runs[t] = (time.time() - t0, {f: open(os.path.join(out, f), "rb").read() for f in sorted(os.listdir(out))})
    same = len({tuple(v[1].items()) for v in runs.values()}) == 1
    return len(files), {t: w for t, (w, _) in runs.items()}, same


MEASURE = ("import resource, subprocess, sys, time\n"
           "t0 = time.time(); rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode\n"
           "print(rc, time.time() - t0, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
PYMUPDF = "import fitz, sys\nfor p in fitz.open(sys.argv[1]):\n    p.get_text('blocks')\n"


def measured(cmd):
    """Exit status, wall seconds and peak RSS (MB) of cmd and its children, in a process of its own."""
    p = subprocess.run([sys.executable, "-c", MEASURE] + cmd, capture_output=True, text=True, check=True)
    rc, wall, kb = p.stdout.split()
    return int(rc), float(wall), int(kb) / 1024


def long_pdf(path, pages):
    """A PDF of `pages` pages: "Section n" (Helvetica-Bold 14) over 31 lines of
    Helvetica 10, written directly (PyMuPDF's insert_text takes minutes here)."""
    objs = ["<< /Type /Catalog /Pages 2 0 R >>", None,
            "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
            "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold >>"]
    kids = []
    for n in range(1, pages + 1):
        ops = [f"BT /F2 14 Tf 72 732 Td (Section {n}) Tj ET"]
        ops += [f"BT /F1 10 Tf 72 {702 - 20 * l} Td (Line {l} of page {n} carries some words.) Tj ET" for l in range(31)]
        body = "\n".join(ops)
        objs.append(f"<< /Length {len(body)} >>\nstream\n{body}\nendstream")
        objs.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> "
                    f"/Contents {len(objs)} 0 R >>")
        kids.append(f"{len(objs)} 0 R")
    objs[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {pages} >>"
    out, offs = ["%PDF-1.4\n"], []
    size = len(out[0])
    for i, o in enumerate(objs, 1):
        offs.append(size)
        piece = f"{i} 0 obj\n{o}\nendobj\n"
        out.append(piece)
        size += len(piece)
    out.append(f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n" + "".join(f"{o:010d} 00000 n \n" for o in offs))
    out.append(f"trailer\n<< /Size {len(objs) + 1} /Root 1 0 R >>\nstartxref\n{size}\n%%EOF\n")
    with open(path, "w", encoding="ascii") as f:
        f.write("".join(out))


def long_document(solar, pages):
    with tempfile.TemporaryDirectory() as tmp:
        pdf = os.path.join(tmp, "long.pdf")
        long_pdf(pdf, pages)
        out = os.path.join(tmp, "long.json")
        rc, wall, mb = measured([solar, "parse", "-q", pdf, "-o", out])
        if rc != 0:
            sys.exit(f"solar parse on {pages} pages failed ({rc})")
        j = json.load(open(out))
        heads = sum(e["content"]["text"] == f"Section {e['page']}" for e in j["elements"])
        ok = j["usage"]["pages"] == pages and heads == pages
        try:
            import fitz  # noqa: F401
            _, pwall, pmb = measured([sys.executable, "-c", PYMUPDF, pdf])
        except ImportError:
            pwall = pmb = None
    return dict(wall=wall, mb=mb, ok=ok, peer_wall=pwall, peer_mb=pmb)


def pubtabnet(solar, d, per_table=False):
    entries = [json.loads(l) for l in open(os.path.join(d, "PubTabNet_Examples.jsonl"))]
    full, struct, found = [], [], 0
    wall = cpu = 0
    for e in entries:
        j, w, c = run_solar(solar, [os.path.join(d, e["filename"])])
        wall += w; cpu += c
        tables = [x for x in j["elements"] if x["category"] == "table"]
        pred = None
        if tables:
            found += 1
            best = max(tables, key=lambda x: len(x["content"]["html"]))
            pred = pred_tree(best["content"]["html"])
        g = gt_tree(e)
        full.append(teds(pred, g)); struct.append(teds(pred, g, True))
        if per_table:
            print(f"  {e['filename']:26} TEDS {full[-1]:.3f}  structure {struct[-1]:.3f}  {c:5.2f} CPU-s")
    return sum(full) / len(full), sum(struct) / len(struct), found, len(entries), wall, cpu


# ---- debian-reference --------------------------------------------------------------------
class Headings(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.heads, self.cur, self.tables = [], None, 0
    def handle_starttag(self, tag, attrs):
        if tag in ("h1", "h2", "h3", "h4"):
            self.cur = ""
        if tag == "div" and ("class", "table") in attrs:
            self.tables += 1
    def handle_endtag(self, tag):
        if tag in ("h1", "h2", "h3", "h4") and self.cur is not None:
            self.heads.append(self.cur); self.cur = None
    def handle_data(self, data):
        if self.cur is not None:
            self.cur += data


class Blocks(html.parser.HTMLParser):
    """The HTML's text blocks in reading order: h1-h4, p and pre outside tables (a p inside a list item is one)."""
    TAGS = ("h1", "h2", "h3", "h4", "p", "pre")
    def __init__(self):
        super().__init__()
        self.blocks, self.cur, self.depth, self.table = [], None, 0, 0
    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.table += 1
        if tag in self.TAGS and not self.table:
            if self.cur is None:
                self.cur, self.depth = "", 0
            self.depth += 1
    def handle_endtag(self, tag):
        if tag == "table":
            self.table = max(0, self.table - 1)
        if tag in self.TAGS and self.cur is not None and not self.table:
            self.depth -= 1
            if self.depth == 0:
                self.blocks.append(self.cur); self.cur = None
    def handle_data(self, data):
        if self.cur is not None:
            self.cur += data


def alnum(s):
    return re.sub(r"[^a-z0-9]+", "", s.lower())


def seq_edit_distance(a, b):
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, y in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y))
        prev = cur
    return prev[-1]


def reading_order(gt_blocks, pred_texts, key_len=40):
    """Normalised edit distance between the HTML's block order and the order the
    same blocks come out in: each HTML block (40+ letters and digits, its first 40
    unique in both texts) is found in the concatenated output; the output order of
    the found blocks is compared with theirs (0 = same order, 1 = unrelated).
    Returns (distance, blocks found, blocks keyed)."""
    stream = "".join(alnum(t) for t in pred_texts)
    keys = [alnum(b)[:key_len] for b in gt_blocks]
    counts = {}
    for k in keys:
        counts[k] = counts.get(k, 0) + 1
    keyed = [k for k in keys if len(k) == key_len and counts[k] == 1]
    pos = []
    for k in keyed:
        at = stream.find(k)
        if at >= 0 and stream.find(k, at + 1) < 0:
            pos.append(at)
    if not pos:
        return 1.0, 0, len(keyed)
    rank = {p: i for i, p in enumerate(sorted(pos))}
    pred_order = [rank[p] for p in pos]
    return seq_edit_distance(list(range(len(pos))), pred_order) / len(pos), len(pos), len(keyed)


def norm(s):
    s = re.sub(r"^\s*(chapter|appendix)?\s*[0-9a-z]?(\.[0-9]+)*\.?\s+", "", s.lower())
    return re.sub(r"[^a-z0-9]+", "", s)


def debian(solar, pdf, html_dir, first, last):
    hp, bp = Headings(), Blocks()
    for f in sorted(os.listdir(html_dir)):
        if re.match(r"ch\d+\.en\.html$", f):
            text = open(os.path.join(html_dir, f), encoding="utf-8").read()
            hp.feed(text); bp.feed(text)
    gt_heads = {norm(h) for h in hp.heads if norm(h)}
    j, wall, cpu = run_solar(solar, [pdf])
    pages = j["usage"]["pages"]
    ours = {norm(e["content"]["text"]) for e in j["elements"] if e["category"].startswith("heading")}
    recall = len(gt_heads & ours) / len(gt_heads)
    tables = sum(e["category"] == "table" for e in j["elements"])
    order = {"solar parse": reading_order(bp.blocks, [e["content"]["text"] for e in j["elements"]
                                                      if e["category"] not in ("header", "footer")])}
    sub, _, _ = run_solar(solar, [pdf, "--first-page", str(first), "--last-page", str(last)])
    sub_tables = sum(e["category"] == "table" for e in sub["elements"])
    peers = {}
    try:
        import fitz
        t0 = time.process_time(); doc = fitz.open(pdf); texts = []
        for p in doc:
            texts += [b[4] for b in p.get_text("blocks")]
        peers["PyMuPDF text blocks"] = (len(doc), time.process_time() - t0)
        order["PyMuPDF text blocks"] = reading_order(bp.blocks, texts)
    except ImportError:
        pass
    try:
        import pdfplumber
        t0 = time.process_time(); n = 0
        with pdfplumber.open(pdf) as d:
            for p in d.pages[first - 1:last]:
                n += len(p.find_tables())
        peers["pdfplumber tables"] = (last - first + 1, time.process_time() - t0, n)
    except ImportError:
        pass
    return dict(pages=pages, gt_heads=len(gt_heads), recall=recall, tables=tables, gt_tables=hp.tables,
                wall=wall, cpu=cpu, sub_tables=sub_tables, peers=peers, order=order)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("solar")
    ap.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "layout"))
    ap.add_argument("--html", default="/usr/share/debian-reference")
    ap.add_argument("--min-teds", type=float, default=0.0, help="exit 1 when mean TEDS is below this")
    ap.add_argument("--only", choices=["debian", "publaynet", "pubtabnet", "pages"], help="run one of the evaluations")
    ap.add_argument("--pages", type=int, default=10000, help="pages of the generated document (--only pages)")
    ap.add_argument("--per-table", action="store_true", help="print each PubTabNet table's TEDS")
    a = ap.parse_args()
    model, flags = cpu_info()
    print(f"CPU: {model} | ISA: {flags} | {os.cpu_count()} cores (shared machine: timings are noisy)")
    pdf = os.path.join(a.data, "debian-reference.en.pdf")
    if a.only not in (None, "debian"):
        pass
    elif os.path.exists(pdf) and os.path.isdir(a.html):
        r = debian(a.solar, pdf, a.html, 40, 60)
        print(f"\n## debian-reference.en.pdf ({r['pages']} pages) vs its HTML")
        print(f"heading recall: {r['recall']:.3f} of {r['gt_heads']} h1-h4")
        print(f"tables: solar {r['tables']}, HTML numbered tables {r['gt_tables']}")
        for name, (d, found, keyed) in r["order"].items():
            print(f"reading order, {name}: normalised edit distance {d:.4f} over {found} of {keyed} HTML blocks found")
        sp = r["pages"] / r["cpu"]
        print(f"{'engine':24} {'pages':>6} {'CPU s':>7} {'pages/CPU-s':>12} {'ratio':>7}")
        print(f"{'solar parse':24} {r['pages']:6d} {r['cpu']:7.2f} {sp:12.1f} {1.0:7.2f}")
        for name, v in r["peers"].items():
            pps = v[0] / v[1]
            extra = f"  ({v[2]} tables on pages 40-60; solar {r['sub_tables']})" if len(v) > 2 else ""
            print(f"{name:24} {v[0]:6d} {v[1]:7.2f} {pps:12.1f} {pps / sp:7.2f}{extra}")
    else:
        print("debian-reference: skipped (PDF or /usr/share/debian-reference HTML absent)")
    pl = os.path.join(a.data, "publaynet")
    if os.path.isdir(pl) and a.only in (None, "publaynet"):
        rows, m, n, wall, cpu = publaynet(a.solar, pl)
        print(f"\n## PubLayNet ({n} pages, OCR; {n / cpu:.2f} pages/CPU-s)")
        print(f"{'category':10} {'gt':>4} {'pred':>5} {'P@.5':>6} {'R@.5':>6} {'AP':>6}")
        for c, ng, npd, p, rc, apv in rows:
            print(f"{c:10} {ng:4d} {npd:5d} {p:6.3f} {rc:6.3f} {apv:6.3f}")
        print(f"mAP@[.5:.95] (single operating point): {m:.3f}")
        st = scanned_threads(a.solar, pl)
        if st:
            n, runs, same = st
            base = n / runs[1][0]
            print(f"\nthe same pages as one scanned PDF ({os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}):")
            for t, (w, c) in runs.items():
                print(f"  -t {t}: {n / w:.2f} pages/s wall ({n / w / base:.2f}x), {c:.1f} CPU-s")
            print(f"  outputs identical across thread counts: {same}")
        n, walls, same = images_threads(a.solar, pl)
        print(f"\nthe same {n} images in one call (load average {os.getloadavg()[0]:.1f}):")
        for t, w in walls.items():
            print(f"  -t {t}: {n / w:.2f} images/s wall ({walls[1] / w:.2f}x)")
        print(f"  outputs identical across thread counts: {same}")
    tn = os.path.join(a.data, "pubtabnet")
    mean = None
    if a.only == "pubtabnet" and not os.path.isdir(tn):
        print(f"SKIP: {tn} absent (shared data)")
        sys.exit(77)
    if os.path.isdir(tn) and a.only in (None, "pubtabnet"):
        if a.per_table:
            print()
        mean, ms, found, n, wall, cpu = pubtabnet(a.solar, tn, a.per_table)
        print(f"\n## PubTabNet ({n} table images; a table found in {found}; {n / cpu:.2f} images/CPU-s)")
        print(f"TEDS {mean:.3f}  TEDS-structure {ms:.3f}  (target 0.85)")
    if a.only == "pages":
        r = long_document(a.solar, a.pages)
        if r:
            print(f"\n## {a.pages} generated pages, 32 lines each (load average {os.getloadavg()[0]:.1f})")
            print(f"{'engine':24} {'wall s':>7} {'pages/s':>8} {'peak RSS MB':>12}")
            print(f"{'solar parse':24} {r['wall']:7.1f} {a.pages / r['wall']:8.0f} {r['mb']:12.0f}   output correct: {r['ok']}")
            if r["peer_wall"]:
                print(f"{'PyMuPDF text blocks':24} {r['peer_wall']:7.1f} {a.pages / r['peer_wall']:8.0f} {r['peer_mb']:12.0f}")
    if mean is not None and mean < a.min_teds:
        print(f"FAIL: mean TEDS {mean:.3f} is below the floor {a.min_teds}")
        sys.exit(1)


if __name__ == "__main__":
    main()
