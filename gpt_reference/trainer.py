"""Training: lesson 04's ``train_step``, ``estimate_loss`` and ``fit``, and ``Trainer``, nanoGPT's ``train.py`` as a
class built from them and from ``data.get_batch``, ``optim.configure_optimizer``/``get_lr`` and ``checkpoint``.

The trainer knows nothing about GPT (minGPT's rule). It is given a model (an ``nn.Module`` whose ``forward(x, y)``
returns ``(logits, loss)``), a ``TrainConfig`` (``gpt_reference.config``) and a data object with ``get_batch(split,
batch_size, generator, device) -> (x, y)`` that draws its rows with the given CPU ``torch.Generator`` only. It adds
gradient accumulation and clipping, mixed precision (bf16, or fp16 with a gradient scaler), ``torch.compile``,
DistributedDataParallel under ``torchrun``, periodic evaluation, atomic checkpoints with exact resume, a progress bar
with tokens/s and MFU, ``metrics.jsonl`` + ``loss.png`` (``gpt_reference.metrics``) and minGPT-style callbacks.

An *iteration* (or *step*) is one optimizer update. ``iter_num`` counts the steps done, so the step being computed
is number ``iter_num`` (0-based) and uses ``get_lr(iter_num, ...)``; evaluations, metrics lines and checkpoints
carry ``iter_num`` at that moment ("iter 250": after 250 steps). A step is ``grad_accum_steps`` *micro-batches* of
``batch_size`` rows, counted over all DDP processes: with W processes, process r computes micro-batches
``r*A .. (r+1)*A - 1``, ``A = grad_accum_steps // W``.

The rows a micro-batch reads are a pure function of the run: micro-batch ``g`` of step ``s`` is drawn by
``torch.Generator().manual_seed(batch_seed(seed, "train", s, g))`` (``data.batch_seed``), evaluation batch ``k`` of a
split by ``batch_seed(seed, split, EVAL_STEP, k)``. So a resume needs no data-loader state and on the CPU continues
bit-identically (the checkpoint holds every generator's state, for dropout); 2 DDP processes take the steps of 1
process with the same ``grad_accum_steps``; every evaluation measures the same batches; and a plain loop of
``get_batch``, ``get_lr`` and ``train_step`` over these seeds takes the trainer's steps (``gpt_reference.loop``).

    trainer = Trainer(model, TrainConfig(max_iters=2000), data, flops_per_token=model.flops_per_token())
    trainer.add_callback("on_eval_end", lambda t: print(t.iter_num, t.last_eval))
    summary = trainer.fit()
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel as DDP
from tqdm import tqdm

from .checkpoint import (get_rng_states, load_checkpoint, read_checkpoint, save_checkpoint, set_rng_states, set_seed,
                         unwrap_model)
from .config import TrainConfig
from .data import EVAL_STEP, SPLIT_IDS, batch_seed
from .hardware import (auto_device, autocast, compile_options, compile_unavailable_reason, peak_flops, resolve_dtype,
                       synchronize)
from .metrics import RunMetrics
from .optim import configure_optimizer, get_lr

CHECKPOINT_NAME = "ckpt.pt"
EVENTS = ("on_batch_end", "on_eval_end", "on_train_end")
Batch = tuple[torch.Tensor, torch.Tensor]


class BatchSource(Protocol):
    """What the trainer needs from the data: random (x, y) rows drawn with the given generator only."""

    def get_batch(self, split: str, batch_size: int, generator: torch.Generator, device: torch.device) -> Batch: ...


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite. ``train_step`` raises it before that step, so the parameters are left as
    they were; ``Trainer`` finds it when it next reads the losses, when no checkpoint has been written since."""


# ---- lesson 04: one step, an honest loss, the loop ----------------------------------------------------------------


def accumulate_gradients(model: nn.Module, batches: Sequence[Batch], *, dtype: torch.dtype = torch.bfloat16,
                         scaler: torch.amp.GradScaler | None = None) -> torch.Tensor:
    """Forward and backward over the micro-batches ``batches`` (gradient accumulation, lesson 07): afterwards the
    parameters' ``.grad`` hold the gradients of the mean loss over all their rows. Returns that mean loss, a 0-d
    float32 tensor on the model's device, without waiting for it (no host sync).

    Each micro-batch's loss ``model(x, y)[1]`` is divided by their number before ``backward()``, so the summed
    gradients are those of the mean loss, as if the rows were one big batch. On CUDA the forward pass runs under
    autocast in ``dtype`` (float32: none); fp16 needs a ``GradScaler`` (``scaler``), which scales the loss before
    ``backward``. For a DistributedDataParallel model, gradients are all-reduced once, after the last micro-batch,
    and the mean loss is that of all processes.
    """
    device = next(model.parameters()).device
    loss_sum = torch.zeros((), device=device)  # summed on the device: no waiting for it after each micro-batch
    for i, (x, y) in enumerate(batches):
        last = i == len(batches) - 1
        # DDP all-reduces gradients only on the last micro-batch; the others just accumulate locally
        with model.no_sync() if isinstance(model, DDP) and not last else contextlib.nullcontext():
            with autocast(device, dtype):
                _, loss = model(x, y)
            loss = loss / len(batches)
            loss_sum += loss.detach().float()
            (scaler.scale(loss) if scaler is not None else loss).backward()
    if isinstance(model, DDP):  # every process logs, and detects divergence, alike
        dist.all_reduce(loss_sum)
        loss_sum /= dist.get_world_size()
    return loss_sum


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, batches: Sequence[Batch], grad_clip: float = 1.0,
               *, dtype: torch.dtype = torch.bfloat16, scaler: torch.amp.GradScaler | None = None) -> float:
    """One optimizer step over the micro-batches ``batches``; returns their mean loss.

    ``accumulate_gradients`` computes the gradients of the mean loss over all the rows (with autocast in ``dtype``
    and the fp16 ``scaler`` on CUDA, and DDP's all-reduce). Then the global gradient norm is clipped to
    ``grad_clip`` (when > 0; the scaler first unscales the gradients, so that the true ones are clipped), the
    optimizer steps and the gradients are cleared. A NaN or infinite loss raises ``TrainingDiverged`` before the
    step: the parameters stay as they were.
    """
    mean_loss = accumulate_gradients(model, batches, dtype=dtype, scaler=scaler).item()
    if not math.isfinite(mean_loss):
        optimizer.zero_grad(set_to_none=True)
        raise TrainingDiverged(f"the loss became {mean_loss}")
    apply_gradients(model, optimizer, grad_clip, scaler=scaler)
    return mean_loss


def apply_gradients(model: nn.Module, optimizer: torch.optim.Optimizer, grad_clip: float = 1.0, *,
                    scaler: torch.amp.GradScaler | None = None) -> None:
    """``train_step``'s second half: clip the global gradient norm to ``grad_clip`` (when > 0; the fp16 ``scaler``
    first unscales the gradients, so that the true ones are clipped), step the optimizer, clear the gradients. It
    reads nothing back from the device: ``Trainer`` calls it without waiting for the loss."""
    if grad_clip > 0:
        if scaler is not None:
            scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)


@torch.no_grad()
def estimate_loss(model: nn.Module, get_batch_fn: Callable[[], Batch], eval_iters: int, *,
                  dtype: torch.dtype = torch.bfloat16) -> float:
    """The mean loss over ``eval_iters`` batches from ``get_batch_fn()``, in eval mode (no dropout) and without
    gradients (no graph to keep); the model ends in train mode. On CUDA under autocast in ``dtype``."""
    model.eval()
    device = next(model.parameters()).device
    total = torch.zeros((), device=device)  # float32: MPS has no float64
    for _ in range(eval_iters):
        x, y = get_batch_fn()
        with autocast(device, dtype):
            total += model(x, y)[1].float()
    model.train()
    return (total / eval_iters).item()


def fit(model: nn.Module, optimizer: torch.optim.Optimizer, get_batch_fn: Callable[[], Batch], max_iters: int,
        lr_at: Callable[[int], float], grad_accum_steps: int = 1, grad_clip: float = 1.0,
        progress: bool = False) -> list[float]:
    """``max_iters`` training steps; step ``it`` (from 0) sets every parameter group's learning rate to
    ``lr_at(it)``, draws ``grad_accum_steps`` micro-batches from ``get_batch_fn()`` and calls ``train_step``.
    Returns the loss of every step (lesson 04's loop; evaluation and checkpoints are the caller's)."""
    losses = []
    for it in tqdm(range(max_iters), disable=not progress, leave=False):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(it)
        batches = [get_batch_fn() for _ in range(grad_accum_steps)]
        losses.append(train_step(model, optimizer, batches, grad_clip))
    return losses


# ---- the trainer ----------------------------------------------------------------------------------------------


class Trainer:
    """Trains ``model`` on ``data`` as ``config`` says. See the module docstring for the conventions.

    Pass the plain model (``config.compile`` compiles it, where this machine can: see ``compile_unavailable_reason``;
    otherwise the trainer says why in one line and runs it eagerly). Attributes callbacks may read: ``model`` (the
    plain module, never the DDP/compiled wrapper), ``config``, ``device``, ``dtype``, ``optimizer``, ``iter_num``
    (steps done), ``last_loss`` (mean loss of the last step, over all processes; reading it waits for the device),
    ``last_lr``, ``last_eval`` (``{"train": ..., "val": ...}``), ``best_val_loss``, ``metrics`` (``tokens_per_sec``,
    ``mfu``), ``rank``, ``world_size``, ``is_master``, ``out_dir``, ``ckpt_path``. ``flops_per_token`` (training
    FLOPs per token) enables the MFU figure; ``extra_state`` (e.g. the run's config, to rebuild the model) is stored
    in every checkpoint as it is.

    Under ``torchrun`` (the environment has RANK, WORLD_SIZE and LOCAL_RANK) the trainer joins the process group
    (nccl on CUDA, gloo on the CPU), uses GPU ``LOCAL_RANK``, wraps the model in DistributedDataParallel, and only
    rank 0 (``is_master``) shows progress, writes metrics and checkpoints. ``fit`` leaves the group at its end.

    The host waits for the device only when it must (nanoGPT's rule): the losses stay on the device and are read
    every ``log_interval`` steps (every step when it is 0), when a NaN or infinite one stops the run with
    ``TrainingDiverged``, and before every evaluation and checkpoint, so that diverged weights are never saved.
    """

    def __init__(self, model: nn.Module, config: TrainConfig, data: BatchSource, *,
                 flops_per_token: float | None = None, extra_state: dict[str, Any] | None = None) -> None:
        self.config, self.data, self.extra_state = config, data, extra_state
        self.callbacks: dict[str, list[Callable[[Trainer], None]]] = {event: [] for event in EVENTS}

        # --- processes and device
        self.ddp = int(os.environ.get("RANK", -1)) != -1  # under torchrun, even with 1 process (as nanoGPT)
        self.rank = int(os.environ["RANK"]) if self.ddp else 0
        self.local_rank = int(os.environ.get("LOCAL_RANK", 0)) if self.ddp else 0
        self.world_size = int(os.environ["WORLD_SIZE"]) if self.ddp else 1
        self.is_master = self.rank == 0  # the process that logs and writes files
        if config.grad_accum_steps < 1 or config.grad_accum_steps % self.world_size != 0:
            raise ValueError(
                f"grad_accum_steps ({config.grad_accum_steps}) must be a positive multiple of the number of "
                f"processes ({self.world_size}): it counts the micro-batches of all processes together"
            )
        self.local_accum = config.grad_accum_steps // self.world_size
        self.device = auto_device(config.device)
        self._owns_process_group = False
        if self.ddp:
            if self.device.type == "cuda":
                self.device = torch.device("cuda", self.local_rank)
                torch.cuda.set_device(self.device)
            if not dist.is_initialized():
                dist.init_process_group(backend="nccl" if self.device.type == "cuda" else "gloo")
                self._owns_process_group = True
        set_seed(config.seed + self.rank)

        # --- precision
        self.dtype = resolve_dtype(self.device, config.dtype)
        if self.device.type == "cuda":
            torch.set_float32_matmul_precision("high")  # as nanoGPT: fp32 matmuls may use TF32 tensor cores
        fp16 = self.device.type == "cuda" and self.dtype == torch.float16
        self.scaler = torch.amp.GradScaler("cuda", enabled=fp16)  # a no-op unless fp16

        # --- model and optimizer
        self.model = unwrap_model(model).to(self.device)
        self.model.train()
        betas = (config.beta1, config.beta2)
        self.optimizer = configure_optimizer(self.model, config.weight_decay, config.learning_rate, betas,
                                             device_type=self.device.type)  # fmt: skip
        self._eval_model: nn.Module = self.model
        reason = compile_unavailable_reason(self.device) if config.compile else None
        self.compiled = config.compile and reason is None  # what runs, which config.compile only asks for
        if self.compiled:
            self._eval_model = torch.compile(self.model, options=compile_options(self.device))
        elif config.compile and self.is_master:
            print(f"compile: off, {reason}; the model runs eagerly", file=sys.stderr)
        self._train_model: nn.Module = self._eval_model
        if self.ddp:
            ids = [self.local_rank] if self.device.type == "cuda" else None
            self._train_model = DDP(self._eval_model, device_ids=ids)

        # --- state
        self.out_dir = Path(config.out_dir)
        self.ckpt_path = self.out_dir / CHECKPOINT_NAME
        self.iter_num = 0
        self.best_val_loss = float("inf")
        self._last_loss: torch.Tensor | None = None  # on the device: read when asked
        self._unchecked: list[tuple[int, float, torch.Tensor]] = []  # (step, lr, loss) not yet read from the device
        self.last_lr: float | None = None
        self.last_eval: dict[str, float] = {}
        self.metrics = RunMetrics(self.out_dir, writes=self.is_master, progress=config.progress,
                                  log_interval=config.log_interval, flops_per_token=flops_per_token,
                                  peak_flops=peak_flops(self.device), world_size=self.world_size)  # fmt: skip
        self._last_saved_iter: int | None = None
        if config.resume:
            self.load()

    # ---- callbacks --------------------------------------------------------------------------------------------

    def add_callback(self, event: str, fn: Callable[[Trainer], None]) -> None:
        """Call ``fn(trainer)`` at ``event``: ``on_batch_end`` (after each optimizer step, ``iter_num`` already
        counts it), ``on_eval_end`` (after each evaluation and its checkpoint), ``on_train_end`` (once, at the
        end of ``fit``). Callbacks run in every DDP process; test ``trainer.is_master`` to act once."""
        if event not in self.callbacks:
            raise ValueError(f"unknown event {event!r}; events are {', '.join(EVENTS)}")
        self.callbacks[event].append(fn)

    def trigger_callbacks(self, event: str) -> None:
        for fn in self.callbacks[event]:
            fn(self)
        if self.callbacks[event]:
            self.model.train()  # a callback that sampled from the model may have left it in eval mode

    # ---- one step, the evaluation -----------------------------------------------------------------------------

    def _batch(self, split: str, step: int, micro: int) -> Batch:
        generator = torch.Generator().manual_seed(batch_seed(self.config.seed, split, step, micro))
        return self.data.get_batch(split, self.config.batch_size, generator, self.device)

    @property
    def last_loss(self) -> float | None:
        """The mean loss of the last step, over all processes (None before the first): it waits for the device."""
        return None if self._last_loss is None else self._last_loss.item()

    def step(self) -> tuple[torch.Tensor, int]:
        """Optimizer step number ``iter_num`` (``fit`` then advances ``iter_num``): its learning rate, this
        process's micro-batches, then ``train_step``'s work, ``accumulate_gradients`` and ``apply_gradients``,
        without reading the loss. Returns (mean loss, a 0-d tensor on the device that may not be computed yet;
        tokens in all processes). ``bench`` times it. ``fit`` checks the losses for NaN (``check_losses``)."""
        cfg, it = self.config, self.iter_num
        lr = get_lr(it, cfg.warmup_iters, cfg.lr_decay_iters, cfg.learning_rate, cfg.min_lr) if cfg.decay_lr else \
            cfg.learning_rate  # fmt: skip
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.last_lr = lr
        first = self.rank * self.local_accum  # micro-batches are numbered over all processes
        batches = [self._batch("train", it, g) for g in range(first, first + self.local_accum)]
        loss = accumulate_gradients(self._train_model, batches, dtype=self.dtype, scaler=self.scaler)
        apply_gradients(self._train_model, self.optimizer, cfg.grad_clip, scaler=self.scaler)
        return loss, sum(x.numel() for x, _ in batches) * self.world_size

    def check_losses(self) -> None:
        """Read the losses of the steps taken since the last check from the device (one wait) and raise
        ``TrainingDiverged`` at the first NaN or infinite one. Every process holds the same (all-reduced) losses,
        so under DDP all of them stop together."""
        if not self._unchecked:
            return
        steps, self._unchecked = self._unchecked, []
        values = torch.stack([loss for _, _, loss in steps]).tolist()
        for (it, lr, _), value in zip(steps, values):
            if not math.isfinite(value):
                raise TrainingDiverged(
                    f"the loss became {value} at iteration {it} (learning rate {lr:.3g}), seen after iteration "
                    f"{self.iter_num}; the parameters have diverged, and {self.ckpt_path} was not overwritten since. "
                    "Try a lower learning_rate (or a longer warmup_iters), check that the data and targets are "
                    "valid (token ids below the vocabulary size), and keep grad_clip > 0"
                )

    def estimate_loss(self) -> dict[str, float]:
        """``estimate_loss`` over ``eval_iters`` fixed batches of each split: batch k of a split is always the same
        rows, so evaluations are comparable. Under DDP the batches are shared out among the processes and the
        sums all-reduced, so every process gets the same numbers: call it in every process."""
        n = self.config.eval_iters
        mine = range(self.rank, n, self.world_size)
        sums = torch.zeros(len(SPLIT_IDS), device=self.device)
        for i, split in enumerate(SPLIT_IDS):
            batches = (self._batch(split, EVAL_STEP, k) for k in mine)
            if mine:
                mean = estimate_loss(self._eval_model, lambda: next(batches), len(mine), dtype=self.dtype)
                sums[i] = mean * len(mine)
        if self.ddp:
            dist.all_reduce(sums)
        return dict(zip(SPLIT_IDS, (sums / max(n, 1)).tolist()))

    # ---- checkpoints ------------------------------------------------------------------------------------------

    def save(self, all_ranks: bool = True) -> Path:
        """Write ``ckpt_path`` (rank 0 writes). With ``all_ranks`` (a collective: every process must call it) the
        RNG states of all DDP processes are gathered into it; otherwise only this process's. Raises
        ``TrainingDiverged`` instead when a loss since the last check was NaN or infinite."""
        self.check_losses()
        rng_states = [get_rng_states(self.device)]
        if self.ddp and all_ranks:
            gathered: list[Any] = [None] * self.world_size
            dist.all_gather_object(gathered, rng_states[0])
            rng_states = gathered
        if self.is_master:
            extra = {
                "scaler": self.scaler.state_dict(),
                "best_val_loss": self.best_val_loss,
                "config": asdict(self.config),
                "extra_state": self.extra_state,
                "rng_states": rng_states,
            }
            save_checkpoint(self.ckpt_path, self.model, self.optimizer, self.iter_num, extra=extra)
        self._last_saved_iter = self.iter_num
        return self.ckpt_path

    def load(self) -> None:
        """Restore model, optimizer, scaler, counters and RNG states from ``ckpt_path`` (``config.resume`` does
        this at construction). The current TrainConfig is kept: you may, say, raise ``max_iters``."""
        if not self.ckpt_path.exists():
            raise FileNotFoundError(f"cannot resume: no checkpoint at {self.ckpt_path} (train without --resume first)")
        self.iter_num = load_checkpoint(self.ckpt_path, self.model, self.optimizer, map_location=self.device)
        extra = read_checkpoint(self.ckpt_path, mmap=True)  # the trainer's own entries
        if extra["scaler"]:
            self.scaler.load_state_dict(extra["scaler"])
        self.best_val_loss = float(extra["best_val_loss"])
        self._last_saved_iter = self.iter_num
        rng_states = extra["rng_states"]
        if self.rank < len(rng_states) and (len(rng_states) == self.world_size or self.rank == 0):
            set_rng_states(rng_states[self.rank], self.device)
        else:  # saved by a different number of processes: fresh but distinct streams
            set_seed(self.config.seed + self.rank + self.iter_num)

    # ---- the loop ---------------------------------------------------------------------------------------------

    def fit(self) -> dict[str, Any]:
        """Train from ``iter_num`` to ``config.max_iters``.

        Evaluates at iteration 0 of a fresh run, every ``eval_interval`` steps (0: only at the end) and at the
        end (``eval_iters = 0`` turns evaluation off); after an evaluation saves a checkpoint when the val loss
        improved (or always, with ``always_save_checkpoint``); saves a final checkpoint at the end, so that
        ``out_dir/ckpt.pt`` then holds the last model. Under DDP call it in every process.

        On a NaN/inf loss raises ``TrainingDiverged`` when it reads it (see the class docstring), without saving.
        On Ctrl-C (KeyboardInterrupt) saves a checkpoint of the last completed step, prints how to resume, and
        re-raises the KeyboardInterrupt.
        Returns a summary: iterations, best/last losses, wall time, tokens/s, MFU and the checkpoint's path.
        """
        cfg = self.config
        self.metrics.start(self.iter_num, cfg.max_iters)
        try:
            if self.iter_num == 0 and cfg.max_iters > 0 and not cfg.resume:
                self._evaluate()  # the loss before training (about ln(vocab_size) for a new model)
            while self.iter_num < cfg.max_iters:
                self._last_loss, tokens = self.step()
                self._unchecked.append((self.iter_num, self.last_lr, self._last_loss))
                self.iter_num += 1
                if cfg.log_interval <= 0 or self.iter_num % cfg.log_interval == 0:
                    self.check_losses()
                self.metrics.step(self.iter_num, self._last_loss, self.last_lr, tokens)
                self.trigger_callbacks("on_batch_end")
                if (cfg.eval_interval > 0 and self.iter_num % cfg.eval_interval == 0) or self.iter_num == cfg.max_iters:
                    self._evaluate()
            if self.iter_num > 0 and self._last_saved_iter != self.iter_num:
                self.save()
            self.trigger_callbacks("on_train_end")
        except KeyboardInterrupt:
            self.metrics.close()
            if self.is_master and self.iter_num > 0:
                path = self.save(all_ranks=False)
                print(f"\ninterrupted: saved a checkpoint of iteration {self.iter_num} to {path}; continue the run "
                      "with the same command and --resume=true", file=sys.stderr)  # fmt: skip
            elif self.is_master:
                print("\ninterrupted before the first step: nothing to save", file=sys.stderr)
            raise
        finally:
            # an interrupted or diverged step leaves partial (or NaN) gradients: never carry them into a later fit
            self.optimizer.zero_grad(set_to_none=True)
            self.metrics.close()
            self.close()
        synchronize(self.device)
        return {
            "iterations": self.iter_num,
            "steps_this_fit": self.metrics.steps,
            "best_val_loss": self.best_val_loss,
            "train_loss": self.last_eval.get("train"),
            "val_loss": self.last_eval.get("val"),
            "last_loss": self.last_loss,
            **self.metrics.summary(),  # wall_time, tokens_per_sec, mfu
            "checkpoint": str(self.ckpt_path) if self.ckpt_path.exists() else None,
        }

    def _evaluate(self) -> None:
        """Evaluate, log, checkpoint if the val loss improved, then run the on_eval_end callbacks."""
        self.check_losses()  # no evaluation of, and no checkpoint of, diverged weights
        if self.config.eval_iters > 0:
            self.last_eval = self.estimate_loss()
            self.metrics.evaluation(self.iter_num, self.last_eval)
            improved = self.last_eval["val"] < self.best_val_loss
            if improved:
                self.best_val_loss = self.last_eval["val"]
            if self.iter_num > 0 and (improved or self.config.always_save_checkpoint):
                self.save()
        self.trigger_callbacks("on_eval_end")
        self.metrics.skip_time()

    def close(self) -> None:
        """Leave the process group this trainer joined (fit does this at its end). Safe to call twice."""
        if self._owns_process_group:
            if dist.is_initialized():
                dist.destroy_process_group()
            self._owns_process_group = False
