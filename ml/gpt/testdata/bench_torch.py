#!/usr/bin/env python3
"""PyTorch side of BenchmarkTrainStep (ml/gpt/bench_test.go): nanoGPT's CPU
shakespeare-char config (4 layers, 4 heads, 128 dims, context 64, batch 12,
vocab 65, no dropout), one step = zero_grad, forward, backward,
clip_grad_norm_(1.0), AdamW(betas 0.9/0.99). Prints tokens/s.

    /usr/bin/python3 bench_torch.py --threads 1 --steps 30
"""
import argparse
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--threads", type=int, default=1)
p.add_argument("--steps", type=int, default=30)
args = p.parse_args()
torch.set_num_threads(args.threads)
torch.manual_seed(1)
L, NH, C, T, V, B = 4, 4, 128, 64, 65, 12


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(C), nn.LayerNorm(C)
        self.c_attn, self.c_proj = nn.Linear(C, 3 * C), nn.Linear(C, C)
        self.c_fc, self.mlp_proj = nn.Linear(C, 4 * C), nn.Linear(4 * C, C)
        self.register_buffer("mask", torch.tril(torch.ones(T, T)).view(1, 1, T, T))

    def forward(self, x):
        Bn, Tn, _ = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
        q = q.view(Bn, Tn, NH, C // NH).transpose(1, 2)
        k = k.view(Bn, Tn, NH, C // NH).transpose(1, 2)
        v = v.view(Bn, Tn, NH, C // NH).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(C // NH))
        att = att.masked_fill(self.mask[:, :, :Tn, :Tn] == 0, float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(Bn, Tn, C)
        x = x + self.c_proj(y)
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(V, C), nn.Embedding(T, C)
        self.h = nn.ModuleList(Block() for _ in range(L))
        self.ln_f = nn.LayerNorm(C)

    def forward(self, idx, targets):
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
        for blk in self.h:
            x = blk(x)
        logits = self.ln_f(x) @ self.wte.weight.t()
        return F.cross_entropy(logits.view(-1, V), targets.view(-1))


model = GPT()
opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.99))
data = torch.randint(V, (10000,))


def step():
    ix = torch.randint(len(data) - T, (B,))
    x = torch.stack([data[i:i + T] for i in ix])
    y = torch.stack([data[i + 1:i + 1 + T] for i in ix])
    opt.zero_grad(set_to_none=True)
    loss = model(x, y)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()


for _ in range(3):
    step()
t0 = time.perf_counter()
c0 = time.process_time()
for _ in range(args.steps):
    step()
dt = time.perf_counter() - t0
cpu = time.process_time() - c0
print(f"torch {torch.__version__} threads {args.threads}: {args.steps * B * T / dt:.0f} tok/s ({dt / args.steps * 1e3:.1f} ms/step); CPU {cpu / args.steps * 1e3:.1f} ms/step, {args.steps * B * T / cpu:.0f} tok/cpu-s")
