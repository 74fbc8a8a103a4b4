"""A training loop for any model that maps a batch to ``(logits, loss)``: nanoGPT's ``train.py`` as a class.

The trainer knows nothing about GPT (minGPT's rule). It is given

* a model: an ``nn.Module`` whose ``forward(x, y)`` returns ``(logits, loss)`` with ``loss`` a scalar;
* a ``TrainConfig`` (see ``gpt_reference.config``);
* a data object with ``get_batch(split, batch_size, generator, device) -> (x, y)``, which draws its random rows
  with the given CPU ``torch.Generator`` only.

and it provides: AdamW with weight decay on matrices only, linear warmup + cosine learning-rate decay, gradient
accumulation, gradient clipping, mixed precision (bf16, or fp16 with a gradient scaler), ``torch.compile``,
DistributedDataParallel under ``torchrun``, periodic evaluation, atomic checkpoints with exact resume, a progress
bar with tokens/s and MFU, ``metrics.jsonl`` + ``loss.png``, and minGPT-style callbacks.

Vocabulary: an *iteration* (or *step*) is one optimizer update. ``iter_num`` always counts the steps done so far,
so the step being computed is number ``iter_num`` (0-based) and uses ``get_lr(iter_num, ...)``; after it
``iter_num`` is one larger. Evaluations, metrics lines and checkpoints are labelled with ``iter_num`` at that
moment: "iter 250" means "after 250 optimizer steps". A step is made of ``grad_accum_steps`` *micro-batches* of
``batch_size`` rows each, summed over all DDP processes.

Which data a micro-batch sees is a pure function of the run (see ``batch_seed``): micro-batch ``g`` of step ``s``
reads the rows drawn by ``torch.Generator().manual_seed(batch_seed(seed, "train", s, g))``. Under DDP with W
processes, process r computes micro-batches ``r*A .. (r+1)*A - 1`` with ``A = grad_accum_steps // W``. Hence

* resuming needs no data-loader state (the step number is enough), and on the CPU it is bit-identical to a run
  that was never interrupted (the checkpoint also holds every random-number generator's state, for dropout);
* 2 DDP processes see exactly the batches that 1 process sees with the same ``grad_accum_steps``.

Evaluation batch k of a split always comes from ``batch_seed(seed, split, EVAL_STEP, k)``: every evaluation
measures the same batches, so the curves in ``loss.png`` are not noisier than they need to be.

Typical use::

    trainer = Trainer(model, TrainConfig(max_iters=2000), data, flops_per_token=model.flops_per_token())
    trainer.add_callback("on_eval_end", lambda t: print(t.iter_num, t.last_eval))
    summary = trainer.fit()
"""

from __future__ import annotations

import contextlib
import inspect
import json
import math
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn as nn
from tqdm import tqdm

from .config import TrainConfig
from .hardware import auto_device, autocast, peak_flops, resolve_dtype, synchronize

__all__ = [
    "EVENTS",
    "EVAL_STEP",
    "SPLIT_IDS",
    "BatchSource",
    "Trainer",
    "TrainingDiverged",
    "batch_seed",
    "configure_optimizer",
    "get_lr",
    "load_checkpoint",
    "lr_at",
    "save_checkpoint",
    "set_seed",
    "unwrap_model",
]

CHECKPOINT_NAME = "ckpt.pt"
METRICS_NAME = "metrics.jsonl"
PLOT_NAME = "loss.png"
EVENTS = ("on_batch_end", "on_eval_end", "on_train_end")


class BatchSource(Protocol):
    """What the trainer needs from the data: random (x, y) rows drawn with the given generator only."""

    def get_batch(
        self, split: str, batch_size: int, generator: torch.Generator, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor]: ...


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the parameters are left as they were before that step."""


# ---- which rows each micro-batch reads ------------------------------------------------------------------------

SPLIT_IDS = {"train": 0, "val": 1}
EVAL_STEP = -1  # the "step" used for evaluation batches; training steps are >= 0, so the streams never coincide
_SEED_MULTIPLIER = 1_000_003  # a prime larger than any split id, step or micro-batch index we expect


def batch_seed(seed: int, split: str, step: int, micro: int) -> int:
    """The seed of the generator for micro-batch ``micro`` of optimizer step ``step`` on ``split``.

    A polynomial in the four integers, ``(((seed·P + split_id)·P + step)·P + micro) mod 2**63`` with
    ``P = 1_000_003`` and ``split_id`` 0 for train, 1 for val: different (split, step, micro) give different
    seeds, and the same ones give the same seed in every process and every run. (Python's ``hash()`` of a
    string would not: it is randomised per process.)
    """
    value = seed
    for part in (SPLIT_IDS[split], step, micro):
        value = (value * _SEED_MULTIPLIER + part) % 2**63
    return value


def _generator(seed: int, split: str, step: int, micro: int) -> torch.Generator:
    return torch.Generator().manual_seed(batch_seed(seed, split, step, micro))


# ---- optimizer and learning-rate schedule ---------------------------------------------------------------------


def configure_optimizer(
    model: nn.Module,
    weight_decay: float,
    learning_rate: float,
    betas: tuple[float, float],
    device_type: str,
) -> torch.optim.AdamW:
    """AdamW with two parameter groups: weight decay for every parameter with ``dim() >= 2`` (the matrices of
    Linear layers and embeddings), none for the rest (biases, LayerNorm gains and shifts).

    Group 0 is the decayed one, group 1 the other. Only parameters with ``requires_grad`` are optimised; a tied
    weight (one tensor registered under two names) appears once. On CUDA the fused kernel is used when this
    PyTorch has it.
    """
    params = [p for p in model.parameters() if p.requires_grad]  # parameters() yields a shared tensor once
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    extra: dict[str, Any] = {}
    if device_type == "cuda" and "fused" in inspect.signature(torch.optim.AdamW).parameters:
        extra["fused"] = True
    return torch.optim.AdamW(groups, lr=learning_rate, betas=betas, **extra)


def get_lr(it: int, warmup_iters: int, lr_decay_iters: int, learning_rate: float, min_lr: float) -> float:
    """The learning rate for optimizer step ``it`` (0-based: the first update uses ``it = 0``).

    * warmup, ``it < warmup_iters``: linear, ``learning_rate * (it + 1) / (warmup_iters + 1)``, so step 0 already
      moves (nanoGPT's convention) and the last warmup step uses ``learning_rate * warmup_iters / (warmup_iters+1)``;
    * ``warmup_iters <= it < lr_decay_iters``: cosine from ``learning_rate`` (at ``it = warmup_iters``) down to
      ``min_lr``, ``min_lr + (learning_rate - min_lr) * (1 + cos(pi * r)) / 2`` with
      ``r = (it - warmup_iters) / (lr_decay_iters - warmup_iters)``;
    * ``it >= lr_decay_iters``: ``min_lr``.
    """
    if it < warmup_iters:
        return learning_rate * (it + 1) / (warmup_iters + 1)
    if it >= lr_decay_iters:
        return min_lr
    decay_ratio = (it - warmup_iters) / (lr_decay_iters - warmup_iters)
    coeff = 0.5 * (1.0 + math.cos(math.pi * decay_ratio))
    return min_lr + coeff * (learning_rate - min_lr)


def lr_at(it: int, config: TrainConfig) -> float:
    """``get_lr`` with a TrainConfig's numbers, or the constant ``learning_rate`` when ``decay_lr`` is off."""
    if not config.decay_lr:
        return config.learning_rate
    return get_lr(it, config.warmup_iters, config.lr_decay_iters, config.learning_rate, config.min_lr)


# ---- checkpoints ----------------------------------------------------------------------------------------------


def save_checkpoint(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` that never leaves a half-written file at ``path``.

    The object is written to a temporary file in the same folder, flushed and fsync'ed to the disk, and only
    then renamed over ``path`` with ``os.replace`` (atomic on POSIX and Windows). A crash at any moment leaves
    either the old checkpoint or the new one, never a mixture. Temporary files left by earlier crashes are
    removed after a successful save.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    if os.name == "posix":  # make the rename itself durable
        with contextlib.suppress(OSError):
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
    for stale in path.parent.glob(f"{path.name}.tmp*"):
        with contextlib.suppress(OSError):
            stale.unlink()


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu", weights_only: bool = True) -> Any:
    """``torch.load`` of a checkpoint. The trainer's checkpoints hold only tensors and plain Python values, so
    they load with ``weights_only=True``, which cannot run code hidden in a malicious file."""
    return torch.load(path, map_location=map_location, weights_only=weights_only)


def unwrap_model(model: nn.Module) -> nn.Module:
    """The plain module inside DistributedDataParallel (``.module``) and ``torch.compile`` (``._orig_mod``)."""
    while True:
        if isinstance(model, nn.parallel.DistributedDataParallel):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


def _clean_state_dict(state: dict[str, Any]) -> dict[str, Any]:
    """Strip the ``_orig_mod.`` (compile) and ``module.`` (DDP) prefixes some tools leave in parameter names."""
    out = {}
    for key, value in state.items():
        for prefix in ("_orig_mod.", "module."):
            while key.startswith(prefix):
                key = key[len(prefix) :]
        out[key.replace("._orig_mod.", ".")] = value
    return out


def _get_rng_state(device: torch.device) -> dict[str, Any]:
    """Every random-number generator a training step may use, as tensors and plain values only."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": (np_state[0], np_state[1].tolist(), *np_state[2:]),
        "torch": torch.get_rng_state(),
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    elif device.type == "mps" and hasattr(torch, "mps") and hasattr(torch.mps, "get_rng_state"):
        state["mps"] = torch.mps.get_rng_state()
    return state


def _set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), *rest))
    torch.set_rng_state(state["torch"].cpu())
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"].cpu(), device)
    elif device.type == "mps" and "mps" in state:
        torch.mps.set_rng_state(state["mps"].cpu())


def set_seed(seed: int) -> None:
    """Seed Python's, NumPy's and PyTorch's (CPU and every GPU) global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# ---- the trainer ----------------------------------------------------------------------------------------------


class Trainer:
    """Trains ``model`` on ``data`` as ``config`` says. See the module docstring for the conventions.

    Pass the plain model (``config.compile`` compiles it). Attributes callbacks may read: ``model`` (the plain
    module, never the DDP/compiled wrapper), ``config``, ``device``, ``dtype``, ``optimizer``, ``iter_num`` (steps
    done), ``last_loss`` (mean loss of the last step's micro-batches, over all processes), ``last_lr``,
    ``last_eval`` (``{"train": ..., "val": ...}`` of the last evaluation), ``best_val_loss``, ``tokens_per_sec``,
    ``mfu`` (None when unknown), ``rank``, ``world_size``, ``is_master``, ``out_dir``, ``ckpt_path``.

    ``flops_per_token`` (training FLOPs, forward + backward, per token) enables the MFU figure; ``extra_state``
    (e.g. the run's config, so that the model can be rebuilt) is stored in every checkpoint as it is.

    Under ``torchrun`` (the environment has RANK, WORLD_SIZE and LOCAL_RANK) the trainer joins the process group
    (nccl on CUDA, gloo on the CPU), uses GPU ``LOCAL_RANK``, wraps the model in DistributedDataParallel, and only
    rank 0 shows progress, writes metrics and checkpoints. ``fit`` leaves the process group at its end (``close``).
    """

    def __init__(
        self,
        model: nn.Module,
        config: TrainConfig,
        data: BatchSource,
        *,
        flops_per_token: float | None = None,
        extra_state: dict[str, Any] | None = None,
    ) -> None:
        self.config = config
        self.data = data
        self.flops_per_token = flops_per_token
        self.extra_state = extra_state
        self.callbacks: dict[str, list[Callable[[Trainer], None]]] = {event: [] for event in EVENTS}

        # --- processes and device
        self.ddp = int(os.environ.get("RANK", -1)) != -1 and int(os.environ.get("WORLD_SIZE", 1)) > 1
        if self.ddp:
            self.rank = int(os.environ["RANK"])
            self.local_rank = int(os.environ.get("LOCAL_RANK", 0))
            self.world_size = int(os.environ["WORLD_SIZE"])
        else:
            self.rank, self.local_rank, self.world_size = 0, 0, 1
        self.is_master = self.rank == 0
        if config.grad_accum_steps < 1 or config.grad_accum_steps % self.world_size != 0:
            raise ValueError(
                f"grad_accum_steps ({config.grad_accum_steps}) must be a positive multiple of the number of "
                f"processes ({self.world_size}): it counts the micro-batches of all processes together"
            )
        self.device = auto_device(config.device)
        self._owns_process_group = False
        if self.ddp:
            import torch.distributed as dist

            if self.device.type == "cuda":
                self.device = torch.device("cuda", self.local_rank)
                torch.cuda.set_device(self.device)
            if not dist.is_initialized():
                dist.init_process_group(backend="nccl" if self.device.type == "cuda" else "gloo")
                self._owns_process_group = True
        self.local_accum = config.grad_accum_steps // self.world_size
        set_seed(config.seed + self.rank)

        # --- precision
        self.dtype = resolve_dtype(self.device, config.dtype)
        if self.device.type == "cuda":
            torch.set_float32_matmul_precision("high")  # as nanoGPT: fp32 matmuls may use TF32 tensor cores
        self.scaler = torch.amp.GradScaler(
            "cuda", enabled=self.device.type == "cuda" and self.dtype == torch.float16
        )

        # --- model, optimizer
        self.model = unwrap_model(model).to(self.device)
        self.model.train()
        self.optimizer = configure_optimizer(
            self.model, config.weight_decay, config.learning_rate, (config.beta1, config.beta2), self.device.type
        )
        self._eval_model: nn.Module = torch.compile(self.model) if config.compile else self.model
        self._train_model: nn.Module = self._eval_model
        if self.ddp:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.local_rank] if self.device.type == "cuda" else None
            self._train_model = DDP(self._eval_model, device_ids=ids)

        # --- state
        self.out_dir = Path(config.out_dir)
        self.ckpt_path = self.out_dir / CHECKPOINT_NAME
        self.iter_num = 0
        self.best_val_loss = float("inf")
        self.last_loss: float | None = None
        self.last_lr: float = lr_at(0, config)
        self.last_eval: dict[str, float] = {}
        self.tokens_per_sec: float | None = None
        self.mfu: float | None = None
        self._step_tokens_per_sec: float | None = None
        self.peak_flops = peak_flops(self.device)
        self._last_saved_iter: int | None = None
        self._bar: tqdm | None = None
        if config.resume:
            self.load(self.ckpt_path)

    @property
    def is_main_process(self) -> bool:
        """Another name for ``is_master``: rank 0, the process that logs and writes files."""
        return self.is_master

    # ---- callbacks --------------------------------------------------------------------------------------------

    def add_callback(self, event: str, fn: Callable[[Trainer], None]) -> None:
        """Call ``fn(trainer)`` at ``event``: ``on_batch_end`` (after each optimizer step, ``iter_num`` already
        counts it), ``on_eval_end`` (after each evaluation and its checkpoint), ``on_train_end`` (once, at the
        end of ``fit``). Callbacks run in every DDP process; test ``trainer.is_master`` to act once."""
        if event not in self.callbacks:
            raise ValueError(f"unknown event {event!r}; events are {', '.join(EVENTS)}")
        self.callbacks[event].append(fn)

    def set_callback(self, event: str, fn: Callable[[Trainer], None]) -> None:
        """Replace the callbacks of ``event`` with ``fn`` (minGPT's name)."""
        self.callbacks[event] = []
        self.add_callback(event, fn)

    def trigger_callbacks(self, event: str) -> None:
        for fn in self.callbacks[event]:
            fn(self)
        if self.callbacks[event]:
            self.model.train()  # a callback that sampled from the model may have left it in eval mode

    # ---- evaluation -------------------------------------------------------------------------------------------

    @torch.no_grad()
    def estimate_loss(self) -> dict[str, float]:
        """Mean loss over ``eval_iters`` fixed batches of each split, in eval mode (no dropout).

        Batch k of a split is always the same rows, so evaluations are comparable. Under DDP the batches are
        shared out among the processes and the sums are all-reduced, so every process gets the same numbers:
        call it in every process.
        """
        n = self.config.eval_iters
        was_training = self.model.training
        self.model.eval()
        try:
            sums = torch.zeros(len(SPLIT_IDS), device=self.device)  # float32: MPS has no float64
            for i, split in enumerate(SPLIT_IDS):
                for k in range(self.rank, n, self.world_size):
                    gen = _generator(self.config.seed, split, EVAL_STEP, k)
                    x, y = self.data.get_batch(split, self.config.batch_size, gen, self.device)
                    with autocast(self.device, self.dtype):
                        _, loss = self._eval_model(x, y)
                    sums[i] += loss.detach().float()
            if self.ddp:
                import torch.distributed as dist

                dist.all_reduce(sums)
            means = (sums / max(n, 1)).tolist()
        finally:
            self.model.train(was_training)
        return dict(zip(SPLIT_IDS, means))

    # ---- checkpoints ------------------------------------------------------------------------------------------

    def state_dict(self, all_ranks: bool = True) -> dict[str, Any]:
        """Everything a resumed run needs. With ``all_ranks`` (a collective: every process must call it) the
        RNG states of all DDP processes are gathered; otherwise only this process's is stored."""
        rng = [_get_rng_state(self.device)]
        if self.ddp and all_ranks:
            import torch.distributed as dist

            gathered: list[Any] = [None] * self.world_size
            dist.all_gather_object(gathered, rng[0])
            rng = gathered
        return {
            "model": _clean_state_dict(self.model.state_dict()),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "iter_num": self.iter_num,
            "best_val_loss": self.best_val_loss,
            "config": asdict(self.config),
            "extra_state": self.extra_state,
            "rng": rng,
            "world_size": self.world_size if all_ranks else 1,
        }

    def save(self, path: str | os.PathLike | None = None, all_ranks: bool = True) -> Path:
        """Write a checkpoint (rank 0 writes; with ``all_ranks`` every process must call this)."""
        path = Path(path) if path is not None else self.ckpt_path
        state = self.state_dict(all_ranks=all_ranks)
        if self.is_master:
            save_checkpoint(state, path)
        self._last_saved_iter = self.iter_num
        return path

    def load(self, path: str | os.PathLike | None = None) -> None:
        """Restore model, optimizer, scaler, counters and RNG states from a checkpoint (``config.resume`` does
        this at construction). The current TrainConfig is kept: you may, say, raise ``max_iters``."""
        path = Path(path) if path is not None else self.ckpt_path
        if not path.exists():
            raise FileNotFoundError(f"cannot resume: no checkpoint at {path} (train without --resume first)")
        ckpt = load_checkpoint(path, map_location=self.device)
        self.model.load_state_dict(_clean_state_dict(ckpt["model"]))
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        self.iter_num = int(ckpt["iter_num"])
        self.best_val_loss = float(ckpt["best_val_loss"])
        self._last_saved_iter = self.iter_num
        rng = ckpt.get("rng") or []
        if self.rank < len(rng) and (len(rng) == self.world_size or self.rank == 0):
            _set_rng_state(rng[self.rank], self.device)
        else:  # saved by a different number of processes: fresh but distinct streams
            set_seed(self.config.seed + self.rank + self.iter_num)
        self.last_lr = lr_at(self.iter_num, self.config)

    # ---- training ---------------------------------------------------------------------------------------------

    def train_step(self) -> tuple[float, int]:
        """One optimizer step over this process's micro-batches, at the learning rate of step ``iter_num`` (which
        ``fit`` then advances). Returns (mean loss, tokens in all processes). ``bench`` times exactly this."""
        cfg = self.config
        lr = lr_at(self.iter_num, cfg)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.last_lr = lr

        def batch(micro: int) -> tuple[torch.Tensor, torch.Tensor]:
            g = self.rank * self.local_accum + micro  # global micro-batch index, over all processes
            gen = _generator(cfg.seed, "train", self.iter_num, g)
            return self.data.get_batch("train", cfg.batch_size, gen, self.device)

        loss_sum = torch.zeros((), device=self.device)
        tokens = 0
        x, y = batch(0)
        for micro in range(self.local_accum):
            last = micro == self.local_accum - 1
            # DDP all-reduces gradients only on the last micro-batch; the others just accumulate locally
            sync = self._train_model.no_sync() if self.ddp and not last else contextlib.nullcontext()
            with sync:
                with autocast(self.device, self.dtype):
                    _, loss = self._train_model(x, y)
                    loss = loss / self.local_accum  # the gradients add up to those of the mean loss
                tokens += x.numel()
                if not last:
                    x, y = batch(micro + 1)  # fetch the next batch while the device works on this one
                self.scaler.scale(loss).backward()
            loss_sum += loss.detach().float()

        if self.ddp:  # the mean over all processes: every process logs, and detects divergence, alike
            import torch.distributed as dist

            dist.all_reduce(loss_sum)
            loss_sum /= self.world_size
        loss_value = loss_sum.item()  # waits for the device
        if not math.isfinite(loss_value):
            raise TrainingDiverged(
                f"the loss became {loss_value} at iteration {self.iter_num} (learning rate {lr:.3g}); the "
                f"parameters are those before that step and {self.ckpt_path} was not overwritten. Try a lower "
                "learning_rate (or a longer warmup_iters), check that the data and targets are valid (token ids "
                "below the vocabulary size), and keep grad_clip > 0"
            )
        if cfg.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)  # clip the true gradients, not the scaled ones
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        return loss_value, tokens * self.world_size

    def fit(self) -> dict[str, Any]:
        """Train from ``iter_num`` to ``config.max_iters``.

        Evaluates at iteration 0 of a fresh run, every ``eval_interval`` steps (0: only at the end) and at the
        end (``eval_iters = 0`` turns evaluation off); after an evaluation saves a checkpoint when the val loss
        improved (or always, with ``always_save_checkpoint``); saves a final checkpoint at the end, so that
        ``out_dir/ckpt.pt`` then holds the last model. Under DDP call it in every process.

        On NaN/inf loss raises ``TrainingDiverged`` without saving. On Ctrl-C (KeyboardInterrupt) saves a
        checkpoint of the last completed step, prints how to resume, and re-raises the KeyboardInterrupt.
        Returns a summary: iterations, best/last losses, wall time, tokens/s, MFU and the checkpoint's path.
        """
        cfg = self.config
        start = time.perf_counter()
        train_time = 0.0  # seconds spent in training steps (without evaluations and the first step)
        train_tokens = 0
        fit_steps = 0
        if self.is_master:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            self._prepare_metrics()
            self._bar = tqdm(
                total=cfg.max_iters,
                initial=min(self.iter_num, cfg.max_iters),
                disable=not cfg.progress,
                desc="train",
                dynamic_ncols=True,
                file=sys.stderr,
            )
        try:
            if self.iter_num == 0 and cfg.max_iters > 0 and not cfg.resume:
                self._evaluate(start)  # the loss before training (about ln(vocab_size) for a new model)
            t_last = time.perf_counter()
            while self.iter_num < cfg.max_iters:
                loss, tokens = self.train_step()
                self.iter_num += 1
                self.last_loss = loss
                now = time.perf_counter()
                dt, t_last = now - t_last, now
                fit_steps += 1
                if fit_steps > 1:  # the first step includes start-up (and compilation): leave it out
                    train_time += dt
                    train_tokens += tokens
                self._update_speed(tokens, dt, first=fit_steps == 1)
                self._after_step(start)
                self.trigger_callbacks("on_batch_end")
                done = self.iter_num == cfg.max_iters
                if (cfg.eval_interval > 0 and self.iter_num % cfg.eval_interval == 0) or done:
                    self._evaluate(start)
                    t_last = time.perf_counter()
            if self.iter_num > 0 and self._last_saved_iter != self.iter_num:
                self.save()
            self.trigger_callbacks("on_train_end")
        except KeyboardInterrupt:
            if self._bar is not None:
                self._bar.close()
            if self.is_master:
                if self.iter_num > 0:
                    path = self.save(all_ranks=False)
                    print(
                        f"\ninterrupted: saved a checkpoint of iteration {self.iter_num} to {path}; continue "
                        "the run with the same command and --resume=true",
                        file=sys.stderr,
                    )
                else:
                    print("\ninterrupted before the first step: nothing to save", file=sys.stderr)
            raise
        finally:
            # an interrupted or diverged step leaves partial (or NaN) gradients: never carry them into a later fit
            self.optimizer.zero_grad(set_to_none=True)
            if self._bar is not None:
                self._bar.close()
                self._bar = None
            self.close()
        synchronize(self.device)
        wall = time.perf_counter() - start
        if fit_steps == 1:
            train_time, train_tokens = dt, tokens
        tok_s = train_tokens / train_time if train_time > 0 else None
        return {
            "iterations": self.iter_num,
            "steps_this_fit": fit_steps,
            "best_val_loss": self.best_val_loss,
            "train_loss": self.last_eval.get("train"),
            "val_loss": self.last_eval.get("val"),
            "last_loss": self.last_loss,
            "wall_time": wall,
            "tokens_per_sec": tok_s,
            "mfu": self._mfu(tok_s),
            "checkpoint": str(self.ckpt_path) if self.ckpt_path.exists() else None,
        }

    def close(self) -> None:
        """Leave the process group this trainer joined (fit does this at its end). Safe to call twice."""
        if self._owns_process_group:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()
            self._owns_process_group = False

    # ---- speed, logging, plots --------------------------------------------------------------------------------

    def _mfu(self, tokens_per_sec: float | None) -> float | None:
        """Model FLOPs utilisation of one device: achieved FLOP/s per process over the device's peak."""
        if self.flops_per_token is None or self.peak_flops is None or not tokens_per_sec:
            return None
        return self.flops_per_token * tokens_per_sec / self.world_size / self.peak_flops

    def _update_speed(self, tokens: int, dt: float, first: bool) -> None:
        tps = tokens / dt if dt > 0 else None
        if tps is None:
            return
        if self.tokens_per_sec is None or first:
            self.tokens_per_sec = tps
        else:  # a moving average: one slow step (a checkpoint, the OS) does not jolt the numbers
            self.tokens_per_sec = 0.9 * self.tokens_per_sec + 0.1 * tps
        self._step_tokens_per_sec = tps
        self.mfu = self._mfu(self.tokens_per_sec)

    def _after_step(self, start: float) -> None:
        if not self.is_master:
            return
        cfg = self.config
        mfu = "n/a" if self.mfu is None else f"{self.mfu * 100:.1f}%"
        if self._bar is not None and not self._bar.disable:
            self._bar.update(1)
            postfix = {
                "loss": f"{self.last_loss:.4f}",
                "lr": f"{self.last_lr:.2e}",
                "tok/s": f"{self.tokens_per_sec or 0:,.0f}",
                "mfu": mfu,
            }
            self._bar.set_postfix(postfix, refresh=False)  # a dict keeps this order (keywords get sorted)
        if cfg.log_interval > 0 and self.iter_num % cfg.log_interval == 0:
            self._write_metrics(
                {
                    "type": "train",
                    "iter": self.iter_num,
                    "loss": self.last_loss,
                    "lr": self.last_lr,
                    "tokens_per_sec": self._step_tokens_per_sec,
                    "mfu": self._mfu(self._step_tokens_per_sec),
                    "time": time.perf_counter() - start,
                }
            )
            if not cfg.progress:
                print(
                    f"iter {self.iter_num}: loss {self.last_loss:.4f}, lr {self.last_lr:.2e}, "
                    f"{self.tokens_per_sec or 0:,.0f} tok/s, mfu {mfu}"
                )

    def _evaluate(self, start: float) -> None:
        """Evaluate, log, plot, checkpoint if the val loss improved, then run the on_eval_end callbacks."""
        cfg = self.config
        if cfg.eval_iters > 0:
            self.last_eval = self.estimate_loss()
            if self.is_master:
                self._write_metrics(
                    {
                        "type": "eval",
                        "iter": self.iter_num,
                        "train_loss": self.last_eval["train"],
                        "val_loss": self.last_eval["val"],
                        "time": time.perf_counter() - start,
                    }
                )
                self._print(
                    f"iter {self.iter_num}: train loss {self.last_eval['train']:.4f}, "
                    f"val loss {self.last_eval['val']:.4f}"
                )
                self._plot()
            improved = self.last_eval["val"] < self.best_val_loss
            if improved:
                self.best_val_loss = self.last_eval["val"]
            if self.iter_num > 0 and (improved or cfg.always_save_checkpoint):
                self.save()
        self.trigger_callbacks("on_eval_end")

    def _print(self, message: str) -> None:
        if self._bar is not None and not self._bar.disable:
            self._bar.write(message)
        else:
            print(message)

    @property
    def metrics_path(self) -> Path:
        return self.out_dir / METRICS_NAME

    def _prepare_metrics(self) -> None:
        """A fresh run starts a new metrics file; a resumed one drops lines written after its checkpoint."""
        path = self.metrics_path
        if not path.exists():
            return
        if self.iter_num == 0:
            path.unlink()
            return
        kept = []
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a crash
            if record.get("iter", 0) <= self.iter_num:
                kept.append(line)
        path.write_text("".join(line + "\n" for line in kept))

    def _write_metrics(self, record: dict[str, Any]) -> None:
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps(record) + "\n")

    def _plot(self) -> None:
        """Redraw out_dir/loss.png from metrics.jsonl: the logged training losses and the evaluations."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # no pyplot: leaves the user's backend alone
        from matplotlib.figure import Figure

        train_it, train_loss, eval_it, eval_train, eval_val = [], [], [], [], []
        for line in self.metrics_path.read_text().splitlines():
            record = json.loads(line)
            if record["type"] == "train":
                train_it.append(record["iter"])
                train_loss.append(record["loss"])
            elif record["type"] == "eval":
                eval_it.append(record["iter"])
                eval_train.append(record["train_loss"])
                eval_val.append(record["val_loss"])
        fig = Figure(figsize=(7, 4.5), dpi=100)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        if train_it:
            ax.plot(train_it, train_loss, color="tab:blue", alpha=0.35, linewidth=1, label="train (batch)")
        ax.plot(eval_it, eval_train, "o-", color="tab:blue", markersize=3, label="train (eval)")
        ax.plot(eval_it, eval_val, "o-", color="tab:orange", markersize=3, label="val (eval)")
        ax.set_xlabel("iteration")
        ax.set_ylabel("loss")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        tmp = self.out_dir / f".{PLOT_NAME}.tmp"
        fig.savefig(tmp, format="png")
        os.replace(tmp, self.out_dir / PLOT_NAME)



# ---- the loop as free functions ---------------------------------------------------------------------------------


def train_step(
    model: nn.Module, optimizer: torch.optim.Optimizer, batches: list[tuple[torch.Tensor, torch.Tensor]],
    grad_clip: float = 1.0,
) -> float:
    """One optimizer step over the micro-batches ``batches`` (gradient accumulation); returns their mean loss."""
    total = 0.0
    for x, y in batches:
        _, loss = model(x, y)
        (loss / len(batches)).backward()  # the gradients add up to those of the mean loss
        total += loss.item() / len(batches)
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return total


def train(
    model: nn.Module, optimizer: torch.optim.Optimizer, train_data: torch.Tensor, config: TrainConfig,
    start: int = 0, stop: int | None = None,
) -> list[float]:
    """Optimizer steps ``start .. stop - 1`` (``stop``: ``config.max_iters``) of a run on the 1-D token tensor
    ``train_data``, exactly as ``Trainer`` takes them in one process: step ``s`` sets every group's learning rate to
    ``lr_at(s, config)``, draws micro-batch ``g`` with ``torch.Generator().manual_seed(batch_seed(config.seed,
    "train", s, g))`` and ``get_batch``, and calls ``train_step`` on the ``config.grad_accum_steps`` micro-batches.
    Returns each step's mean loss (lesson 06: your parts, the Trainer's trajectory)."""
    from .data import get_batch  # here: data imports the tokenizers, which a trainer does not otherwise need

    device = next(model.parameters()).device
    block_size = unwrap_model(model).config.block_size
    losses = []
    for step in range(start, config.max_iters if stop is None else stop):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, config)
        batches = [
            get_batch(train_data, block_size, config.batch_size, _generator(config.seed, "train", step, micro), device)
            for micro in range(config.grad_accum_steps)
        ]
        losses.append(train_step(model, optimizer, batches, config.grad_clip))
    return losses
