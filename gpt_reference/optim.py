"""The optimizer and its schedule, nanoGPT's recipe (lesson 04): AdamW that decays the matrices only, and a learning
rate that warms up linearly and then follows a cosine down to ``min_lr``.
"""

from __future__ import annotations

import inspect
import math
from typing import Any

import torch
import torch.nn as nn


def configure_optimizer(
    model: nn.Module,
    weight_decay: float,
    lr: float,
    betas: tuple[float, float],
    *,
    device_type: str = "cpu",
) -> torch.optim.AdamW:
    """AdamW with two parameter groups: weight decay for every parameter with ``dim() >= 2`` (the matrices of
    Linear layers and embeddings), none for the rest (biases, LayerNorm gains and shifts).

    Weight decay pulls weights towards zero, a regulariser for the big matrices; pulled towards zero, a LayerNorm
    gain would switch its features off. Group 0 is the decayed one, group 1 the other. Only parameters with
    ``requires_grad`` are optimised; a tied weight (one tensor registered under two names) appears once. On CUDA
    and the CPU (``device_type``) the fused kernel updates each tensor in one pass, where PyTorch's default reads and
    writes it once per operation of the update (the same arithmetic, rounded a little differently).
    """
    params = [p for p in model.parameters() if p.requires_grad]  # parameters() yields a shared tensor once
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    extra: dict[str, Any] = {}
    if device_type in ("cuda", "cpu") and "fused" in inspect.signature(torch.optim.AdamW).parameters:
        extra["fused"] = True
    return torch.optim.AdamW(groups, lr=lr, betas=betas, **extra)


def get_lr(it: int, warmup_iters: int, lr_decay_iters: int, max_lr: float, min_lr: float) -> float:
    """The learning rate for optimizer step ``it`` (0-based: the first update uses ``it = 0``).

    * warmup, ``it < warmup_iters``: linear, ``max_lr * (it + 1) / (warmup_iters + 1)``, so step 0 already moves
      (nanoGPT's convention) and the last warmup step uses ``max_lr * warmup_iters / (warmup_iters + 1)``;
    * ``warmup_iters <= it < lr_decay_iters``: cosine from ``max_lr`` (at ``it = warmup_iters``) down to
      ``min_lr``, ``min_lr + (max_lr - min_lr) * (1 + cos(pi * r)) / 2`` with
      ``r = (it - warmup_iters) / (lr_decay_iters - warmup_iters)``;
    * ``it >= lr_decay_iters``: ``min_lr``.
    """
    if it < warmup_iters:
        return max_lr * (it + 1) / (warmup_iters + 1)
    if it >= lr_decay_iters:
        return min_lr
    decay_ratio = (it - warmup_iters) / (lr_decay_iters - warmup_iters)
    coeff = 0.5 * (1.0 + math.cos(math.pi * decay_ratio))
    return min_lr + coeff * (max_lr - min_lr)
