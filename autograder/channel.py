"""The channel back from a sandbox worker: frames on a pipe, and a probe's outcome as bytes that run no code.

A frame is a 4-byte length, a JSON header (at most ``HEADER_LIMIT`` bytes, with the body's length under
``"body"``) and the body (at most ``OUTPUT_LIMIT_MB``). An outcome (``encode_outcome``) is itself a frame: an error
message, or the outputs as plain dense tensors — the raw bytes of each, with a dtype from ``DTYPES`` and a shape
that must account for every byte. No pickle and no zip: decoding (``decode_outcome``) trusts nothing, runs nothing,
inflates nothing, and turns anything malformed into an error for that one check.
"""

from __future__ import annotations

import json
import os
import select
import struct
import time
import unicodedata

import torch

from .core import ProbeOutcome
from .loader import MESSAGE_CAP

OUTPUT_LIMIT_MB = 64  # the most one check's outputs may take, and the most the worker may write to one file
HEADER_LIMIT = 64 * 2**10
DTYPES = {str(t): t for t in (torch.float64, torch.float32, torch.float16, torch.bfloat16, torch.int64, torch.int32,
                               torch.int16, torch.int8, torch.uint8, torch.bool)}  # fmt: skip
MALFORMED = "the notebook's process sent back something other than plain tensors"
MISTAKE_CAP = 60  # characters of a mistake's name


def printable(text: str, cap: int = MESSAGE_CAP) -> str:
    """``text`` without control or format characters (an ANSI escape could repaint a score), cut to ``cap``."""
    text = "".join(c if unicodedata.category(c) not in ("Cc", "Cf") else " " for c in str(text))
    return text if len(text) <= cap else text[:cap] + " …"


def frame(header: dict, body: bytes) -> bytes:
    encoded = json.dumps({**header, "body": len(body)}).encode()
    return struct.pack(">I", len(encoded)) + encoded + body


def _header(raw: bytes) -> dict:
    """A frame's header, or ValueError."""
    try:
        header = json.loads(raw)
    except RecursionError:  # "[[[[…" nested deeper than Python recurses
        raise ValueError("nested too deep") from None
    if not isinstance(header, dict) or not isinstance(header.get("body"), int):
        raise ValueError("not a header")
    if not 0 <= header["body"] <= OUTPUT_LIMIT_MB * 2**20 + HEADER_LIMIT:
        raise ValueError("too big")
    return header


def unframe(data: bytes) -> tuple[dict, bytes]:
    """(header, body) of one whole frame, or ValueError."""
    if len(data) < 4:
        raise ValueError("short")
    (length,) = struct.unpack(">I", data[:4])
    if length > HEADER_LIMIT or 4 + length > len(data):
        raise ValueError("header")
    header = _header(data[4 : 4 + length])
    body = data[4 + length :]
    if header["body"] != len(body):
        raise ValueError("body")
    return header, body


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def read_frame(fd: int, deadline: float) -> tuple[dict, bytes] | str | None:
    """The next frame on ``fd``: (header, body), or "timeout" (nothing whole by ``deadline``, a monotonic time),
    "malformed", or None (the pipe closed)."""
    prefix = _read(fd, 4, deadline)
    if not isinstance(prefix, bytes):
        return prefix
    (length,) = struct.unpack(">I", prefix)
    if length > HEADER_LIMIT:
        return "malformed"
    raw = _read(fd, length, deadline)
    if not isinstance(raw, bytes):
        return raw
    try:
        header = _header(raw)
    except ValueError:
        return "malformed"
    body = _read(fd, header["body"], deadline)
    return (header, body) if isinstance(body, bytes) else body


def _read(fd: int, count: int, deadline: float) -> bytes | str | None:
    data = bytearray()
    while len(data) < count:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return "timeout"
        chunk = os.read(fd, min(count - len(data), 2**20))
        if not chunk:
            return None
        data += chunk
    return bytes(data)


def encode_outcome(outcome: ProbeOutcome) -> bytes:
    """An outcome as a frame. Its tensors must be plain dense CPU tensors (as ``core.run_probe`` returns them)."""
    if outcome.error is not None:
        return frame({"error": outcome.error[: 2 * MESSAGE_CAP], "mistake": outcome.mistake}, b"")
    tensors, chunks = [], []
    for name, tensor in (outcome.outputs or {}).items():
        if str(tensor.dtype) not in DTYPES:
            error = f"output {name!r} has dtype {tensor.dtype}, which the grader does not compare"
            return frame({"error": error}, b"")
        data = tensor.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
        tensors.append({"name": name, "dtype": str(tensor.dtype), "shape": list(tensor.shape), "size": len(data)})
        chunks.append(data)
    return frame({"tensors": tensors}, b"".join(chunks))


def decode_outcome(data: bytes) -> ProbeOutcome:
    """The inverse of ``encode_outcome``, trusting nothing: a malformed outcome is an error for that check."""
    try:
        header, body = unframe(data)
    except ValueError:
        return ProbeOutcome(error=MALFORMED)
    if isinstance(header.get("error"), str):
        mistake = header.get("mistake")  # a name the worker's run_probe gave (ownwork's), or None
        return ProbeOutcome(error=printable(header["error"]),
                            mistake=printable(mistake, MISTAKE_CAP) if isinstance(mistake, str) else None)
    tensors = header.get("tensors")
    if not isinstance(tensors, list):
        return ProbeOutcome(error=MALFORMED)
    outputs, offset = {}, 0
    for entry in tensors:
        try:
            name, dtype, shape, size = entry["name"], DTYPES[entry["dtype"]], entry["shape"], entry["size"]
        except (TypeError, KeyError):
            return ProbeOutcome(error=MALFORMED)
        if not (isinstance(name, str) and isinstance(shape, list) and len(shape) <= 8 and isinstance(size, int)
                and all(isinstance(n, int) and 0 <= n <= 2**31 for n in shape)):  # fmt: skip
            return ProbeOutcome(error=MALFORMED)
        itemsize = torch.empty((), dtype=dtype).element_size()
        if size != itemsize * torch.Size(shape).numel() or offset + size > len(body):
            return ProbeOutcome(error=MALFORMED)
        raw = bytearray(body[offset : offset + size])
        flat = torch.frombuffer(raw, dtype=dtype) if size else torch.empty(0, dtype=dtype)
        outputs[name] = flat.reshape(shape)
        offset += size
    return ProbeOutcome(outputs=outputs) if offset == len(body) else ProbeOutcome(error=MALFORMED)
