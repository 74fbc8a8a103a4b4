"""The reference's training step against the loop people would write instead: nanoGPT's ``train.py``, eager.

Both train the same model (the reference ``GPT``, the same initial weights) on the same rows of the same data (every
step's rows come from ``data.batch_seed``), with the same AdamW settings, learning-rate schedule and gradient
clipping, in one process and taking turns: a round is ``steps / rounds`` steps of the reference, then as many of the
plain loop (A B A B ...), so that a machine slowed down for a while slows both. Every step is timed; the first round
(start-up, and the reference's compilation) is left out. It prints the tokens/s of each at its median step time
(other processes on a shared machine make a few steps many times slower; the median ignores them), the ratio, and
the loss of each at the last step and their difference: the reference must be faster without training differently.
The JSON also has the tokens/s over all timed steps.

    python bench/bench_train_cpu.py                          # nanoGPT's CPU recipe (shakespeare_char_cpu), 200 steps
    python bench/bench_train_cpu.py --steps 400 --rounds 20 --json bench_cpu.json
    python bench/bench_train_cpu.py --compile=false          # any config key, as for `python -m gpt_reference train`

The reference is ``Trainer.step`` as ``fit`` takes it, the loss read every ``log_interval`` steps; the plain loop
is nanoGPT's: ``get_batch`` from the memory-mapped ``train.bin``, ``model(x, y)``, ``backward``, ``clip_grad_norm_``,
``torch.optim.AdamW`` as nanoGPT configures it (fused on CUDA only), ``loss.item()`` every ``log_interval`` steps.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from gpt_reference import data
from gpt_reference.cli import _model_config_for
from gpt_reference.config import RunConfig, TrainConfig, load_config
from gpt_reference.model import GPT
from gpt_reference.optim import get_lr
from gpt_reference.trainer import Trainer


class NanoGPTLoop:
    """nanoGPT's ``train.py`` training loop for a CPU, one step at a time."""

    def __init__(self, model: GPT, config: TrainConfig, train_bin: Path, dtype: np.dtype) -> None:
        self.model, self.config, self.train_bin, self.dtype = model, config, train_bin, dtype
        self.iter_num = 0
        # nanoGPT's configure_optimizers: decay the >= 2-D parameters; fused AdamW on CUDA only
        params = [p for p in model.parameters() if p.requires_grad]
        groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": config.weight_decay},
                  {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
        self.optimizer = torch.optim.AdamW(groups, lr=config.learning_rate, betas=(config.beta1, config.beta2))

    def get_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """nanoGPT's ``get_batch("train")``, its rows drawn as the reference draws them (``data.batch_seed``)."""
        block_size = self.model.config.block_size
        train = np.memmap(self.train_bin, dtype=self.dtype, mode="r")  # re-opened every batch, as nanoGPT does
        generator = torch.Generator().manual_seed(data.batch_seed(self.config.seed, "train", self.iter_num, 0))
        ix = torch.randint(len(train) - block_size, (self.config.batch_size,), generator=generator)
        x = torch.stack([torch.from_numpy(train[i : i + block_size].astype(np.int64)) for i in ix])
        y = torch.stack([torch.from_numpy(train[i + 1 : i + 1 + block_size].astype(np.int64)) for i in ix])
        return x, y

    def step(self) -> torch.Tensor:
        cfg = self.config
        lr = get_lr(self.iter_num, cfg.warmup_iters, cfg.lr_decay_iters, cfg.learning_rate, cfg.min_lr)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        x, y = self.get_batch()
        _, loss = self.model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.iter_num += 1
        return loss


def reference_step(trainer: Trainer) -> torch.Tensor:
    """One step of ``Trainer.fit``: ``Trainer.step``, then ``iter_num`` advanced."""
    loss, _ = trainer.step()
    trainer.iter_num += 1
    return loss


def bench(config: RunConfig, steps: int, rounds: int) -> dict:
    if rounds < 2 or steps % rounds:
        raise SystemExit("--rounds must be at least 2 and divide --steps (the first round is not timed)")
    train_config = config.train
    if train_config.grad_accum_steps != 1 or train_config.device != "cpu" or not train_config.decay_lr:
        raise SystemExit("this bench compares CPU runs of one micro-batch per step with a decaying learning rate")
    dataset = data.load_dataset(config.data, config.model.block_size)
    model_config = _model_config_for(config, dataset)
    torch.manual_seed(train_config.seed)
    model = GPT(model_config)
    plain = NanoGPTLoop(copy.deepcopy(model), train_config, dataset.folder / "train.bin",
                        np.dtype(dataset.meta["dtype"]))  # fmt: skip
    step_seconds: dict[str, list[float]] = {"reference": [], "nanogpt": []}
    last_loss: dict[str, torch.Tensor] = {}
    per_round = steps // rounds
    with tempfile.TemporaryDirectory() as out_dir:  # the trainer writes nothing unless it saves
        trainer = Trainer(model, dataclasses.replace(train_config, out_dir=out_dir, progress=False), dataset)
        runners = {"reference": lambda: reference_step(trainer), "nanogpt": plain.step}
        for round_index in range(rounds):
            for name, step in runners.items():
                for i in range(per_round):
                    start = time.perf_counter()
                    loss = step()
                    if (i + 1) % max(train_config.log_interval, 1) == 0:
                        loss.item()  # both read the loss every log_interval steps
                    if round_index > 0:
                        step_seconds[name].append(time.perf_counter() - start)
                last_loss[name] = loss
    tokens = train_config.batch_size * model_config.block_size  # per step
    tokens_per_sec = {name: tokens / statistics.median(s) for name, s in step_seconds.items()}
    tokens_per_sec_all = {name: tokens * len(s) / sum(s) for name, s in step_seconds.items()}
    losses = {name: loss.item() for name, loss in last_loss.items()}
    return {
        "model": dataclasses.asdict(model_config),
        "batch_size": train_config.batch_size,
        "threads": torch.get_num_threads(),
        "compile": trainer.compiled,
        "steps": steps,
        "rounds": rounds,
        "tokens_per_sec": tokens_per_sec,
        "speedup": tokens_per_sec["reference"] / tokens_per_sec["nanogpt"],
        "tokens_per_sec_all_steps": tokens_per_sec_all,
        "speedup_all_steps": tokens_per_sec_all["reference"] / tokens_per_sec_all["nanogpt"],
        "loss": losses,
        "loss_difference": abs(losses["reference"] - losses["nanogpt"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="shakespeare_char_cpu", help="a built-in config name or a .toml path")
    parser.add_argument("--steps", type=int, default=200, help="optimizer steps of each (default 200)")
    parser.add_argument("--rounds", type=int, default=10, help="turns of each, the first one untimed (default 10)")
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args, overrides = parser.parse_known_args()
    try:
        config = load_config(args.config, overrides)
    except (ValueError, FileNotFoundError, KeyError) as e:
        parser.error(str(e))
    result = bench(config, args.steps, args.rounds)
    speed, loss = result["tokens_per_sec"], result["loss"]
    print(f"{result['threads']} threads, batch {result['batch_size']} x {result['model']['block_size']}, "
          f"{args.steps} steps in {args.rounds} rounds each, reference compiled: {result['compile']}")
    print(f"reference (Trainer.step) {speed['reference']:9,.0f} tok/s   loss after {args.steps} steps "
          f"{loss['reference']:.4f}")
    print(f"nanoGPT-style eager loop {speed['nanogpt']:9,.0f} tok/s   loss after {args.steps} steps "
          f"{loss['nanogpt']:.4f}")
    print(f"speed-up {result['speedup']:.2f}x at the median step ({result['speedup_all_steps']:.2f}x over all "
          f"steps), loss difference {result['loss_difference']:.2e}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
