"""Lesson 06's training loop: ``Trainer``'s steps, in one process, written with lesson 04's free functions.

``Trainer`` (``gpt_reference.trainer``) adds what a long run needs around its steps: DistributedDataParallel, mixed
precision, evaluation, checkpoints, metrics and callbacks. Its steps themselves are this loop, so the same seed,
config, data and starting weights give the same per-step losses (tests/test_your_gpt_checks.py checks it).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .config import TrainConfig
from .data import batch_seed, get_batch
from .optim import get_lr
from .trainer import train_step


def train(model: nn.Module, optimizer: torch.optim.Optimizer, train_data: torch.Tensor, config: TrainConfig,
          start: int = 0, stop: int | None = None) -> list[float]:
    """Optimizer steps ``start .. stop - 1`` (``stop``: ``config.max_iters``) of the run ``config`` describes, on the
    1-D token tensor ``train_data``; returns each step's mean loss. Step ``s``:

    1. sets every parameter group's learning rate to ``get_lr(s, ...)`` (``config.learning_rate`` without decay);
    2. draws micro-batch ``g`` (of ``config.grad_accum_steps``) with ``get_batch`` and its own generator,
       ``torch.Generator().manual_seed(batch_seed(config.seed, "train", s, g))``: the rows depend on the step number
       only, so a run continued from step ``start`` reads the batches an uninterrupted one would;
    3. calls ``train_step`` once on all of them (gradient accumulation, clipping to ``config.grad_clip``).
    """
    device = next(model.parameters()).device
    losses = []
    for step in range(start, config.max_iters if stop is None else stop):
        lr = config.learning_rate
        if config.decay_lr:
            lr = get_lr(step, config.warmup_iters, config.lr_decay_iters, config.learning_rate, config.min_lr)
        for group in optimizer.param_groups:
            group["lr"] = lr
        batches = []
        for micro in range(config.grad_accum_steps):
            generator = torch.Generator().manual_seed(batch_seed(config.seed, "train", step, micro))
            batches.append(get_batch(train_data, model.config.block_size, config.batch_size, generator, device))
        losses.append(train_step(model, optimizer, batches, config.grad_clip))
    return losses
