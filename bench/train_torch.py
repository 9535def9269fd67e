#!/usr/bin/env python3
"""PyTorch baseline for bench_train: the same Llama shape, batch and sequence,
forward + backward + AdamW, printing one JSON line with tokens/s.

usage: train_torch.py --preset 10m --seq 256 --batch 4 --threads 2 --steps 5 [--bf16]
Exits 77 when torch is not importable.
"""
import argparse
import json
import math
import sys
import time

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    sys.exit(77)

# torch >= 2.5 attends grouped K/V heads without materialising copies.
GQA = "enable_gqa" in (F.scaled_dot_product_attention.__doc__ or "")

# Same shapes as preset_config() in src/model/config.cpp:
# hidden, intermediate, layers, heads, kv_heads, vocab, tied.
PRESETS = {
    "tiny": (64, 172, 5, 8, 4, 512, True),
    "10m": (256, 688, 8, 8, 4, 8192, True),
    "50m": (512, 1376, 10, 8, 4, 16384, True),
    "110m": (768, 2048, 12, 12, 12, 32000, True),
}


class Block(torch.nn.Module):
    def __init__(self, d, ff, h, kv):
        super().__init__()
        self.h, self.kv, self.hd = h, kv, d // h
        self.ln1 = torch.nn.RMSNorm(d, eps=1e-5)
        self.ln2 = torch.nn.RMSNorm(d, eps=1e-5)
        self.q = torch.nn.Linear(d, h * self.hd, bias=False)
        self.k = torch.nn.Linear(d, kv * self.hd, bias=False)
        self.v = torch.nn.Linear(d, kv * self.hd, bias=False)
        self.o = torch.nn.Linear(h * self.hd, d, bias=False)
        self.gate = torch.nn.Linear(d, ff, bias=False)
        self.up = torch.nn.Linear(d, ff, bias=False)
        self.down = torch.nn.Linear(ff, d, bias=False)

    def forward(self, x, cos, sin):
        B, T, _ = x.shape
        y = self.ln1(x)
        q = self.q(y).view(B, T, self.h, self.hd).transpose(1, 2)
        k = self.k(y).view(B, T, self.kv, self.hd).transpose(1, 2)
        v = self.v(y).view(B, T, self.kv, self.hd).transpose(1, 2)

        def rope(t):  # HF rotate_half
            t1, t2 = t.chunk(2, dim=-1)
            return t * cos + torch.cat((-t2, t1), dim=-1) * sin

        q, k = rope(q), rope(k)
        if self.kv != self.h and not GQA:
            k = k.repeat_interleave(self.h // self.kv, dim=1)
            v = v.repeat_interleave(self.h // self.kv, dim=1)
        if GQA:
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=self.kv != self.h)
        else:
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.o(a.transpose(1, 2).reshape(B, T, -1))
        y = self.ln2(x)
        return x + self.down(F.silu(self.gate(y)) * self.up(y))


class Llama(torch.nn.Module):
    def __init__(self, d, ff, L, h, kv, vocab, tied):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, d)
        self.blocks = torch.nn.ModuleList(Block(d, ff, h, kv) for _ in range(L))
        self.norm = torch.nn.RMSNorm(d, eps=1e-5)
        self.head = torch.nn.Linear(d, vocab, bias=False)
        if tied:
            self.head.weight = self.embed.weight
        for name, p in self.named_parameters():  # as solar's Model::init
            if p.dim() == 2:
                out_proj = name.endswith(("o.weight", "down.weight"))
                torch.nn.init.normal_(p, 0.0, 0.02 / (math.sqrt(2 * L) if out_proj else 1.0))
        hd = d // h
        self.inv_freq = 1.0 / (10000.0 ** (torch.arange(0, hd, 2).float() / hd))

    def forward(self, idx, targets):
        T = idx.shape[1]
        f = torch.outer(torch.arange(T).float(), self.inv_freq)
        emb = torch.cat((f, f), dim=-1)
        cos, sin = emb.cos(), emb.sin()
        x = self.embed(idx)
        for b in self.blocks:
            x = b(x, cos, sin)
        logits = self.head(self.norm(x)).float()
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.reshape(-1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="10m", choices=sorted(PRESETS))
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--bf16", action="store_true", help="torch.autocast(cpu, bfloat16)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    d, ff, L, h, kv, vocab, tied = PRESETS[a.preset]
    model = Llama(d, ff, L, h, kv, vocab, tied)
    try:  # the fused CPU kernel (torch >= 2.4) is its fastest AdamW
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.1, fused=True)
    except (RuntimeError, TypeError):
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.1)
    tok = torch.randint(0, vocab, (a.batch, a.seq + 1))
    x, y = tok[:, :-1], tok[:, 1:]

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
            loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()

    loss = step()  # warm up
    times = []
    for _ in range(a.steps):  # the fastest step, as bench_train times its own
        t0 = time.perf_counter()
        loss = step()
        times.append(time.perf_counter() - t0)
    dt = min(times)
    print(json.dumps({
        "torch": torch.__version__, "preset": a.preset, "seq": a.seq, "batch": a.batch, "threads": a.threads,
        "bf16": a.bf16, "step_s": round(dt, 4), "tokens_per_s": round(a.batch * a.seq / dt, 1),
        "loss": round(loss, 4), "params": sum(p.numel() for p in model.parameters()),
    }))


if __name__ == "__main__":
    main()
