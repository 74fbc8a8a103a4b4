"""Probe an untrusted notebook in a jailed worker, so that nothing it does can forge a verdict.

The parent (``run_sandboxed``, trusted) starts a worker in a jail (``autograder.jail``: bubblewrap, an unprivileged
uid, cgroup limits)::

    python -P -m autograder.sandbox /submission/NOTEBOOK CHECK_ID... --fd N ...

and judges what comes back with ``core.judge`` in its own process, where every expected value is computed. The
worker never sees a reference: its checks are stripped of ``reference`` and ``mistakes``, and it returns only the
learner's outputs. Inside the worker, the learner's code runs only in children forked for one job each:

* the *definitions* child loads the notebook with ``definitions_only=True`` (``autograder.definitions``: imports,
  functions, classes, constants; no scratch statement, so nothing can change how the probes run) and reports its
  problems and how long loading took;
* one child per check loads the definitions again and runs ``core.run_probe``: what the learner's code does during
  one probe dies with that child and cannot reach another check's. Before any learner code runs, the child closes
  every file descriptor but the pipe of its own result, and takes a CPU-time limit; the worker kills it at its
  deadline (``check_timeout`` plus twice the loading time: an ``except BaseException`` around a loop is stopped
  too), then kills every other process left in the jail. The worker is not dumpable (``PR_SET_DUMPABLE``), so its
  children cannot ptrace it or open its file descriptors through /proc.

The channel back is one pipe the parent made (never a file the worker could swap for a FIFO), in size-capped
frames of plain dense tensors as raw bytes (``autograder.channel``): nothing in them can run code, inflate, or
crash the judge. Learner messages come back capped and with their control characters removed.

When the worker dies in the middle of check k (its process killed by a child, say), check k gets the reason and a
fresh worker grades the checks after it. ``isolated=False`` runs the same worker without the jail (where
bubblewrap is missing, and only when asked for: ``--unisolated``).
"""

from __future__ import annotations

import argparse
import ctypes
import dataclasses
import json
import os
import resource
import select
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from .channel import (
    HEADER_LIMIT, OUTPUT_LIMIT_MB, decode_outcome, encode_outcome, frame, printable, read_frame, write_all,
)  # fmt: skip
from .core import Check, ProbeOutcome, checks_for, get_check
from .jail import Jail, JailLimits, unavailable_reason
from .loader import GRADING_ENV, MESSAGE_CAP, load_notebook, preload_imports, read_cells

STARTUP_SECONDS = 120.0  # for the worker to import torch and the checks, on a busy machine
LOG_TAIL_BYTES = 2048
PR_SET_DUMPABLE = 4


class SandboxUnavailable(Exception):
    """Workers cannot be jailed on this machine; the message says why, in one line."""


@dataclass(frozen=True)
class Limits:
    """What grading one notebook may use. ``cell_timeout`` and ``check_timeout`` are the limits that matter: per
    cell while the definitions load, per check while it is probed. ``timeout`` bounds the whole notebook, a safety
    net; ``memory_gb`` is for the worker and all it starts; ``processes`` counts threads too."""

    timeout: float = 600.0
    cell_timeout: float = 10.0
    check_timeout: float = 10.0
    memory_gb: float = 4.0
    processes: int = 64


@dataclass
class SandboxReport:
    """Each check's outcome, and what went wrong while the notebook's cells ran."""

    outcomes: dict[str, ProbeOutcome]
    problems: list[str]


# ---- the parent ------------------------------------------------------------------------------------------------------


def run_sandboxed(
    notebook: str | os.PathLike, check_ids: list[str], limits: Limits = Limits(), isolated: bool = True
) -> SandboxReport:
    """Probe ``check_ids`` on the notebook in jailed workers; every check gets an outcome, crash or not.

    Raises NotebookError (before starting anything) when the file is not a notebook, and SandboxUnavailable when
    ``isolated`` and workers cannot be jailed here.
    """
    notebook = Path(notebook).resolve()
    code_cells = sum(cell.get("cell_type") == "code" for cell in read_cells(notebook))
    for check_id in check_ids:
        get_check(check_id)  # an unknown id is the caller's mistake: fail here, not as a worker "crash"
    if isolated and (reason := unavailable_reason()):
        raise SandboxUnavailable(reason)
    load_deadline = limits.cell_timeout * max(code_cells, 1) + 2
    give_up = time.monotonic() + limits.timeout
    outcomes: dict[str, ProbeOutcome] = {}
    problems: list[str] | None = None
    remaining = list(check_ids)
    while remaining:
        worker = _Worker(notebook, remaining, limits, load_deadline, isolated)
        try:
            loaded, received, ending = worker.run(give_up)
        finally:
            worker.close()
        if loaded is not None and problems is None:
            problems = loaded
        outcomes.update(zip(remaining, received))
        done = len(received)
        if done == len(remaining):
            break
        if loaded is None:  # it died loading the definitions: a fresh worker would die the same way
            reason = ending.format(doing="running the notebook's cells")
            problems = [*(problems or []), reason]
            outcomes.update({c: ProbeOutcome(error=f"not checked: {reason}") for c in remaining[done:]})
            break
        outcomes[remaining[done]] = ProbeOutcome(error=ending.format(doing=f"checking {remaining[done]}"))
        remaining = remaining[done + 1 :]
        if time.monotonic() > give_up:
            reason = f"grading the notebook took longer than {limits.timeout:g} s in all"
            outcomes.update({c: ProbeOutcome(error=f"not checked: {reason}") for c in remaining})
            break
    return SandboxReport(outcomes, problems or [])


class _Worker:
    """One worker process (jailed or not) and the pipe it reports on."""

    def __init__(self, notebook: Path, check_ids: list[str], limits: Limits, load_deadline: float, isolated: bool):
        self.limits = limits
        self.check_ids = check_ids
        self.load_deadline = load_deadline
        self.jail = Jail(JailLimits(int(limits.memory_gb * 2**30), limits.processes)) if isolated else None
        self.log = tempfile.TemporaryFile()  # unlinked at once: nothing is left behind, whatever happens
        self.reader, writer = os.pipe()
        path = f"/submission/{notebook.name}" if self.jail else str(notebook)
        argv = [
            sys.executable, "-P", "-m", "autograder.sandbox", path, *check_ids, f"--fd={writer}",
            f"--cell-timeout={limits.cell_timeout}", f"--check-timeout={limits.check_timeout}",
            f"--load-deadline={load_deadline}", f"--memory-gb={limits.memory_gb}", f"--processes={limits.processes}",
            *([] if self.jail and self.jail.has_cgroups else ["--rlimits"]), *(["--jailed"] if self.jail else []),
        ]  # fmt: skip
        try:
            self.process = subprocess.Popen(
                self.jail.command(argv, notebook, _readable()) if self.jail else argv, stdin=subprocess.DEVNULL,
                stdout=self.log, stderr=subprocess.STDOUT, pass_fds=[writer], env=_worker_environment(),
                cwd=tempfile.gettempdir() if self.jail else notebook.parent, start_new_session=True,
            )  # fmt: skip
        except OSError:
            self.jail and self.jail.close()
            raise
        finally:
            os.close(writer)

    def run(self, give_up: float) -> tuple[list[str] | None, list[ProbeOutcome], str]:
        """(the notebook's problems, or None when the definitions never loaded; each check's outcome, in order,
        as far as the worker got; how it ended, a template with ``{doing}``, for when it ended too early)."""
        first = self._frame(min(time.monotonic() + STARTUP_SECONDS + self.load_deadline, give_up))
        if isinstance(first, tuple):  # the definitions child failed: how, in the header
            return None, [], self._outcome(first[0], b"", self.load_deadline, "{doing}").error
        if not isinstance(first, dict) or not isinstance(first.get("problems"), list):
            return None, [], self._ending(first)
        problems = [printable(p, 2 * MESSAGE_CAP) for p in first["problems"][:50]]
        seconds = first.get("seconds")
        seconds = min(float(seconds), self.load_deadline) if isinstance(seconds, (int, float)) else self.load_deadline
        check_deadline = self.limits.check_timeout + 2 * seconds + 2  # as the worker computes it
        outcomes = []
        while True:
            frame = self._frame(min(time.monotonic() + check_deadline + 30, give_up))
            if not isinstance(frame, tuple):
                return problems, outcomes, self._ending(frame)
            header, body = frame
            if len(outcomes) == len(self.check_ids):
                return problems, outcomes, self._ending("malformed")
            doing = f"checking {self.check_ids[len(outcomes)]}"
            outcomes.append(self._outcome(header, body, check_deadline, doing))
            if header.get("last"):
                return problems, outcomes, ""

    def _outcome(self, header: dict, body: bytes, deadline: float, doing: str) -> ProbeOutcome:
        status = header.get("status")
        if status == "ok":
            return decode_outcome(body)
        if status == "timeout":
            return ProbeOutcome(error=f"{doing} did not finish in {deadline:.3g} s — an infinite loop?")
        if status == "too big":
            return ProbeOutcome(error=f"{doing}: its outputs were larger than {OUTPUT_LIMIT_MB} MB")
        return ProbeOutcome(error=self._death(header.get("exit"), header.get("signal")).format(doing=doing))

    def _death(self, exit_code: object, signum: object) -> str:
        if isinstance(signum, int) and signum > 0:
            if signum == signal.SIGKILL:
                limit = f"{self.limits.memory_gb:g} GB"
                return f"the notebook's process was killed (SIGKILL) while {{doing}} — out of memory (limit {limit})?"
            if signum == signal.SIGXCPU:
                return "the notebook's process used up its CPU time while {doing}"
            name = signal.Signals(signum).name if signum in signal.Signals._value2member_map_ else f"signal {signum}"
            return f"the notebook's process crashed ({name}) while {{doing}}"
        if isinstance(exit_code, int):
            return f"the notebook's process exited with code {exit_code} while {{doing}} (os._exit or sys.exit?)"
        return "the notebook's process ended while {doing}"

    def _ending(self, what: object) -> str:
        if what == "timeout":
            return "{doing} took too long: the worker stopped answering"
        if what == "malformed":
            return "the notebook's process sent back something the grader cannot read while {doing}"
        try:
            code = self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            return "the notebook's process ended while {doing}"
        self.log.seek(max(0, self.log.seek(0, 2) - LOG_TAIL_BYTES))
        tail = self.log.read().decode("utf-8", errors="replace")
        if code and "bwrap:" in tail:  # the jail itself did not start: the grader's problem, said as it is
            return "the jail did not start: " + printable(tail.strip().splitlines()[-1])
        if self.jail and code > 128:  # bwrap exits with 128 + the signal that killed the worker
            return self._death(None, code - 128)
        return self._death(code if code >= 0 else None, -code if code < 0 else None)

    def _frame(self, deadline: float) -> tuple[dict, bytes] | dict | str | None:
        """The next frame: (header, body), or the problems frame's header (a dict), or "timeout", "malformed" or
        None (the pipe closed)."""
        got = read_frame(self.reader, deadline)
        return got[0] if isinstance(got, tuple) and "problems" in got[0] else got

    def close(self) -> None:
        """Kill the worker and everything it started; nothing of it is left."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()
        if self.jail:
            self.jail.close()
        os.close(self.reader)
        self.log.close()


def _readable() -> list[Path]:
    """What a jailed worker must read: Python, its libraries, the two packages, extra checks and the data."""
    import gpt_reference

    paths = [Path(sys.prefix), Path(sys.base_prefix), Path(sys.exec_prefix), Path(sys.executable).resolve().parent]
    paths += [Path(p) for p in sys.path if p and "site-packages" in p]
    paths += [Path(__file__).resolve().parent, Path(gpt_reference.__file__).resolve().parent]
    paths += [Path(p) for p in os.environ.get("AUTOGRADER_CHECKS", "").split(os.pathsep) if p]
    paths += [Path(os.environ[v]) for v in ("TIKTOKEN_CACHE_DIR", "GPT_DATA_DIR") if os.environ.get(v)]
    return paths


def _worker_environment() -> dict[str, str]:
    """A clean environment: nothing of the grader's but what the worker needs."""
    import gpt_reference

    packages = {str(Path(__file__).resolve().parents[1]), str(Path(gpt_reference.__file__).resolve().parents[1])}
    env = {
        "PATH": "/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8", "PYTHONPATH": os.pathsep.join(sorted(packages)),
        "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": "/tmp/matplotlib", GRADING_ENV: "1",
    }  # fmt: skip
    for variable in ("AUTOGRADER_CHECKS", "TIKTOKEN_CACHE_DIR", "GPT_DATA_DIR"):
        if os.environ.get(variable):
            env[variable] = os.environ[variable]
    return env


class SandboxedNotebook:
    """The learner as the pytest graders see it in ``--sandbox`` mode: the first ``outcome`` call runs all of
    that check's lesson in one worker; later calls hand out the stored outcomes."""

    def __init__(self, path: str | os.PathLike, limits: Limits = Limits(), isolated: bool = True) -> None:
        self.path = Path(path)
        self.limits = limits
        self.isolated = isolated
        self.report: SandboxReport | None = None

    @property
    def problems(self) -> list[str]:
        return self.report.problems if self.report else []

    def outcome(self, check: Check) -> ProbeOutcome:
        if self.report is None:
            ids = [c.id for c in checks_for(check.lesson)]
            self.report = run_sandboxed(self.path, ids, self.limits, self.isolated)
        return self.report.outcomes[check.id]


# ---- the worker ------------------------------------------------------------------------------------------------------


def _set_limits(memory_gb: float, processes: int, rlimits_only: bool) -> None:
    """The worker's own limits, inherited by its children. ``RLIMIT_DATA`` makes one huge allocation fail cleanly
    (``MemoryError``); the cgroup bounds all processes together. Without cgroups: an address-space limit and a
    process count instead."""
    memory = int(memory_gb * 2**30)
    limits = [(resource.RLIMIT_DATA, memory), (resource.RLIMIT_FSIZE, OUTPUT_LIMIT_MB * 2**20)]
    limits.append((resource.RLIMIT_CORE, 0))  # a crash leaves no core file
    if rlimits_only:
        limits += [(resource.RLIMIT_AS, memory + 2**30), (resource.RLIMIT_NPROC, processes)]
    for which, value in limits:
        hard = resource.getrlimit(which)[1]
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(which, (value, value))


def _without_answers(check: Check) -> Check:
    """The check as the worker needs it: the probe and the target, no reference and no mistakes."""
    return dataclasses.replace(check, reference=None, mistakes=())


class _Children:
    """The worker's side: fork one child per job, collect what it sends, kill it at its deadline."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args

    def run(self, job: Check | None, deadline: float) -> dict:
        """Run ``job`` (a check, or None: load the definitions) in a fresh child; a header describing how it went,
        with the child's bytes under ``"data"``."""
        reader, writer = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(reader)
            self._child(job, writer, deadline)
        os.close(writer)
        data, status = bytearray(), "ok"
        end = time.monotonic() + deadline
        while True:
            left = end - time.monotonic()
            if left <= 0 or not select.select([reader], [], [], left)[0]:
                status = "timeout"
                break
            chunk = os.read(reader, 2**20)
            if not chunk:
                break
            data += chunk
            if len(data) > OUTPUT_LIMIT_MB * 2**20 + HEADER_LIMIT:
                status = "too big"
                break
        os.close(reader)
        while status == "ok" and (wait := os.waitpid(pid, os.WNOHANG))[0] == 0:  # it closed the pipe: is it done?
            if time.monotonic() > end:
                status = "timeout"
            time.sleep(0.005)
        if status != "ok":
            os.kill(pid, signal.SIGKILL)
            wait = os.waitpid(pid, 0)
        wait_status = wait[1]
        if self.args.jailed:
            _kill_all_but_me()
        header: dict = {"status": status, "data": bytes(data)}
        if status == "ok" and (os.WIFSIGNALED(wait_status) or os.WEXITSTATUS(wait_status) != 0):
            header["status"] = "died"
            header["signal" if os.WIFSIGNALED(wait_status) else "exit"] = (
                os.WTERMSIG(wait_status) if os.WIFSIGNALED(wait_status) else os.WEXITSTATUS(wait_status)
            )
        return header

    def _child(self, job: Check | None, writer: int, deadline: float) -> None:
        """In the child: nothing but the own pipe is open when the learner's code starts."""
        try:
            os.closerange(3, writer)
            os.closerange(writer + 1, 1 << 16)
            cpu = int(deadline) + 1
            resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
            args = self.args
            start = time.monotonic()
            loaded = load_notebook(args.notebook, args.cell_timeout, args.check_timeout, definitions_only=True)
            if job is None:
                payload = json.dumps({"problems": loaded.problems, "seconds": time.monotonic() - start}).encode()
            else:
                payload = encode_outcome(loaded.outcome(job))
            write_all(writer, payload)
            os._exit(0)
        except BaseException:  # the grader's own code failed (the learner's errors are outcomes): say where
            traceback.print_exc()
            os._exit(70)


def _kill_all_but_me() -> None:
    """Kill every process in the jail's pid namespace but this one and bwrap's init (pid 1): what a child left
    running (a daemon in a new session, say) does not outlive its check."""
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) not in (1, os.getpid()):
            try:
                os.kill(int(entry), signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def worker_main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m autograder.sandbox", description=__doc__.split("\n\n")[0])
    parser.add_argument("notebook")
    parser.add_argument("check_ids", nargs="+", metavar="CHECK_ID")
    parser.add_argument("--fd", type=int, required=True, help="the pipe to report on")
    parser.add_argument("--cell-timeout", type=float, default=Limits.cell_timeout)
    parser.add_argument("--check-timeout", type=float, default=Limits.check_timeout)
    parser.add_argument("--load-deadline", type=float, default=60.0, help="seconds the definitions may take in all")
    parser.add_argument("--memory-gb", type=float, default=Limits.memory_gb)
    parser.add_argument("--processes", type=int, default=Limits.processes)
    parser.add_argument("--rlimits", action="store_true", help="no cgroup: limit memory and processes by rlimits")
    parser.add_argument("--jailed", action="store_true", help="in a pid namespace of its own")
    args = parser.parse_args(argv)
    _set_limits(args.memory_gb, args.processes, args.rlimits)
    ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)  # no ptrace, no /proc/<pid>/fd or mem for the children
    channel = args.fd
    checks = [_without_answers(get_check(check_id)) for check_id in args.check_ids]
    # loaded once here rather than in every child: what the notebook imports, and what torch imports on an
    # optimizer's first step (over a second each)
    import torch._dynamo  # noqa: F401

    preload_imports(args.notebook, args.cell_timeout)
    children = _Children(args)
    loaded = children.run(None, args.load_deadline)
    data = loaded.pop("data")
    try:
        report = json.loads(data) if loaded["status"] == "ok" else None
    except (ValueError, RecursionError):
        report = None
    if not isinstance(report, dict):  # the header says how the definitions child failed
        write_all(channel, frame({**loaded, "status": loaded["status"] if loaded["status"] != "ok" else "died"}, b""))
        return
    write_all(channel, frame(report, b""))
    seconds = min(float(report.get("seconds", 0)), args.load_deadline)
    deadline = args.check_timeout + 2 * seconds + 2
    for i, check in enumerate(checks):
        header = children.run(check, deadline)
        data = header.pop("data")
        write_all(channel, frame({**header, "last": i == len(checks) - 1}, data if header["status"] == "ok" else b""))


if __name__ == "__main__":
    worker_main()
