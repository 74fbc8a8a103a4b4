"""Which device to run on, which precision to use there, and how fast that device could go at best.

Model FLOPs Utilisation (MFU) divides the FLOPs a run actually does by the peak the chip can do, so the peak must
be the chip's own: a table of dense bf16/fp16 tensor-core peaks by product name, looked up from
``torch.cuda.get_device_name``. A device not in the table has no known peak and MFU is reported as unknown rather
than against some other chip's number.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import sys

import torch

# Dense (no sparsity) bf16 peak FLOP/s from the vendors' data sheets. The first matching substring wins, so more
# specific names come first.
PEAK_BF16_FLOPS: list[tuple[str, float]] = [
    ("H200", 989e12),
    ("H100 PCIe", 756e12),
    ("H100", 989e12),  # SXM and NVL
    ("GH200", 989e12),
    ("B200", 2250e12),
    ("A100", 312e12),
    ("A10G", 125e12),
    ("A10", 125e12),
    ("L40S", 362e12),
    ("L4", 121e12),
    ("RTX 4090", 165e12),
    ("RTX 3090", 71e12),
    ("V100", 125e12),  # fp16: V100 has no bf16
    ("T4", 65e12),  # fp16
]


def auto_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple's MPS, then the CPU; anything else is passed to ``torch.device``."""
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def autocast_dtype(device_type: str, bf16_supported: bool) -> torch.dtype:
    """The dtype of mixed precision on a device of type ``device_type`` (lesson 07): bf16 on CUDA when the GPU
    supports it (``torch.cuda.is_bf16_supported()``), else fp16; float32 on every other device.

    bf16 keeps float32's 8 exponent bits, so it spans the same range and gradients as small as 1e-38 survive;
    fp16 has 5, and gradients below about 6e-8 flush to zero unless the loss is scaled up first (a ``GradScaler``).
    On the CPU float32 is the fast path (few CPUs have bf16 matrix units), and on Apple's MPS the reference keeps
    float32 too: one precision there, whatever the macOS and PyTorch versions support.
    """
    if device_type == "cuda":
        return torch.bfloat16 if bf16_supported else torch.float16
    return torch.float32


def resolve_dtype(device: torch.device, dtype: str = "auto") -> torch.dtype:
    """The compute dtype for mixed precision: ``auto`` is ``autocast_dtype`` for the device, else the one named."""
    if dtype == "auto":
        return autocast_dtype(device.type, device.type == "cuda" and torch.cuda.is_bf16_supported())
    table = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if dtype not in table:
        raise ValueError(f"dtype must be auto, float32, bfloat16 or float16, not {dtype!r}")
    return table[dtype]


def autocast(device: torch.device, dtype: torch.dtype) -> contextlib.AbstractContextManager:
    """Mixed precision on CUDA; a no-op for float32 (and always on the CPU, where fp32 is the fast path)."""
    if dtype == torch.float32 or device.type != "cuda":
        return contextlib.nullcontext()
    return torch.autocast(device_type="cuda", dtype=dtype)


def peak_flops(device: torch.device | str) -> float | None:
    """The device's dense bf16/fp16 peak in FLOP/s, or None when it is not a GPU we know."""
    device = torch.device(device)
    if device.type != "cuda" or not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name(device)
    for key, flops in PEAK_BF16_FLOPS:
        if key in name:
            return flops
    return None


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so that wall-clock timings measure the work and not its launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def batch_to_device(
    x: torch.Tensor, y: torch.Tensor, device: torch.device | str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Move a CPU batch to ``device``. On CUDA the copy goes through page-locked (pinned) memory and does not
    block, so it overlaps with the GPU still finishing the previous step."""
    device = torch.device(device)
    if device.type == "cuda":
        return x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(device, non_blocking=True)
    return x.to(device), y.to(device)


def compile_unavailable_reason(device: torch.device) -> str | None:
    """Why ``torch.compile`` cannot run on ``device`` here, in a few words, or None when it can.

    Its backend (inductor) writes kernels and builds them as it trains: C++ built by the C++ compiler inductor
    looks for (``$CXX``, else g++, clang++ on macOS, cl on Windows) on the CPU, Triton on CUDA.
    """
    if device.type == "cuda" and importlib.util.find_spec("triton") is None:
        return "Triton, which builds its CUDA kernels, is not installed"
    if device.type == "cpu":
        default = "cl" if sys.platform == "win32" else "clang++" if sys.platform == "darwin" else "g++"
        compiler = os.environ.get("CXX", default)
        if shutil.which(compiler) is None:
            return f"no C++ compiler ({compiler}) to build its CPU kernels"
    return None


def compile_options(device: torch.device) -> dict[str, bool]:
    """Inductor's options for ``torch.compile`` on ``device``. On a CPU its C++ wrapper: the compiled step calls its
    kernels from C++ rather than from generated Python, about 1 ms less per step of nanoGPT's CPU recipe (~50 ms)."""
    return {"cpp_wrapper": True} if device.type == "cpu" else {}
