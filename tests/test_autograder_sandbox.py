"""The sandbox: the notebook's definitions run in jailed worker processes, the verdicts are reached in this one. A
probe that dies, hangs, floods or runs out of memory costs the check it was on, with a reason, and the other checks
are still graded. Each test starts one or two workers (≈ 3 s each: the worker imports torch). The attacks are in
tests/test_jail.py."""

from __future__ import annotations

import struct

import pytest
import torch
from notebooks.build import code, demo_notebook, use_demo_checks, write

from autograder.channel import MALFORMED, decode_outcome, encode_outcome, frame
from autograder.core import ProbeOutcome, get_check, judge
from autograder.loader import NotebookError
from autograder.sandbox import Limits, SandboxedNotebook, run_sandboxed

DEMO_IDS = ["demo.double", "demo.double.hidden", "demo.triple"]


@pytest.fixture(scope="module", autouse=True)
def demo_checks():
    use_demo_checks()


def sandboxed(tmp_path, cells, **limits):
    """Verdicts by check id, and the notebook's problems."""
    notebook = write(tmp_path / "99_demo" / "99_demo.ipynb", cells)
    report = run_sandboxed(notebook, DEMO_IDS, Limits(**{"cell_timeout": 2, "check_timeout": 2, **limits}))
    assert sorted(report.outcomes) == sorted(DEMO_IDS)
    return {i: judge(get_check(i), report.outcomes[i]) for i in DEMO_IDS}, report.problems


def test_a_correct_notebook_passes_and_its_cell_problems_are_reported(tmp_path):
    verdicts, problems = sandboxed(tmp_path, demo_notebook(extra=(code("oops = 1 / 0"),)))
    assert all(v.passed for v in verdicts.values())
    assert problems == ["cell 3 raised ZeroDivisionError: division by zero (line 1), its later definitions are missing"]


def test_a_worker_that_dies_costs_one_check_and_a_fresh_worker_grades_the_rest(tmp_path):
    double = "def double(x):\n    if x.numel() == 6:  # the visible probe only\n        os._exit(3)\n    return 2 * x"
    triple = "def triple(x):\n    import ctypes\n    return ctypes.string_at(0)  # a segmentation fault"
    verdicts, problems = sandboxed(tmp_path, demo_notebook(double, triple, extra=(code("import os"),)))
    assert verdicts["demo.double"].message == (
        "the notebook's process exited with code 3 while checking demo.double (os._exit or sys.exit?)"
    )
    assert verdicts["demo.double.hidden"].passed
    assert verdicts["demo.triple"].message == "the notebook's process crashed (SIGSEGV) while checking demo.triple"
    assert problems == []


def test_monkeypatching_in_the_notebook_cannot_change_a_verdict(tmp_path):
    patches = code(
        "import torch, autograder, autograder.core as core\n"
        "torch.allclose = lambda *a, **k: True\n"
        "torch.equal = lambda *a, **k: True\n"
        "core.judge = lambda check, outcome: core.Result(check.id, check.points, check.points, True, None, 'ok')\n"
        "autograder.core.CHECKS.clear()"
    )  # fmt: skip
    verdicts, _ = sandboxed(tmp_path, demo_notebook("def double(x):\n    return x", extra=(patches,)))
    assert not verdicts["demo.double"].passed and "max abs error" in verdicts["demo.double"].message
    assert verdicts["demo.triple"].passed


def test_a_probe_that_ignores_the_alarm_is_killed_at_the_time_limit(tmp_path):
    hang = (
        "def double(x):\n"
        "    if x.numel() == 6:  # the visible probe only\n"
        "        signal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
        "        while True:\n"
        "            pass\n"
        "    return 2 * x"
    )  # fmt: skip
    verdicts, _ = sandboxed(tmp_path, demo_notebook(double=hang, extra=(code("import signal"),)))
    message = verdicts["demo.double"].message
    assert message.startswith("checking demo.double did not finish in ") and message.endswith("an infinite loop?")
    assert verdicts["demo.double.hidden"].passed and verdicts["demo.triple"].passed  # in a fresh child


def test_a_flood_of_output_is_cut_off(tmp_path):
    flood = "def triple(x):\n    while True:\n        os.write(1, b'x' * 2**20)  # below Python's print, at the file"
    verdicts, problems = sandboxed(tmp_path, demo_notebook(triple=flood, extra=(code("import os"),)))
    assert verdicts["demo.triple"].message == "calling `triple` raised OSError: [Errno 27] File too large"
    assert verdicts["demo.double"].passed and problems == []  # at the 64 MB limit on any one file


def test_scratch_statements_do_not_run_and_a_definition_that_hangs_when_defined_is_stopped(tmp_path):
    scratch = code("import signal, time\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\ntime.sleep(3600)")
    verdicts, problems = sandboxed(tmp_path, demo_notebook(extra=(scratch,)))
    assert problems == [] and all(v.passed for v in verdicts.values())
    in_c = code("def slow(n=sum(range(10**12))):  # one call into C: the alarm cannot stop it\n    pass")
    verdicts, problems = sandboxed(tmp_path, demo_notebook(extra=(in_c,)))
    assert len(problems) == 1 and problems[0].startswith("running the notebook's cells did not finish in ")
    assert verdicts["demo.triple"].message == f"not checked: {problems[0]}"


def test_a_file_that_is_not_a_notebook_is_refused_before_any_worker_starts(tmp_path):
    path = tmp_path / "broken.ipynb"
    path.write_text("{")
    with pytest.raises(NotebookError):
        run_sandboxed(path, DEMO_IDS)


def test_sandboxed_notebook_runs_one_worker_for_the_whole_lesson(tmp_path):
    notebook = SandboxedNotebook(write(tmp_path / "n.ipynb", demo_notebook()), Limits())
    assert notebook.problems == []
    first = notebook.outcome(get_check("demo.triple"))
    report = notebook.report
    assert first.outputs is not None and sorted(report.outcomes) == sorted(DEMO_IDS)
    notebook.outcome(get_check("demo.double"))
    assert notebook.report is report


def test_the_channel_back_decodes_plain_tensors_and_nothing_else():
    outputs = {"a": torch.arange(6.0).reshape(2, 3), "b": torch.tensor([True, False]), "c": torch.zeros(0, 4)}
    decoded = decode_outcome(encode_outcome(ProbeOutcome(outputs=outputs)))
    assert decoded.error is None and all(torch.equal(decoded.outputs[k], v) for k, v in outputs.items())
    assert decode_outcome(encode_outcome(ProbeOutcome(error="\x1b[2Kscore 9/9"))).error == " [2Kscore 9/9"
    forged = [
        b"", b"\xff\xff\xff\xff",
        frame({"tensors": [{"name": "a", "dtype": "float32", "shape": [4], "size": 16}]}, b""),
        frame({"tensors": [{"name": "a", "dtype": "torch.float32", "shape": [2**31, 2**31], "size": 16}]}, bytes(16)),
        frame({"tensors": [{"name": "a", "dtype": "torch.complex64", "shape": [1], "size": 8}]}, bytes(8)),
        struct.pack(">I", 20000) + b"[" * 20000,  # nested deeper than json can recurse
    ]  # fmt: skip
    assert all(decode_outcome(data).error == MALFORMED for data in forged)
