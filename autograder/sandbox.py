"""Probe a notebook in a separate process, so that nothing the notebook does can change a verdict.

In-process grading trusts the learner: a notebook that replaces ``torch.allclose`` or ``autograder.core.judge``
changes the grader's own verdicts, and one that calls ``os._exit`` ends the grader. Here the learner's code runs in
a worker process::

    python -m autograder.sandbox NOTEBOOK CHECK_ID... --out DIR

which loads the notebook (``autograder.loader``) and, for each check, runs ``core.run_probe`` and writes its outcome
to ``DIR/<i>.pt`` as soon as it has it — ``{"outputs": {name: tensor}}`` or ``{"error": reason}`` — so the results
before a crash survive it. The parent (``run_sandboxed``) reads them with ``torch.load(weights_only=True)``, which
rebuilds tensors and plain containers and never runs a pickled object's code, and judges them with ``core.judge``
in its own, untouched process.

The worker runs with limits: a wall-clock time per worker (its process group is killed), a memory limit, at most
``OUTPUT_LIMIT_MB`` written to any one file (a write beyond fails with "File too large": Python ignores SIGXFSZ),
stdin closed, and its stdout/stderr sent to a log file of which only a tail is read back. The memory limit is
``RLIMIT_DATA`` rather than ``RLIMIT_AS``: both make a huge allocation fail cleanly (``MemoryError``, or torch's
"can't allocate memory" RuntimeError), but the address-space limit also counts reservations that use no memory,
such as CUDA's. When a worker dies in the middle of check k (``os._exit``, a
segfault, the time limit), check k gets the reason and a fresh worker grades the checks after it.

What this is not: a jail. The worker runs as the grader's user and can read and write what the grader can, and a
learner's function may call ``gpt_reference`` itself. The boundary protects the judging, not the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from .core import Check, ProbeOutcome, checks_for, get_check
from .loader import MESSAGE_CAP, load_notebook, read_cells

OUTPUT_LIMIT_MB = 64  # the most the worker may write to one file: its log, or one outcome
LOG_TAIL_BYTES = 4096
NOTEBOOK_FILE = "notebook.json"  # written by the worker once the notebook's cells have run


@dataclass(frozen=True)
class Limits:
    """What a worker may use. ``timeout`` is per worker process; ``cell_timeout`` and ``check_timeout`` are
    enforced inside it (they stop a Python loop without losing the process)."""

    timeout: float = 60.0
    cell_timeout: float = 10.0
    check_timeout: float = 10.0
    memory_gb: float = 4.0


@dataclass
class SandboxReport:
    """Each check's outcome, and what went wrong while the notebook's cells ran."""

    outcomes: dict[str, ProbeOutcome]
    problems: list[str]


# ---- the parent ------------------------------------------------------------------------------------------------------


def run_sandboxed(notebook: str | os.PathLike, check_ids: list[str], limits: Limits = Limits()) -> SandboxReport:
    """Probe ``check_ids`` on the notebook in worker processes; every check gets an outcome, crash or not.

    Raises NotebookError (before starting anything) when the file is not a notebook.
    """
    notebook = Path(notebook).resolve()
    read_cells(notebook)
    for check_id in check_ids:
        get_check(check_id)  # an unknown id is the caller's mistake: fail here, not as a worker "crash"
    outcomes: dict[str, ProbeOutcome] = {}
    problems: list[str] | None = None
    remaining = list(check_ids)
    with tempfile.TemporaryDirectory(prefix="autograder-") as tmp:
        while remaining:
            out = Path(tmp) / f"worker{len(check_ids) - len(remaining)}"
            out.mkdir()
            ending = _run_worker(notebook, remaining, out, limits)
            done = 0
            while done < len(remaining) and (out / f"{done}.pt").exists():
                outcomes[remaining[done]] = _read_outcome(out / f"{done}.pt")
                done += 1
            loaded = (out / NOTEBOOK_FILE).exists()
            if loaded and problems is None:
                problems = _read_problems(out / NOTEBOOK_FILE)
            if done == len(remaining):
                break
            if not loaded:  # it died running the cells: a fresh worker would die the same way
                reason = ending.format(doing="running the notebook's cells")
                problems = [*(problems or []), reason]
                outcomes.update({c: ProbeOutcome(error=f"not checked: {reason}") for c in remaining})
                break
            outcomes[remaining[done]] = ProbeOutcome(error=ending.format(doing=f"checking {remaining[done]}"))
            remaining = remaining[done + 1 :]
    return SandboxReport(outcomes, problems or [])


def _run_worker(notebook: Path, check_ids: list[str], out: Path, limits: Limits) -> str:
    """Run one worker to its end. Returns how it ended, in words for the case that it ended too early: a
    template with ``{doing}`` to fill in."""
    command = [
        sys.executable, "-m", "autograder.sandbox", str(notebook), *check_ids, "--out", str(out),
        f"--cell-timeout={limits.cell_timeout}", f"--check-timeout={limits.check_timeout}",
        f"--memory-gb={limits.memory_gb}",
    ]  # fmt: skip
    log_path = out / "worker.log"
    with open(log_path, "wb") as log:
        # cwd=out: `python -m` puts the working directory first on sys.path, and the notebook's folder might hold
        # a torch.py; the loader runs the learner's code in the notebook's folder
        worker = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=out,
            start_new_session=True,  # its own process group, so that a kill also reaches what it started
        )  # fmt: skip
        try:
            code = worker.wait(timeout=limits.timeout)
        except subprocess.TimeoutExpired:
            _kill_group(worker)
            return f"{{doing}} timed out after {limits.timeout:g} s — an infinite loop?"
    _kill_group(worker)  # anything it left running in its group
    tail = _tail(log_path)
    if any(sign in tail for sign in ("MemoryError", "bad_alloc", "can't allocate memory")):
        return f"the notebook's process ran out of memory (limit {limits.memory_gb:g} GB) while {{doing}}"
    if code >= 0:
        return f"the notebook's process exited with code {code} while {{doing}} (os._exit or sys.exit?)"
    if -code == signal.SIGKILL:
        return "the notebook's process was killed (SIGKILL) while {doing} — out of memory?"
    return f"the notebook's process crashed ({signal.Signals(-code).name}) while {{doing}}"


def _kill_group(worker: subprocess.Popen) -> None:
    try:
        os.killpg(worker.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    worker.wait()


def _tail(path: Path) -> str:
    with open(path, "rb") as f:
        f.seek(max(0, path.stat().st_size - LOG_TAIL_BYTES))
        return f.read().decode("utf-8", errors="replace")


def _read_outcome(path: Path) -> ProbeOutcome:
    """An outcome file, trusted only as far as ``weights_only`` loading and these type checks go."""
    try:
        payload = torch.load(path, weights_only=True)
    except Exception:
        return ProbeOutcome(error="the notebook's process sent back something other than plain tensors")
    if isinstance(payload, dict) and isinstance(payload.get("error"), str):
        error = payload["error"]
        return ProbeOutcome(error=error if len(error) <= MESSAGE_CAP else error[:MESSAGE_CAP] + " …")
    outputs = payload.get("outputs") if isinstance(payload, dict) else None
    if not isinstance(outputs, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in outputs.items()
    ):
        return ProbeOutcome(error="the notebook's process sent back something other than named tensors")
    return ProbeOutcome(outputs={k: v.detach() for k, v in outputs.items()})


def _read_problems(path: Path) -> list[str]:
    try:
        problems = json.loads(path.read_text())["problems"]
    except (ValueError, KeyError, TypeError):
        return ["the notebook's process sent back an unreadable list of problems"]
    return [str(p)[: 2 * MESSAGE_CAP] for p in problems] if isinstance(problems, list) else []


class SandboxedNotebook:
    """The learner as the pytest graders see it in ``--sandbox`` mode: the first ``outcome`` call runs all of
    that check's lesson in one worker; later calls hand out the stored outcomes."""

    def __init__(self, path: str | os.PathLike, limits: Limits = Limits()) -> None:
        self.path = Path(path)
        self.limits = limits
        self.report: SandboxReport | None = None

    @property
    def problems(self) -> list[str]:
        return self.report.problems if self.report else []

    def outcome(self, check: Check) -> ProbeOutcome:
        if self.report is None:
            self.report = run_sandboxed(self.path, [c.id for c in checks_for(check.lesson)], self.limits)
        return self.report.outcomes[check.id]


# ---- the worker ------------------------------------------------------------------------------------------------------


def _set_limits(memory_gb: float) -> None:
    for which, value in [
        (resource.RLIMIT_DATA, int(memory_gb * 2**30)),
        (resource.RLIMIT_FSIZE, OUTPUT_LIMIT_MB * 2**20),
        (resource.RLIMIT_CORE, 0),  # a segfault should not leave a core file behind
    ]:
        hard = resource.getrlimit(which)[1]
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(which, (value, value))


def _save_atomically(payload: object, path: Path) -> None:
    """Write then rename, so the parent never reads half a file from a worker that died mid-write."""
    partial = path.with_name(path.name + ".partial")
    if path.suffix == ".json":
        partial.write_text(json.dumps(payload))
    else:
        torch.save(payload, partial)
    os.replace(partial, path)


def worker_main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m autograder.sandbox", description=__doc__.split("\n\n")[0])
    parser.add_argument("notebook")
    parser.add_argument("check_ids", nargs="+", metavar="CHECK_ID")
    parser.add_argument("--out", required=True, help="folder for notebook.json and one <i>.pt per check")
    parser.add_argument("--cell-timeout", type=float, default=Limits.cell_timeout)
    parser.add_argument("--check-timeout", type=float, default=Limits.check_timeout)
    parser.add_argument("--memory-gb", type=float, default=Limits.memory_gb)
    args = parser.parse_args(argv)
    _set_limits(args.memory_gb)
    out = Path(args.out).resolve()
    checks = [get_check(check_id) for check_id in args.check_ids]
    loaded = load_notebook(args.notebook, cell_timeout=args.cell_timeout, check_timeout=args.check_timeout)
    _save_atomically({"problems": loaded.problems}, out / NOTEBOOK_FILE)
    for i, check in enumerate(checks):
        outcome = loaded.outcome(check)
        payload = {"error": outcome.error} if outcome.error is not None else {"outputs": outcome.outputs}
        _save_atomically(payload, out / f"{i}.pt")


if __name__ == "__main__":
    worker_main()
