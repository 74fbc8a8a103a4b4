"""A jail for one grading worker: bubblewrap's namespaces, an unprivileged uid, and cgroup limits.

The worker that runs a learner's notebook (``autograder.sandbox``) is started inside::

    sh -c 'echo $$ > <cgroups>/cgroup.procs; exec "$@"'  bwrap ...  setpriv --reuid=65534 ...  python -m ...

* **bubblewrap** (``bwrap``, what Flatpak uses) gives the worker its own pid, mount, IPC, UTS, cgroup and network
  namespaces (no network at all: only a loopback device), ``--die-with-parent`` and ``--new-session``. Its file
  system is built from nothing: read-only binds of the system (``/usr``, ``/etc``), of the Python installation and
  of the two packages it needs (``autograder``, ``gpt_reference``) — never the repository around them, so not
  ``solutions/`` — and of the one notebook being graded; a private, size-capped, writable ``/tmp``, ``/dev/shm`` and
  notebook folder. Other submissions, the gradebook, the batch's output and working folders are not in it.
* **An unprivileged uid.** Run as root, bwrap keeps only CAP_SETUID/CAP_SETGID for ``setpriv``, which becomes uid
  and gid 65534 (``nobody``), drops every capability and sets no_new_privs before Python starts. (bwrap's own
  ``--uid`` needs a user namespace, whose uid maps back to root outside: the worker would own root's files.) Run as
  another user, bwrap makes a user namespace and the worker keeps that user's uid.
* **cgroups** (v1, where this process may create them: as root): a memory limit (``memory.limit_in_bytes`` and,
  with swap accounting, ``memsw``) for the worker and all it starts, shared memory and tmpfs pages included; a
  process limit (``pids.max``, threads count); one CPU (``cpu.cfs_quota_us``). Without cgroups the worker falls back
  to rlimits it sets on itself (``sandbox``): an address-space limit and a process count.

``Jail.close`` kills every process in the jail (the pid namespace ends with bwrap; the cgroup is emptied
explicitly too) and removes its cgroups. A grader killed before it could close one leaves only empty cgroups
behind, named after its pid: ``sweep_stale_cgroups`` (run by every new jail) removes those of dead owners.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

UNPRIVILEGED_ID = 65534  # nobody/nogroup
CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUP_PREFIX = "autograder-"
SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc")
SUBMISSION_DIR = "/submission"  # the notebook's folder inside the jail: its working directory


@dataclass(frozen=True)
class JailLimits:
    memory_bytes: int
    processes: int = 64
    tmp_bytes: int = 256 * 2**20  # /tmp and the notebook's folder, each
    shm_bytes: int = 64 * 2**20  # /dev/shm


def unavailable_reason() -> str | None:
    """Why workers cannot be jailed here, in one line; None when they can."""
    if sys.platform != "linux":
        return f"bubblewrap needs Linux namespaces, and this is {sys.platform}"
    if shutil.which("bwrap") is None:
        return "bubblewrap (bwrap) is not installed: apt-get install bubblewrap"
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        return "setpriv (util-linux) is needed to drop root's privileges in the jail"
    probe = subprocess.run(_bwrap_namespaces() + ["--ro-bind", "/", "/", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"bubblewrap cannot create namespaces here: {probe.stderr.strip()[:200]}"
    return None


def _bwrap_namespaces() -> list[str]:
    flags = ["bwrap", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
    if os.geteuid() != 0:
        flags.append("--unshare-user")
    return flags + ["--die-with-parent", "--new-session", "--hostname", "jail"]


def own_cgroup(controller: str) -> Path | None:
    """``/sys/fs/cgroup/<controller>/<this process's cgroup>`` on cgroup v1, or None."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            folder = CGROUP_ROOT / controller / path.lstrip("/")
            return folder if folder.is_dir() else None
    return None


def sweep_stale_cgroups() -> None:
    """Remove the cgroups of jails whose grader died before closing them (they are named after its pid)."""
    for controller in ("memory", "pids", "cpu"):
        base = own_cgroup(controller)
        for folder in base.glob(CGROUP_PREFIX + "*") if base else ():
            owner = int(folder.name.split("-")[1])
            if not Path(f"/proc/{owner}").exists():
                _empty_and_remove(folder)


def _pids_in(folder: Path) -> list[int]:
    try:
        return [int(pid) for pid in (folder / "cgroup.procs").read_text().split()]
    except OSError:
        return []


def _empty_and_remove(folder: Path, patience: float = 5.0) -> None:
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        for pid in _pids_in(folder):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            folder.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:  # EBUSY while the killed processes are reaped
            time.sleep(0.02)


class Jail:
    """One worker's jail. ``command(argv, notebook, readable)`` wraps a command line; ``close()`` kills what is
    left in the jail and removes its cgroups. Use as a context manager."""

    def __init__(self, limits: JailLimits) -> None:
        self.limits = limits
        self.cgroups: list[Path] = []
        if os.geteuid() == 0:
            sweep_stale_cgroups()
            self._make_cgroups()

    @property
    def has_cgroups(self) -> bool:
        return bool(self.cgroups)

    def _make_cgroups(self) -> None:
        name = f"{CGROUP_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
        settings = {
            "memory": {"memory.limit_in_bytes": self.limits.memory_bytes,
                       "memory.memsw.limit_in_bytes": self.limits.memory_bytes},
            "pids": {"pids.max": self.limits.processes},
            "cpu": {"cpu.cfs_period_us": 100_000, "cpu.cfs_quota_us": 100_000},
        }  # fmt: skip
        for controller, values in settings.items():
            base = own_cgroup(controller)
            if base is None or not os.access(base, os.W_OK):
                if controller == "cpu":
                    continue  # a nicety; memory and pids are the limits that matter
                self.close()
                return
            folder = base / name
            folder.mkdir()
            self.cgroups.append(folder)
            for key, value in values.items():
                if (folder / key).exists():  # memsw exists only with swap accounting
                    (folder / key).write_text(str(value))

    def command(self, argv: list[str], notebook: Path, readable: list[Path]) -> list[str]:
        """``argv`` run in the jail, seeing the system, ``readable`` (read-only) and the notebook at
        ``/submission/<its name>`` (read-only, in a writable folder that is its working directory)."""
        limits = self.limits
        args = _bwrap_namespaces() + ["--proc", "/proc", "--dev", "/dev"]
        for path in SYSTEM_PATHS:
            if os.path.islink(path):
                args += ["--symlink", os.readlink(path), path]
            elif os.path.isdir(path):
                args += ["--ro-bind", path, path]
        # the private, writable folders first: a readable path inside one (a checkout or a venv under /tmp) is then
        # bound on top of it, not hidden by it
        writable = (("/tmp", limits.tmp_bytes), ("/dev/shm", limits.shm_bytes), (SUBMISSION_DIR, limits.tmp_bytes))
        for folder, size in writable:
            args += ["--perms", "1777", "--size", str(size), "--tmpfs", folder]
        made, bound = {Path("/"), *(Path(folder) for folder, _ in writable)}, set()
        for path in sorted({Path(p).resolve() for p in readable if Path(p).exists()}):
            if bound.intersection(path.parents) or path.parts[1:2] and f"/{path.parts[1]}" in SYSTEM_PATHS:
                continue  # already visible through a folder bound before it
            for parent in reversed(path.parents):
                if parent not in made:
                    args += ["--perms", "0755", "--dir", str(parent)]  # bwrap would make them 0700 as root
                    made.add(parent)
            args += ["--ro-bind", str(path), str(path)]
            made.add(path)
            bound.add(path)
        inside = f"{SUBMISSION_DIR}/{notebook.name}"
        args += ["--ro-bind", str(notebook), inside, "--chdir", SUBMISSION_DIR]
        if os.geteuid() == 0:
            args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--", "setpriv",
                     f"--reuid={UNPRIVILEGED_ID}", f"--regid={UNPRIVILEGED_ID}", "--clear-groups",
                     "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs"]  # fmt: skip
        else:
            args.append("--")
        command = args + argv
        if self.cgroups:
            enter = " && ".join(f"echo $$ > {shlex.quote(str(folder / 'cgroup.procs'))}" for folder in self.cgroups)
            command = ["/bin/sh", "-c", enter + ' && exec "$@"', "sh", *command]
        return command

    def close(self) -> None:
        """Kill every process left in the jail and remove its cgroups."""
        for folder in self.cgroups:
            _empty_and_remove(folder)
        self.cgroups = []

    def __enter__(self) -> Jail:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
