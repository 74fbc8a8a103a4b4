"""Helper for tests/test_trainer.py: a tiny run that is launched both in-process and under torchrun.

    python -m torch.distributed.run --standalone --nproc_per_node=2 tests/ddp_worker.py OUT_DIR GRAD_ACCUM

trains a tiny model (no dropout, so that the processes' different RNG streams do not matter) for a few steps;
rank 0 writes OUT_DIR/ckpt.pt. The test compares it with the same run in one process.
"""

from __future__ import annotations

import sys

import torch
import torch.nn as nn
from torch.nn import functional as F

from gpt_reference.config import TrainConfig
from gpt_reference.trainer import Trainer

VOCAB, BLOCK = 16, 8


class TinyLM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(VOCAB, 16)
        self.ln = nn.LayerNorm(16)
        self.head = nn.Linear(16, VOCAB)

    def forward(self, idx, targets=None):
        logits = self.head(torch.tanh(self.ln(self.emb(idx))))
        loss = None if targets is None else F.cross_entropy(logits.view(-1, VOCAB), targets.view(-1))
        return logits, loss


class Windows:
    """Random windows of a fixed token sequence; the rows depend only on the generator."""

    def __init__(self) -> None:
        g = torch.Generator().manual_seed(0)
        self.tokens = {s: torch.randint(0, VOCAB, (200,), generator=g) for s in ("train", "val")}

    def get_batch(self, split, batch_size, generator, device):
        data = self.tokens[split]
        ix = torch.randint(0, len(data) - BLOCK - 1, (batch_size,), generator=generator)
        x = torch.stack([data[i : i + BLOCK] for i in ix])
        y = torch.stack([data[i + 1 : i + 1 + BLOCK] for i in ix])
        return x.to(device), y.to(device)


def run(out_dir: str, grad_accum_steps: int) -> dict:
    torch.manual_seed(0)
    model = TinyLM()
    config = TrainConfig(
        out_dir=out_dir,
        max_iters=5,
        batch_size=4,
        grad_accum_steps=grad_accum_steps,
        learning_rate=1e-2,
        warmup_iters=2,
        lr_decay_iters=5,
        min_lr=1e-3,
        eval_interval=5,
        eval_iters=2,
        log_interval=1,
        device="cpu",
        progress=False,
    )
    return Trainer(model, config, Windows()).fit()


if __name__ == "__main__":
    run(sys.argv[1], int(sys.argv[2]))
