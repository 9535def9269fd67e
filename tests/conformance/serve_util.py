"""Shared by the `solar serve` tests: a tiny model and a server that is always shut down."""
import os
import struct
import subprocess
import sys


def ascii_tokenizer_bin(path):
    """A llama2.c tokenizer.bin: <unk> <s> </s> and the 128 ASCII byte pieces (src/testing/tokenizers.h's)."""
    pieces = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(128)]
    out = struct.pack("<i", 6)
    for p in pieces:
        b = p.encode()
        out += struct.pack("<fi", 0.0, len(b)) + b
    with open(path, "wb") as f:
        f.write(out)


def tiny_model(solar, d, preset="tiny", layers=2):
    """A random F32 model (2 layers of the tiny preset by default) with the ASCII tokenizer (vocab 131)."""
    tok = os.path.join(d, "tokenizer.bin")
    ascii_tokenizer_bin(tok)
    m = os.path.join(d, "m" if preset == "tiny" else preset)
    r = subprocess.run([solar, "init", "--preset", preset, "--layers", str(layers), "--outtype", "f32", "--tokenizer", tok,
                        "-o", m], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"solar init failed:\n{r.stdout}{r.stderr}")
    return m


fails = []


def check(ok, what):
    """Prints one check's outcome; failures are collected for report()."""
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        fails.append(what)


def report():
    if fails:
        print(f"FAIL: {len(fails)} check(s)")
        sys.exit(1)
    print("PASS")


class Server:
    """`solar serve` on an ephemeral 127.0.0.1 port; a context manager that always stops it (SIGTERM, then kill)."""

    def __init__(self, solar, model, *args):
        self.proc = subprocess.Popen([solar, "serve", "-m", model, "--port", "0", "--log-level", "warn", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.url = self.proc.stdout.readline().strip()
        if not self.url.startswith("http://127.0.0.1:"):
            self.stop()
            sys.exit(f"solar serve did not start: {self.url!r} {self.proc.stderr.read()}")
        import time
        import urllib.request
        for _ in range(200):
            try:
                if urllib.request.urlopen(self.url + "/health", timeout=5).status == 200:
                    break
            except Exception:
                time.sleep(0.05)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
