"""Data parallelism by hand (lesson 07): every process holds the whole model and a slice of the batch, and after
the backward pass the processes average their gradients, so that each takes the step one process would take on
the whole batch.

``average_gradients`` is that average, spelled out: one ``all_reduce`` per gradient. PyTorch's
``DistributedDataParallel``, which the Trainer uses under ``torchrun``, computes the same numbers faster: it packs
the gradients into buckets of about 25 MB, and all-reduces each bucket as soon as the backward pass has filled it,
while the backward pass goes on computing the earlier layers' gradients, so that communication hides behind
computation.
"""

from __future__ import annotations

import torch.distributed as dist
import torch.nn as nn


def average_gradients(model: nn.Module) -> None:
    """Replace every parameter's ``.grad`` with its mean over the processes of the default process group.

    Each process calls it after its own backward pass, on its own slice of the batch. ``all_reduce`` sums a tensor
    over the processes in place, and dividing by the number of processes gives the mean (DDP divides first, then
    sums): the gradient of the mean loss over all the rows, when the slices are the same size.
    Parameters without a gradient are left out, by every process alike, so that the collectives match up.
    """
    world_size = dist.get_world_size()
    for p in model.parameters():
        if p.grad is not None:
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
            p.grad /= world_size
