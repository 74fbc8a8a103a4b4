"""What a run reports while it trains: a progress bar (or printed lines), ``metrics.jsonl``, ``loss.png``, and the
speed figures, tokens per second and MFU (model FLOPs utilisation: the FLOPs the model does per second, over the
device's peak).

``metrics.jsonl`` has one JSON object per line: ``{"type": "train", "iter", "loss", "lr", "tokens_per_sec", "mfu",
"time"}`` every ``log_interval`` steps and ``{"type": "eval", "iter", "train_loss", "val_loss", "time"}`` after every
evaluation; ``time`` counts seconds from the start of the ``fit``. ``loss.png`` is redrawn from it after every
evaluation.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any, SupportsFloat

from tqdm import tqdm

METRICS_NAME = "metrics.jsonl"
PLOT_NAME = "loss.png"


def mfu(flops_per_token: float, tokens_per_sec: float, peak_flops: float, world_size: int = 1) -> float:
    """Model FLOPs utilisation (lesson 07): the fraction of the devices' peak that the model's own arithmetic uses.

    The run does ``flops_per_token · tokens_per_sec`` FLOP/s over all its ``world_size`` processes, each on a device
    that could do at most ``peak_flops``. Work the model does not need (recomputation, padding) does not count, and
    neither does time lost to data loading or communication: MFU is what is left of the peak. A fraction, not a
    percentage (nanoGPT's GPT-2 124M on an A100: about 0.37).
    """
    return flops_per_token * tokens_per_sec / (world_size * peak_flops)


class RunMetrics:
    """The bookkeeping of one run's reports. ``writes`` is False in all DDP processes but rank 0: they keep the
    speed figures (callbacks may read them everywhere) but write nothing, to files or the terminal.

    ``tokens_per_sec`` is a moving average over steps and ``mfu`` its MFU (None when the device's peak or the
    model's FLOPs per token are unknown). The first step of a ``fit`` (start-up, compilation) and the time spent in
    evaluations and checkpoints are left out of the figures of the run's summary.
    """

    def __init__(
        self,
        out_dir: str | os.PathLike,
        *,
        writes: bool,
        progress: bool,
        log_interval: int,
        flops_per_token: float | None,
        peak_flops: float | None,
        world_size: int,
    ) -> None:
        self.out_dir = Path(out_dir)
        self.path = self.out_dir / METRICS_NAME
        self.writes, self.progress, self.log_interval = writes, progress, log_interval
        self.flops_per_token, self.peak_flops, self.world_size = flops_per_token, peak_flops, world_size
        self.tokens_per_sec: float | None = None
        self.mfu: float | None = None
        self._bar: tqdm | None = None

    def mfu_at(self, tokens_per_sec: float | None) -> float | None:
        """Model FLOPs utilisation of one device: achieved FLOP/s per process over the device's peak."""
        if self.flops_per_token is None or self.peak_flops is None or not tokens_per_sec:
            return None
        return mfu(self.flops_per_token, tokens_per_sec, self.peak_flops, self.world_size)

    # ---- one fit ------------------------------------------------------------------------------------------------

    def start(self, iter_num: int, max_iters: int) -> None:
        """The start of a ``fit`` at ``iter_num``: a fresh run starts a new metrics.jsonl, a resumed one drops the
        lines written after its checkpoint (they belong to steps that will be taken again)."""
        self._start = self._last = time.perf_counter()
        self.steps, self._timed_tokens, self._timed_seconds = 0, 0, 0.0
        self._first_step = (0, 0.0)  # (tokens, seconds) of the first step, which includes start-up or compilation
        if not self.writes:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if self.path.exists() and iter_num == 0:
            self.path.unlink()
        elif self.path.exists():
            kept = []
            for line in self.path.read_text().splitlines():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut short by a crash
                if record.get("iter", 0) <= iter_num:
                    kept.append(line)
            self.path.write_text("".join(line + "\n" for line in kept))
        self._bar = tqdm(
            total=max_iters,
            initial=min(iter_num, max_iters),
            disable=not self.progress,
            desc="train",
            dynamic_ncols=True,
            file=sys.stderr,
        )

    def step(self, iter_num: int, loss: SupportsFloat, lr: float, tokens: int) -> None:
        """After each optimizer step: the speed figures and the bar; every ``log_interval`` steps, a line and the
        bar's figures. ``loss`` (a float, or a 0-d tensor still on the device) is read on those steps only: reading
        it makes the host wait for the device."""
        now = time.perf_counter()
        dt, self._last = now - self._last, now
        self.steps += 1
        if self.steps == 1:
            self._first_step = (tokens, dt)
        else:
            self._timed_tokens += tokens
            self._timed_seconds += dt
        step_tokens_per_sec = tokens / dt if dt > 0 else None
        if step_tokens_per_sec is not None:
            if self.tokens_per_sec is None or self.steps == 1:
                self.tokens_per_sec = step_tokens_per_sec
            else:  # a moving average: one slow step (a checkpoint, the OS) does not jolt the numbers
                self.tokens_per_sec = 0.9 * self.tokens_per_sec + 0.1 * step_tokens_per_sec
            self.mfu = self.mfu_at(self.tokens_per_sec)
        if not self.writes:
            return
        bar = self._bar is not None and not self._bar.disable
        if bar:
            self._bar.update(1)
        if self.log_interval <= 0 or iter_num % self.log_interval != 0:
            return
        loss = float(loss)
        mfu_text = "n/a" if self.mfu is None else f"{self.mfu * 100:.1f}%"
        tok_s = f"{self.tokens_per_sec or 0:,.0f}"
        self._write(type="train", iter=iter_num, loss=loss, lr=lr, tokens_per_sec=step_tokens_per_sec,
                    mfu=self.mfu_at(step_tokens_per_sec))  # fmt: skip
        if bar:
            postfix = {"loss": f"{loss:.4f}", "lr": f"{lr:.2e}", "tok/s": tok_s, "mfu": mfu_text}
            self._bar.set_postfix(postfix, refresh=False)  # a dict keeps this order (keywords get sorted)
        else:
            print(f"iter {iter_num}: loss {loss:.4f}, lr {lr:.2e}, {tok_s} tok/s, mfu {mfu_text}")

    def evaluation(self, iter_num: int, losses: dict[str, float]) -> None:
        """After an evaluation: a line in metrics.jsonl, a line on the terminal, and loss.png redrawn."""
        if not self.writes:
            return
        self._write(type="eval", iter=iter_num, train_loss=losses["train"], val_loss=losses["val"])
        self.print(f"iter {iter_num}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}")
        plot_losses(self.path, self.out_dir / PLOT_NAME)

    def skip_time(self) -> None:
        """Leave the time since the last step (an evaluation, a checkpoint) out of the speed figures."""
        self._last = time.perf_counter()

    def summary(self) -> dict[str, Any]:
        """Wall time of the fit, and its tokens/s and MFU without the first step (unless it was the only one)."""
        tokens, seconds = (self._timed_tokens, self._timed_seconds) if self.steps > 1 else self._first_step
        tokens_per_sec = tokens / seconds if seconds > 0 else None
        wall = time.perf_counter() - self._start
        return {"wall_time": wall, "tokens_per_sec": tokens_per_sec, "mfu": self.mfu_at(tokens_per_sec)}

    def print(self, message: str) -> None:
        """A line on the terminal that does not break the progress bar."""
        if self._bar is not None and not self._bar.disable:
            self._bar.write(message)
        else:
            print(message)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def _write(self, **record: Any) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps({**record, "time": time.perf_counter() - self._start}) + "\n")


def plot_losses(metrics_path: str | os.PathLike, png_path: str | os.PathLike) -> None:
    """Draw a metrics.jsonl's logged training losses and its evaluations into a PNG (written atomically)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # no pyplot: leaves the user's backend alone
    from matplotlib.figure import Figure

    train_it, train_loss, eval_it, eval_train, eval_val = [], [], [], [], []
    for line in Path(metrics_path).read_text().splitlines():
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
    png_path = Path(png_path)
    tmp = png_path.with_name(f".{png_path.name}.tmp")
    fig.savefig(tmp, format="png")
    os.replace(tmp, png_path)
