"""`solar serve` through the `openai` package (the client most programs use).

On a tiny random model (ASCII tokenizer, no shared data needed), a server with 4 slots:
- chat completions, non-streaming and streaming (same seed: same text; usage adds up;
  finish_reason "length" at max_tokens), and /v1/models;
- text completions equal `solar generate` with the same prompt, seed and sampling, for 16
  requests sent at once (continuous batching: each as if alone) and streamed;
- errors as OpenAI's typed exceptions: wrong API key (401), a wrong type, max_tokens over
  the limit, a prompt longer than the context (400 context_length_exceeded);
- SIGTERM: the server exits 0.
Run: python3 test_serve_openai.py SOLAR_BIN
"""
import concurrent.futures
import os
import subprocess
import sys
import tempfile

import common
import serve_util

common.skip_if_asked()
try:
    import openai
except ImportError as e:
    common.missing(e)

SOLAR = sys.argv[1]
KEY = "test-key"
check = serve_util.check


def generate(model, prompt, n, seed, temp):
    r = subprocess.run([SOLAR, "generate", "-m", model, "-p", prompt, "-n", str(n), "-s", str(seed), "--temp", str(temp),
                        "-t", "1"], capture_output=True)
    if r.returncode != 0:
        sys.exit(f"solar generate failed: {r.stderr}")
    return r.stdout.decode()  # bytes: text mode would turn a generated "\r" into "\n"


def main():
    with tempfile.TemporaryDirectory() as d:
        model = serve_util.tiny_model(SOLAR, d)
        with serve_util.Server(SOLAR, model, "-np", "4", "-c", "256", "-t", "1", "--api-key", KEY,
                               "--max-tokens", "64") as srv:
            client = openai.OpenAI(base_url=srv.url + "/v1", api_key=KEY, max_retries=0, timeout=60)
            models = client.models.list()
            check([m.id for m in models.data] == ["m"], "GET /v1/models lists the model")

            msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there"}]
            r = client.chat.completions.create(model="m", messages=msgs, max_tokens=12, seed=5, temperature=0.7)
            text = r.choices[0].message.content
            check(r.object == "chat.completion" and r.choices[0].message.role == "assistant", "chat completion shape")
            check(r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens, "usage adds up")
            check(r.choices[0].finish_reason in ("stop", "length"), f"finish_reason {r.choices[0].finish_reason}")
            if r.choices[0].finish_reason == "length":
                check(r.usage.completion_tokens == 12, "length: max_tokens tokens generated")

            stream = client.chat.completions.create(model="m", messages=msgs, max_tokens=12, seed=5, temperature=0.7,
                                                    stream=True, stream_options={"include_usage": True})
            parts, finish, usage = [], None, None
            for chunk in stream:
                if chunk.usage:
                    usage = chunk.usage
                for c in chunk.choices:
                    if c.delta.content:
                        parts.append(c.delta.content)
                    if c.finish_reason:
                        finish = c.finish_reason
            check("".join(parts) == text, "streamed chat == non-streamed chat (same seed)")
            check(finish == r.choices[0].finish_reason, "streamed finish_reason")
            check(usage is not None and usage.completion_tokens == r.usage.completion_tokens, "streamed usage")

            # 16 text completions at once: each equals `solar generate` alone.
            reqs = [(f"Prompt {i} " + "xyz"[i % 3] * i, 10 + i % 4, 100 + i, 0.0 if i % 4 == 0 else 0.8) for i in range(16)]

            def complete(p):
                prompt, n, seed, temp = p
                return client.completions.create(model="m", prompt=prompt, max_tokens=n, seed=seed,
                                                 temperature=temp).choices[0].text

            with concurrent.futures.ThreadPoolExecutor(16) as ex:
                got = list(ex.map(complete, reqs))
            want = [generate(model, *p) for p in reqs]
            same = sum(g == w for g, w in zip(got, want))
            for p, g, w in zip(reqs, got, want):
                if g != w:
                    print(f"  {p}: served {g!r}, generate {w!r}")
            check(same == 16, f"16 concurrent completions == solar generate alone ({same}/16)")
            s = client.completions.create(model="m", prompt=reqs[3][0], max_tokens=reqs[3][1], seed=reqs[3][2],
                                          temperature=reqs[3][3], stream=True)
            check("".join(c.choices[0].text for c in s) == want[3], "streamed completion == solar generate")

            bad = openai.OpenAI(base_url=srv.url + "/v1", api_key="wrong", max_retries=0)
            try:
                bad.models.list()
                check(False, "wrong API key refused")
            except openai.AuthenticationError as e:
                check(e.status_code == 401, "wrong API key: 401 AuthenticationError")
            for what, kwargs, code in [
                ("max_tokens of a wrong type", {"max_tokens": "many"}, None),
                ("max_tokens over --max-tokens", {"max_tokens": 65}, None),
                ("a prompt longer than the context", {"prompt": "a" * 300}, "context_length_exceeded"),
            ]:
                args = {"model": "m", "prompt": "hi", **kwargs}
                try:
                    client.completions.create(**args)
                    check(False, f"{what} refused")
                except openai.BadRequestError as e:
                    body = e.body if isinstance(e.body, dict) else {}
                    check(e.status_code == 400 and "message" in body and (code is None or body.get("code") == code),
                          f"{what}: 400 BadRequestError ({body.get('message', '')[:80]})")
            rc = srv.stop()
            check(rc == 0, f"SIGTERM: exit status {rc}")
    serve_util.report()


if __name__ == "__main__":
    main()
