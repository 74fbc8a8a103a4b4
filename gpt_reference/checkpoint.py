"""Checkpoints that resume exactly (lesson 04), written so that a crash never leaves half a file.

A checkpoint is one ``torch.save``'d dict holding everything the next step depends on: ``"model"`` and
``"optimizer"`` (their state dicts: AdamW's moments and step counts, without which a resumed run takes different
steps), ``"iteration"`` (optimizer steps done) and ``"rng"`` (``torch.get_rng_state()``: dropout draws from it).
The trainer adds its own entries (``extra``): the gradient scaler, the best val loss, its config, the RNG states
of Python, NumPy and the GPU in every DDP process, and the caller's ``extra_state`` (the run's config, so that
``sample`` can rebuild the model). Only tensors and plain Python values go in, so checkpoints load with
``weights_only=True``, which cannot run code hidden in a malicious file.
"""

from __future__ import annotations

import contextlib
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    iteration: int,
    *,
    extra: dict[str, Any] | None = None,
) -> None:
    """Save model, optimizer, iteration and the RNG state (and ``extra``'s entries) to ``path``.

    The dict is written to a temporary file in the same folder, flushed and fsync'ed to the disk, and only then
    renamed over ``path`` with ``os.replace`` (atomic on POSIX and Windows): a crash at any moment leaves either
    the old checkpoint or the new one, never a mixture. Temporary files left by earlier crashes are removed after
    a successful save. A DDP or compiled model is saved as the plain module inside it.
    """
    state = {
        "model": unwrap_model(model).state_dict(),
        "optimizer": optimizer.state_dict(),
        "iteration": iteration,
        "rng": torch.get_rng_state(),
        **(extra or {}),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(state, f)
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


def load_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    *,
    map_location: str | torch.device | None = None,
) -> int:
    """Load a checkpoint written by ``save_checkpoint`` into ``model`` and ``optimizer``, restore the RNG state,
    and return the iteration. Parameter names that ``torch.compile`` or DDP prefixed (``_orig_mod.``,
    ``module.``: nanoGPT's checkpoints have them) are read as the plain names."""
    checkpoint = read_checkpoint(path, map_location)
    model.load_state_dict(_clean_state_dict(checkpoint["model"]))
    optimizer.load_state_dict(checkpoint["optimizer"])
    torch.set_rng_state(checkpoint["rng"].cpu())
    return int(checkpoint["iteration"])


def read_checkpoint(
    path: str | os.PathLike, map_location: str | torch.device | None = "cpu", *, mmap: bool = False
) -> dict[str, Any]:
    """The whole dict of a checkpoint. With ``mmap`` the file is memory-mapped, and the tensors that are not used
    are never read from the disk: the cheap way to look at a few small entries of a big checkpoint."""
    return torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)


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
    out = {}
    for key, value in state.items():
        for prefix in ("_orig_mod.", "module."):
            while key.startswith(prefix):
                key = key[len(prefix) :]
        out[key.replace("._orig_mod.", ".")] = value
    return out


# ---- every random-number generator a training step may use ------------------------------------------------------


def set_seed(seed: int) -> None:
    """Seed Python's, NumPy's and PyTorch's (CPU and every GPU) global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def get_rng_states(device: torch.device) -> dict[str, Any]:
    """The states of Python's, NumPy's, PyTorch's and ``device``'s generators, as tensors and plain values only."""
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


def set_rng_states(state: dict[str, Any], device: torch.device) -> None:
    """Restore what ``get_rng_states`` returned."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), *rest))
    torch.set_rng_state(state["torch"].cpu())
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"].cpu(), device)
    elif device.type == "mps" and "mps" in state:
        torch.mps.set_rng_state(state["mps"].cpu())
