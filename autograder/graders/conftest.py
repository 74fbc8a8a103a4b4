"""What the lesson graders (``test_<lesson>.py`` here) share: options, the ``learner`` and ``grade`` fixtures and the
``points`` marker.

    pytest autograder/graders/test_02_attention.py --notebook lessons/02_attention/02_attention.ipynb [--sandbox]

``python -m autograder grade`` runs the same file, and adds up the points. pytest registers these options only
when this folder (or a file in it) is named on the command line, as above: a conftest.py below the rootdir is not
read before the command line is parsed otherwise.

A test is one line — ``grade("attention.softmax")`` — under ``@pytest.mark.points(P)``, P being the check's points:
the verdict is ``core.judge``'s, and a failed test's message is the learner's diagnosis.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import pytest

from autograder.core import get_check, judge
from autograder.grading import LEARNER
from autograder.loader import LoadedNotebook, load_notebook
from autograder.sandbox import Limits, SandboxedNotebook

REPO = Path(__file__).resolve().parents[2]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("autograder", "grading a learner's notebook")
    group.addoption("--notebook", default=None,
                    help="the notebook to grade (default: the lesson's solutions notebook)")  # fmt: skip
    group.addoption("--sandbox", action="store_true", help="run the notebook's code in a separate process")
    group.addoption("--cell-timeout", type=float, default=Limits.cell_timeout, help="seconds per notebook cell")
    group.addoption("--check-timeout", type=float, default=Limits.check_timeout, help="seconds per probe")
    group.addoption("--notebook-timeout", type=float, default=Limits.timeout,
                    help="seconds the sandbox may take for the whole notebook (a safety net)")  # fmt: skip
    group.addoption("--unisolated", action="store_true", help="with --sandbox: a plain process, not a jail")
    group.addoption("--memory-gb", type=float, default=Limits.memory_gb, help="memory limit of a sandbox worker")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "points(p): what the test is worth; equal to its check's points")


@pytest.fixture(scope="module")
def learner(request: pytest.FixtureRequest) -> LoadedNotebook | SandboxedNotebook:
    """The learner's notebook: loaded in this process, or (``--sandbox``) probed from a worker on first use.
    One per graders file (a grading session runs one), so that without ``--notebook`` each lesson's graders
    grade that lesson's solutions notebook."""
    option = request.config.getoption
    notebook = option("notebook")
    if notebook is None:
        lesson = Path(request.module.__file__).stem.removeprefix("test_")
        notebook = REPO / "solutions" / lesson / f"{lesson}.ipynb"
    limits = Limits(option("notebook_timeout"), option("cell_timeout"), option("check_timeout"), option("memory_gb"))
    if option("sandbox"):
        learner = SandboxedNotebook(notebook, limits, isolated=not option("unisolated"))
    else:
        learner = load_notebook(notebook, limits.cell_timeout, limits.check_timeout)
    request.config.stash[LEARNER] = learner
    return learner


@pytest.fixture
def grade(learner: LoadedNotebook | SandboxedNotebook, request: pytest.FixtureRequest) -> Callable[[str], None]:
    """``grade(check_id)``: judge the learner on one check, record the verdict, fail with its diagnosis."""

    def grade_check(check_id: str) -> None:
        check = get_check(check_id)
        marker = request.node.get_closest_marker("points")
        if marker is None or marker.args[0] != check.points:
            raise pytest.UsageError(f"{request.node.name} must be marked points({check.points:g}), as {check_id} is")
        result = judge(check, learner.outcome(check))
        request.node.user_properties.append(("autograder_result", asdict(result)))
        if not result.passed:
            pytest.fail(result.line(), pytrace=False)

    return grade_check
