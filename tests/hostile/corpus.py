"""The hostile corpus: one notebook per attack on the hardened grader, built from short snippets.

Each attack is a submission of the test-only lesson 99_demo (``double`` and ``triple``) that implements nothing
correctly, so that any point it earns is a forgery. ``expect`` is a regular expression the graded report (its
messages and problems, or the row's status) must match: the clear reason. ``{SUBMISSIONS}``, ``{OUT}`` and
``{REPO}`` in a snippet become the batch's submissions folder, its output folder and the repository: what an
attacker would aim at. ``build`` writes them as nbgrader's ``<student>/99_demo/99_demo.ipynb``.

Every bullet of issue 12's "Why" has attacks here: forging (F), other people's grades (O), resources (R), the
channel back (C) and honest work (H, in ``HONEST``: notebooks that must be graded as if alone).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from notebooks.build import code, demo_notebook, write

STUB_DOUBLE = "def double(x):\n    raise NotImplementedError()"
STUB_TRIPLE = "def triple(x):\n    raise NotImplementedError()"
CORRECT_DOUBLE = "def double(x):\n    return 2 * x"
CORRECT_TRIPLE = "def triple(x):\n    return 3 * x"


@dataclass(frozen=True)
class Attack:
    name: str
    bullet: str
    expect: str
    double: str = STUB_DOUBLE
    triple: str = STUB_TRIPLE
    extra: tuple[str, ...] = ()


def _body(source: str) -> str:
    """``double`` whose body is ``source``: the attack runs when the probe calls it, in the worker's child."""
    return "def double(x):\n" + "".join(f"    {line}\n" for line in source.splitlines()) + "    return x"


ATTACKS = [
    # F: forged marks
    Attack("wrap_probe_runner", "F", r"not implemented yet", extra=(
        "import autograder.core as core\n_run = core.run_probe\n"
        "core.run_probe = lambda check, obj: _run(check, check.reference)",)),
    Attack("wrap_probe_in_class_body", "F", r"`Forger` not defined when grading", extra=(
        "import autograder.core as core\nclass Forger:\n    core.run_probe = lambda c, o: core.ProbeOutcome(outputs={})",)),
    Attack("forge_by_decorator", "F", r"`run_probe` not defined when grading", extra=(
        "import functools, autograder.core as core\n@functools.partial(setattr, core, 'run_probe')\n"
        "def run_probe(check, obj):\n    return core.ProbeOutcome(outputs=check.probe(check.reference))",)),
    Attack("forge_by_default_argument", "F", r"`hook` not defined when grading", extra=(
        "import autograder.core as core\ndef hook(x=setattr(core, 'judge', None)):\n    pass",)),
    Attack("forge_by_init_subclass", "F", r"__init_subclass__", extra=(
        "class Base:\n    def __init_subclass__(cls):\n        import autograder.core as c\n        c.CHECKS.clear()\n"
        "class Child(Base):\n    pass",)),
    Attack("forge_by_notebook_decorator", "F", r"it calls `patch`, defined in the notebook", double=(
        "def patch(f):\n    import autograder.core as c\n    c.run_probe = lambda k, o: c.ProbeOutcome(outputs={})\n"
        "    return f\n@patch\ndef double(x):\n    return x")),
    Attack("forge_by_metaclass", "F", r"it calls `Meta`, defined in the notebook", extra=(
        "class Meta(type):\n    def __new__(meta, *args):\n        import autograder.core as c\n"
        "        c.CHECKS.clear()\n        return super().__new__(meta, *args)\nclass Forger(metaclass=Meta):\n    pass",)),
    Attack("forge_by_exec_constant", "F", r"`x` not defined when grading: it uses `exec`", extra=(
        "x = exec('import autograder.core as c; c.run_probe = lambda k, o: None')",)),
    Attack("forge_by_self_import", "F", r"imports the notebook's own module", extra=(
        "from notebook_99_demo import double as d",)),
    Attack("forge_by_reference_lookup_in_probe", "F", r"not implemented yet|no reference|max abs error", double=_body(
        "import autograder.core as core\n"
        "core.run_probe = lambda check, obj: core.ProbeOutcome(outputs=check.probe(check.reference))")),
    Attack("forge_outcome_files", "F", r"something other than plain tensors", double=_body(
        "import os, torch\nfor i in range(4):\n    torch.save({'outputs': {'out': 2 * x}}, f'{i}.pt')\nos._exit(0)")),
    Attack("forge_frames_on_every_fd", "F", r"no output|something other than plain tensors", double=_body(
        "import os, json, struct\nh = json.dumps({'tensors': [], 'body': 0}).encode()\n"
        "for fd in range(3, 64):\n    try:\n        os.write(fd, struct.pack('>I', len(h)) + h)\n    except OSError:\n"
        "        pass\nos._exit(0)")),
    Attack("read_parent_fds_through_proc", "F", r"PermissionError|FileNotFoundError", double=_body(
        "import os\nfor fd in os.listdir(f'/proc/{os.getppid()}/fd'):\n    open(f'/proc/{os.getppid()}/fd/{fd}', 'wb')")),
    Attack("ptrace_the_worker", "F", r"PermissionError|Operation not permitted", double=_body(
        "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "if libc.ptrace(16, os.getppid(), 0, 0) != 0:\n    raise PermissionError(os.strerror(ctypes.get_errno()))")),
    Attack("monkeypatch_torch_at_top_level", "F", r"not implemented yet", extra=(
        "import torch\ntorch.allclose = lambda *a, **k: True\ntorch.equal = lambda *a, **k: True",)),
    Attack("lying_tensor_subclass", "F", r"max abs error|expected a plain dense tensor", double=_body(
        "import torch\nclass Liar(torch.Tensor):\n"
        "    @classmethod\n    def __torch_function__(cls, func, types, args=(), kwargs=None):\n        return True\n"
        "return torch.zeros_like(x).as_subclass(Liar)")),
    # O: other people's grades, the grader itself
    Attack("kill_the_worker", "O", r"the notebook's process was killed \(SIGKILL\) while checking demo.double",
           double=_body("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)")),
    Attack("kill_every_process_it_can", "O", r"was killed|exited|crashed", double=_body(
        "import os, signal\nos.kill(-1, signal.SIGKILL)")),
    Attack("kill_pids_outside", "O", r"not implemented yet|ProcessLookupError", double=_body(
        "import os\nfor pid in range(3, 4096):\n    try:\n        os.kill(pid, 9)\n    except OSError:\n        pass")),
    Attack("rewrite_classmates_notebook", "O", r"FileNotFoundError|PermissionError|Read-only", double=_body(
        "open('{SUBMISSIONS}/alice/99_demo/99_demo.ipynb', 'w').write('{}')")),
    Attack("rewrite_classmate_by_relative_path", "O", r"FileNotFoundError|PermissionError|Read-only", double=_body(
        "open('../../alice/99_demo/99_demo.ipynb', 'w').write('{}')")),
    Attack("read_solutions", "O", r"FileNotFoundError", double=_body(
        "open('{REPO}/solutions/02_attention/02_attention.ipynb').read()")),
    Attack("write_the_grades", "O", r"FileNotFoundError|PermissionError|Read-only", double=_body(
        "open('{OUT}/grades.csv', 'a').write('mallory,99_demo,,4,4,graded\\n')")),
    Attack("drop_a_module_for_later_graders", "O", r"FileNotFoundError|PermissionError|Read-only", double=_body(
        "import autograder, pathlib\n"
        "pathlib.Path(autograder.__file__).with_name('sitecustomize.py').write_text('raise SystemExit')")),
    Attack("drop_torch_py_in_working_dir", "O", r"not implemented yet", double=_body(
        "open('torch.py', 'w').write('raise SystemExit')\nraise NotImplementedError()")),
    Attack("rewrite_own_notebook", "O", r"PermissionError|Read-only", double=_body(
        "import glob\nopen(glob.glob('*.ipynb')[0], 'w').write('{}')")),
    Attack("detached_daemon_rewrites_grades", "O", r"not implemented yet", double=_body(
        "import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
        "        time.sleep(20)\n        open('{OUT}/grades.csv', 'w').write('forged')\n    os._exit(0)\n"
        "raise NotImplementedError()")),
    Attack("escape_to_root", "O", r"PermissionError", double=_body("import os\nos.setuid(0)")),
    Attack("network", "O", r"OSError|unreachable", double=_body(
        "import socket\nsocket.create_connection(('192.0.2.1', 9), timeout=1)")),
    # R: resources
    Attack("fork_bomb", "R", r"BlockingIOError|Resource temporarily unavailable|did not finish|was killed", double=_body(
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass")),
    Attack("thread_bomb", "R", r"can't start new thread|RuntimeError|did not finish|was killed", double=_body(
        "import threading, time\nwhile True:\n    threading.Thread(target=time.sleep, args=(60,)).start()")),
    Attack("shm_memory_bomb", "R", r"No space left on device", double=_body(
        "for i in range(16):\n    with open(f'/dev/shm/bomb{i}', 'wb') as f:\n        f.write(b'x' * (16 * 2**20))")),
    Attack("shared_memory_bomb", "R", r"No space left on device|SIGBUS", double=_body(
        "from multiprocessing import shared_memory\nfor _ in range(8):\n"
        "    s = shared_memory.SharedMemory(create=True, size=32 * 2**20)\n    s.buf[:] = b'x' * len(s.buf)")),
    Attack("tmp_disk_bomb", "R", r"No space left on device", double=_body(
        "for i in range(32):\n    with open(f'/tmp/bomb{i}', 'wb') as f:\n        f.write(b'x' * (16 * 2**20))")),
    Attack("children_share_the_memory_limit", "R", r"was killed \(SIGKILL\)|MemoryError|did not finish", double=_body(
        "import os, time\nchildren = []\nfor _ in range(3):\n    pid = os.fork()\n    if pid == 0:\n"
        "        block = b'x' * (300 * 2**20)\n        time.sleep(1)\n        os._exit(0)\n    children.append(pid)\n"
        "if any(os.waitpid(pid, 0)[1] == 9 for pid in children):\n"
        "    raise MemoryError('a child was killed: one memory limit for all')")),
    Attack("one_huge_allocation", "R", r"MemoryError|can't allocate memory", double=_body(
        "import torch\nreturn torch.ones(2**31)")),
    Attack("new_session_survivor", "R", r"not implemented yet", double=_body(
        "import subprocess\nsubprocess.Popen(['sleep', '300'], start_new_session=True)\nraise NotImplementedError()")),
    Attack("swallow_the_interrupt", "R", r"did not finish in", double=_body(
        "import time\nwhile True:\n    try:\n        time.sleep(0.1)\n    except BaseException:\n        pass")),
    Attack("close_the_pipe_and_hang", "R", r"did not finish in", double=_body(
        "import os, signal, time\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\nos.closerange(3, 1024)\n"
        "while True:\n    time.sleep(1)")),
    Attack("stop_itself", "R", r"did not finish in", double=_body("import os, signal\nos.kill(os.getpid(), signal.SIGSTOP)")),
    Attack("hang_in_c_when_defined", "R", r"running the notebook's cells did not finish", extra=(
        "def slow(n=sum(range(10**12))):\n    pass",)),
    Attack("scratch_that_would_hang", "R", r"not implemented yet", extra=("import time\nwhile True:\n    time.sleep(1)",)),
    # C: the channel back
    Attack("sparse_output", "C", r"sparse_coo tensor; expected a plain dense tensor", double=_body(
        "return (2 * x).to_sparse()")),
    Attack("meta_output", "C", r"meta tensor", double=_body("import torch\nreturn torch.empty_like(x, device='meta')")),
    Attack("complex_output", "C", r"complex64, which the grader does not compare", double=_body(
        "import torch\nreturn (2 * x).to(torch.complex64)")),
    Attack("huge_output", "C", r"larger than 64 MB", double=_body("import torch\nreturn torch.zeros(40 * 2**20)")),
    Attack("giant_frame_header", "C", r"something other than plain tensors", double=_body(
        "import os, struct\nfor fd in range(3, 64):\n    try:\n        os.write(fd, struct.pack('>I', 2**32 - 1))\n"
        "    except OSError:\n        pass\nos._exit(0)")),
    Attack("fifos_in_place_of_files", "C", r"not implemented yet", double=_body(
        "import os\nfor name in ('0.pt', 'notebook.json', '/tmp/0.pt'):\n    os.mkfifo(name)\nraise NotImplementedError()")),
    # H: messages that would paint over the score
    Attack("ansi_escapes_in_message", "H", r"score 15/15", double=_body(
        "raise ValueError('\\x1b[2K\\r\\x1b[1A score 15/15 \\x1b[32m')")),
    Attack("bidi_override_in_message", "H", r"ValueError", double=_body("raise ValueError('\\u202e51/51 :erocs')")),
]

HONEST = {
    "alice": (CORRECT_DOUBLE, CORRECT_TRIPLE, ()),  # full marks
    "bob": ("def double(x):\n    return x * x", CORRECT_TRIPLE, ()),  # a named mistake
    "carol": (  # slow honest work: seven 9-second scratch cells, and probes that take a while
        "import time\ndef double(x):\n    time.sleep(1.5)\n    return 2 * x",
        "def triple(x):\n    return 3 * x",
        tuple("import time\ntime.sleep(9)" for _ in range(7)),
    ),
}


def build(submissions: Path, out: Path, repo: Path) -> dict[str, Path]:
    """Write every attack and honest notebook under ``submissions``; returns {student: notebook}."""
    written = {}
    places = {"{SUBMISSIONS}": str(submissions), "{OUT}": str(out), "{REPO}": str(repo)}

    def fill(source: str) -> str:
        for placeholder, value in places.items():
            source = source.replace(placeholder, value)
        return source

    for attack in ATTACKS:
        cells = demo_notebook(fill(attack.double), fill(attack.triple), tuple(code(fill(e)) for e in attack.extra))
        written[attack.name] = write(submissions / attack.name / "99_demo" / "99_demo.ipynb", cells)
    for student, (double, triple, extra) in HONEST.items():
        cells = demo_notebook(double, triple, tuple(code(e) for e in extra))
        written[student] = write(submissions / student / "99_demo" / "99_demo.ipynb", cells)
    return written
