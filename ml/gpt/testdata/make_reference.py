#!/usr/bin/env python3
"""Reference logits, loss and gradients of a tiny GPT-2 from PyTorch.

Writes, beside this script:
  tiny_gpt2.safetensors          the weights, Hugging Face GPT-2 names/layouts
  tiny_gpt2_outputs.safetensors  inputs, targets, mask (as F32), logits,
                                 loss, masked_loss and grad.<name> of `loss`

The model is written out in plain PyTorch (no transformers): GPT-2 with the
tanh GELU ("gelu_new"), LayerNorm eps 1e-5, Conv1D weights [in, out], tied
head. Run with Debian's python3-torch (1.13): /usr/bin/python3 make_reference.py
"""
import json
import math
import os
import struct

import torch

L, NH, C, T, V = 2, 2, 16, 8, 11
torch.manual_seed(1234)
g = torch.Generator().manual_seed(1234)


def rnd(*shape, std=0.2, mean=0.0):
    return (torch.randn(*shape, generator=g, dtype=torch.float64) * std + mean).float()


params = {"wte.weight": rnd(V, C, std=0.5), "wpe.weight": rnd(T, C, std=0.3)}
for l in range(L):
    p = f"h.{l}."
    params[p + "ln_1.weight"] = rnd(C, mean=1.0)
    params[p + "ln_1.bias"] = rnd(C, std=0.1)
    params[p + "attn.c_attn.weight"] = rnd(C, 3 * C)
    params[p + "attn.c_attn.bias"] = rnd(3 * C, std=0.1)
    params[p + "attn.c_proj.weight"] = rnd(C, C)
    params[p + "attn.c_proj.bias"] = rnd(C, std=0.1)
    params[p + "ln_2.weight"] = rnd(C, mean=1.0)
    params[p + "ln_2.bias"] = rnd(C, std=0.1)
    params[p + "mlp.c_fc.weight"] = rnd(C, 4 * C)
    params[p + "mlp.c_fc.bias"] = rnd(4 * C, std=0.1)
    params[p + "mlp.c_proj.weight"] = rnd(4 * C, C)
    params[p + "mlp.c_proj.bias"] = rnd(C, std=0.1)
params["ln_f.weight"] = rnd(C, mean=1.0)
params["ln_f.bias"] = rnd(C, std=0.1)
for t in params.values():
    t.requires_grad_(True)


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def ln(x, name):
    return torch.nn.functional.layer_norm(x, (C,), params[name + ".weight"], params[name + ".bias"], 1e-5)


def forward(idx):
    B, Tn = idx.shape
    x = params["wte.weight"][idx] + params["wpe.weight"][:Tn]
    hs = C // NH
    causal = torch.tril(torch.ones(Tn, Tn, dtype=torch.bool))
    for l in range(L):
        p = f"h.{l}."
        h = ln(x, p + "ln_1")
        qkv = h @ params[p + "attn.c_attn.weight"] + params[p + "attn.c_attn.bias"]
        q, k, v = qkv.split(C, dim=2)
        q = q.view(B, Tn, NH, hs).transpose(1, 2)
        k = k.view(B, Tn, NH, hs).transpose(1, 2)
        v = v.view(B, Tn, NH, hs).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(hs)
        att = att.masked_fill(~causal, float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(B, Tn, C)
        x = x + y @ params[p + "attn.c_proj.weight"] + params[p + "attn.c_proj.bias"]
        h = ln(x, p + "ln_2")
        h = gelu_new(h @ params[p + "mlp.c_fc.weight"] + params[p + "mlp.c_fc.bias"])
        x = x + h @ params[p + "mlp.c_proj.weight"] + params[p + "mlp.c_proj.bias"]
    x = ln(x, "ln_f")
    return x @ params["wte.weight"].t()


inputs = torch.tensor([[3, 1, 4, 1, 5, 9, 2, 6], [5, 3, 5, 8, 9, 7, 9, 3]])
targets = torch.tensor([[1, 4, 1, 5, 9, 2, 6, 5], [3, 5, 8, 9, 7, 9, 3, 2]])
mask = torch.tensor([[0, 0, 1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 1, 1, 1]])
logits = forward(inputs)
nll = torch.nn.functional.cross_entropy(logits.view(-1, V), targets.view(-1), reduction="none")
masked_loss = (nll * mask.view(-1)).sum() / mask.sum()
loss = nll.mean()
loss.backward()


def write_safetensors(path, tensors):
    """A small safetensors writer: sorted names, F32, space-padded header."""
    names = sorted(tensors)
    header, off, blobs = {}, 0, []
    for n in names:
        t = tensors[n].detach().float().contiguous()
        b = t.numpy().astype("<f4").tobytes()
        header[n] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


here = os.path.dirname(os.path.abspath(__file__))
write_safetensors(os.path.join(here, "tiny_gpt2.safetensors"), params)
out = {
    "inputs": inputs.float(),
    "targets": targets.float(),
    "mask": mask.float(),
    "logits": logits,
    "loss": loss.reshape(1),
    "masked_loss": masked_loss.reshape(1),
}
for n, t in params.items():
    out["grad." + n] = t.grad
write_safetensors(os.path.join(here, "tiny_gpt2_outputs.safetensors"), out)
print("torch", torch.__version__, "loss", loss.item(), "masked_loss", masked_loss.item())
