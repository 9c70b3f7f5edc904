#!/usr/bin/env python3
"""PyTorch 1.13 reference for optim: three AdamW steps (betas 0.9/0.99,
eps 1e-8, weight decay 0.1 on the first group only, lr changing per step)
with gradients clipped by clip_grad_norm_(max_norm=1.0) before each step.
Writes adamw_reference.json. Run: /usr/bin/python3 make_reference.py"""
import json
import torch

w = torch.tensor([0.5, -1.0, 2.0, 0.25], requires_grad=True)   # decayed
b = torch.tensor([0.1, -0.2], requires_grad=True)               # not decayed
opt = torch.optim.AdamW([{"params": [w], "weight_decay": 0.1},
                         {"params": [b], "weight_decay": 0.0}],
                        lr=1e-2, betas=(0.9, 0.99), eps=1e-8)
grads = [
    [0.3, -0.4, 1.2, 0.0, 0.5, -0.1],
    [-0.05, 0.02, 0.01, 0.03, -0.04, 0.06],
    [2.0, 1.0, -3.0, 0.5, 0.0, 1.0],
]
lrs = [1e-2, 5e-3, 2e-3]
norms = []
for g, lr in zip(grads, lrs):
    w.grad = torch.tensor(g[:4])
    b.grad = torch.tensor(g[4:])
    norms.append(float(torch.nn.utils.clip_grad_norm_([w, b], 1.0)))
    for group in opt.param_groups:
        group["lr"] = lr
    opt.step()
out = {"grads": grads, "lrs": lrs, "norms": norms,
       "params": [float(x) for x in torch.cat([w.detach(), b.detach()])]}
json.dump(out, open("adamw_reference.json", "w"), indent=1)
print(out)
