"""Load test: `solar serve` and llama.cpp's server on the same GGUF, same threads, one run.

  python bench/serve_load.py BUILD_DIR [--preset 50m] [--tokenizer ../shared/data/tokenizers/llama2.model]
      [--concurrency 1,4,16,64] [--requests-per-client 2] [--prompt 32] [--gen 32] [--threads 2]
      [--ctx 256] [--servers solar,llamacpp] [--workdir DIR]

The model: `solar init --preset P` (random weights, f32, the tokenizer's vocabulary) →
`solar convert` to one GGUF F32 file (kept in --workdir, default BUILD_DIR/serve_load),
served by `solar serve -np MAX_CONCURRENCY` and by llama-cpp-python's server
(`python -m llama_cpp.server`, llama.cpp's OpenAI server in Python; one sequence at a
time, as it has no continuous batching; --interrupt_requests False so that a new request
waits instead of cutting the running one short), each with --threads threads and a context of
--ctx tokens per sequence.

Per concurrency level C: C asyncio clients on loopback, each sending --requests-per-client
streaming /v1/completions requests one after another (temperature 0, max_tokens --gen,
a prompt of about --prompt tokens), so at most C requests are in flight. Each client keeps
its connection open between its requests, as the openai package's connection pool does
(`--no-keep-alive`: a connection per request). Reported:
aggregate generated tokens/s (all tokens of the level over its wall time), p50/p99 time to
first token, p50/p99 inter-token latency (a request's (last - first token time) / (tokens
- 1)), failed requests, and solar's tok/s as a ratio of llama.cpp's at the same level.
A reply that ends at max_tokens counts --gen tokens; one that stops earlier (EOS) counts
solar's usage figure or llama.cpp's chunks (one per token), and is reported.

The HTTP client is plain asyncio (no third-party package). The machine is shared:
figures are noisy; compare the ratios of one run.
"""
import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def log(msg):
    print(msg, flush=True)


def cpu_line():
    model, flags = platform.processor() or "?", set()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    isa = [f for f in ("sse4_2", "avx", "avx2", "fma", "f16c", "avx_vnni", "avx512f", "avx512bw", "avx512_vnni",
                       "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8") if f in flags]
    return f"CPU: {model}; {os.cpu_count()} logical CPUs; ISA: {' '.join(isa) or 'unknown'}"


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"failed ({r.returncode}): {' '.join(cmd)}\n{r.stdout}{r.stderr}")


def make_model(solar, args):
    path = os.path.join(args.workdir, f"{args.preset}-f32.gguf")
    meta = {"preset": args.preset, "tokenizer": os.path.abspath(args.tokenizer)}
    try:
        if json.load(open(path + ".json")) == meta and os.path.exists(path):
            log(f"model: cached {path}")
            return path
    except (OSError, ValueError):
        pass
    os.makedirs(args.workdir, exist_ok=True)
    hf = os.path.join(args.workdir, f"{args.preset}-hf")
    run([solar, "init", "--preset", args.preset, "--outtype", "f32", "--tokenizer", args.tokenizer, "-o", hf, "--force"])
    try:
        run([solar, "convert", "-m", hf, "-o", path, "--outtype", "f32", "--force"])
    finally:
        shutil.rmtree(hf, ignore_errors=True)
    json.dump(meta, open(path + ".json", "w"))
    log(f"model: made {path} ({os.path.getsize(path) / 1e6:.0f} MB)")
    return path


class _Collect(asyncio.Protocol):
    """A response's bytes as they arrive, each piece with its arrival time; nothing parsed until the end.
    The clients share the server's two cores: an event costs the client one callback here, where a
    StreamReader parse cost three awaits and a JSON decode (35 us a token), which at 16 clients took
    a quarter of a core from the server under test."""

    def __init__(self):
        self.pieces, self.tail, self.chunked, self.closes = [], b"", None, False
        self.done = asyncio.get_running_loop().create_future()

    def data_received(self, data):
        self.pieces.append((time.perf_counter(), data))
        if self.chunked is None and b"\r\n\r\n" in b"".join(p for _, p in self.pieces):
            head = b"".join(p for _, p in self.pieces).split(b"\r\n\r\n", 1)[0].lower()
            self.chunked = b"transfer-encoding: chunked" in head
            self.closes = b"connection: close" in head
        self.tail = (self.tail + data)[-7:]
        if self.chunked and self.tail == b"\r\n0\r\n\r\n" and not self.done.done():
            self.done.set_result(None)  # the last chunk: the server may keep the connection open

    def connection_lost(self, exc):
        if not self.done.done():
            self.done.set_result(None)


def sse_events(pieces):
    """(time, SSE data string) of each event of a response given as (arrival time, bytes) pieces:
    an event's time is that of the piece that completed it. Raises on a non-200 status."""
    import bisect
    raw = b"".join(p for _, p in pieces)
    ends, at = [], 0
    for _, p in pieces:
        at += len(p)
        ends.append(at)
    when = lambda offset: pieces[bisect.bisect_left(ends, offset + 1)][0]  # the piece holding byte `offset`
    head, sep, _ = raw.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0]
    if not sep or b" 200 " not in status:
        raise RuntimeError(status.decode(errors="replace").strip() or "no response")
    pos = len(head) + 4
    chunked = b"transfer-encoding: chunked" in head.lower()
    buf, events = b"", []
    while pos < len(raw):
        if chunked:
            eol = raw.find(b"\r\n", pos)
            size = int(raw[pos:eol].strip() or b"0", 16) if eol >= 0 else 0
            if size == 0:
                break
            data, pos = raw[eol + 2:eol + 2 + size], eol + 2 + size + 2
            t = when(pos - 3)
        else:
            data, t, pos = raw[pos:], when(len(raw) - 1), len(raw)
        buf += data
        while (i := buf.find(b"\n\n")) >= 0 or (i := buf.find(b"\r\n\r\n")) >= 0:
            event, buf = buf[:i], buf[i:].lstrip(b"\r\n")
            for line in event.splitlines():
                if line.startswith(b"data: "):
                    events.append((t, line[6:].decode()))
    return events


class Connection:
    """A client's HTTP/1.1 connection, kept open between its requests unless keep_alive is False
    or the server says it closes (then the next request opens another)."""

    def __init__(self, port, keep_alive):
        self.port, self.keep_alive, self.transport = port, keep_alive, None

    async def stream(self, path, body):
        """POSTs JSON; returns the (time, SSE data string) of each event once the response has ended."""
        proto = _Collect()
        if self.transport is None or self.transport.is_closing():
            self.transport, _ = await asyncio.get_running_loop().create_connection(lambda: proto, "127.0.0.1", self.port)
        else:
            self.transport.set_protocol(proto)
        payload = json.dumps(body).encode()
        ok = False
        try:
            self.transport.write(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                                 f"Content-Length: {len(payload)}\r\n"
                                 f"{'' if self.keep_alive else 'Connection: close' + chr(13) + chr(10)}\r\n".encode() + payload)
            await proto.done
            ok = self.keep_alive and not proto.closes
        finally:
            if not ok:
                self.close()
        return sse_events(proto.pieces)

    def close(self):
        if self.transport is not None:
            self.transport.close()
            self.transport = None


async def one_request(conn, prompt, args, counts_usage):
    body = {"model": "m", "prompt": prompt, "max_tokens": args.gen, "temperature": 0, "stream": True}
    if counts_usage:
        body["stream_options"] = {"include_usage": True}
    t0 = time.perf_counter()
    first = last = finish = None
    chunks = usage = 0
    for t, data in await conn.stream("/v1/completions", body):
        if data == "[DONE]":
            break
        ev = json.loads(data)
        if ev.get("usage"):
            usage = ev["usage"]["completion_tokens"]
        for c in ev.get("choices", []):
            if c.get("text"):
                first = first or t
                last = t
                chunks += 1
            finish = c.get("finish_reason") or finish
    # A reply cut at max_tokens has exactly that many tokens, however its text was chunked.
    n = args.gen if finish == "length" else usage if counts_usage else chunks
    return {"ttft": (first - t0) if first else None, "itl": (last - first) / (n - 1) if n > 1 and first else None,
            "tokens": n, "early": finish != "length"}


async def level(port, conc, args, counts_usage):
    prompt = " ".join(["The quick brown fox jumps over the lazy dog."] * max(1, args.prompt // 11))
    results, failed = [], 0

    async def client(c):
        nonlocal failed
        conn = Connection(port, args.keep_alive)
        for r in range(args.requests_per_client):
            try:
                results.append(await one_request(conn, f"{c}.{r} {prompt}", args, counts_usage))
            except Exception as e:  # a failed request is a figure, not the end of the run
                failed += 1
                conn.close()
                if failed <= 3:
                    log(f"    request failed: {e}")
        conn.close()

    t = time.perf_counter()
    await asyncio.gather(*(client(c) for c in range(conc)))
    wall = time.perf_counter() - t
    return results, failed, wall


def pct(xs, p):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return float("nan")
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def start_solar(solar, model, args, max_conc):
    p = subprocess.Popen([solar, "serve", "-m", model, "--port", "0", "-np", str(max_conc), "-c", str(args.ctx),
                          "-t", str(args.threads), "--log-level", "warn", "--max-tokens", str(max(args.gen, 16))],
                         stdout=subprocess.PIPE, text=True)
    url = p.stdout.readline().strip()
    return p, int(url.rsplit(":", 1)[1])


def start_llamacpp(model, args, max_conc):
    port = free_port()
    p = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", model, "--host", "127.0.0.1",
                          "--port", str(port), "--n_ctx", str(args.ctx), "--n_threads", str(args.threads),
                          "--n_threads_batch", str(args.threads), "--model_alias", "m",
                          # Its default lets each new request cut the running one short; queue them instead.
                          "--interrupt_requests", "False"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return p, port


def wait_ready(port, proc, path):
    import urllib.request
    for _ in range(600):
        if proc.poll() is not None:
            sys.exit(f"server exited with {proc.returncode} before it was ready")
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2).status == 200:
                return
        except Exception:
            time.sleep(0.1)
    sys.exit("server not ready after 60 s")


def stop(proc):
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("build")
    ap.add_argument("--preset", default="50m")
    ap.add_argument("--tokenizer", default=os.path.join(ROOT, "..", "shared", "data", "tokenizers", "llama2.model"))
    ap.add_argument("--concurrency", default="1,4,16,64")
    ap.add_argument("--requests-per-client", type=int, default=2)
    ap.add_argument("--prompt", type=int, default=32, help="about this many prompt tokens")
    ap.add_argument("--gen", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ctx", type=int, default=256)
    ap.add_argument("--servers", default="solar,llamacpp")
    ap.add_argument("--workdir")
    ap.add_argument("--no-keep-alive", dest="keep_alive", action="store_false",
                    help="a connection per request (default: each client keeps one open, as openai's client does)")
    args = ap.parse_args()
    solar = os.path.join(args.build, "solar")
    args.workdir = args.workdir or os.path.join(args.build, "serve_load")
    if not os.path.exists(args.tokenizer):
        sys.exit(f"{args.tokenizer}: absent (the shared data's Llama 2 tokenizer; give --tokenizer)")
    levels = [int(c) for c in args.concurrency.split(",")]
    log(cpu_line())
    log(f"preset {args.preset}, F32 GGUF, {args.threads} threads, ctx {args.ctx}, prompt ~{args.prompt} tokens, "
        f"gen {args.gen}, {args.requests_per_client} requests per client, "
        f"{'connections kept alive' if args.keep_alive else 'a connection per request'}; the machine is shared: figures are noisy")
    model = make_model(solar, args)
    table = {}
    for name in args.servers.split(","):
        if name == "solar":
            proc, port = start_solar(solar, model, args, max(levels))
            health, usage = "/health", True
        elif name == "llamacpp":
            proc, port = start_llamacpp(model, args, max(levels))
            health, usage = "/v1/models", False
        else:
            sys.exit(f"--servers: unknown {name!r} (solar, llamacpp)")
        try:
            wait_ready(port, proc, health)
            asyncio.run(level(port, 1, argparse.Namespace(**{**vars(args), "requests_per_client": 1}), usage))  # warm-up
            for c in levels:
                results, failed, wall = asyncio.run(level(port, c, args, usage))
                toks = sum(r["tokens"] for r in results)
                row = {"tok_s": toks / wall, "ttft50": pct([r["ttft"] for r in results], 50),
                       "ttft99": pct([r["ttft"] for r in results], 99), "itl50": pct([r["itl"] for r in results], 50),
                       "itl99": pct([r["itl"] for r in results], 99), "failed": failed, "n": len(results) + failed,
                       "early": sum(r["early"] for r in results)}
                table[(name, c)] = row
                log(f"{name:9s} C={c:3d}: {row['tok_s']:8.1f} tok/s  TTFT p50 {row['ttft50'] * 1e3:8.1f} ms "
                    f"p99 {row['ttft99'] * 1e3:8.1f} ms  ITL p50 {row['itl50'] * 1e3:7.1f} ms p99 "
                    f"{row['itl99'] * 1e3:7.1f} ms  failed {failed}/{row['n']}  stopped before max_tokens {row['early']}")
        finally:
            stop(proc)
    for name in args.servers.split(","):
        if (name, 1) in table and len(levels) > 1:
            log(f"{name}: aggregate tok/s against one client: " +
                ", ".join(f"C={c}: {table[(name, c)]['tok_s'] / table[(name, 1)]['tok_s']:.2f}x" for c in levels if c != 1))
    if all((s, c) in table for s in ("solar", "llamacpp") for c in levels):
        log("solar / llama.cpp aggregate tok/s: " +
            ", ".join(f"C={c}: {table[('solar', c)]['tok_s'] / table[('llamacpp', c)]['tok_s']:.2f}x" for c in levels))


if __name__ == "__main__":
    main()
