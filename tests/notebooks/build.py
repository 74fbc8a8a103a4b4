"""Build small notebooks for the autograder's tests, in the lessons' conventions, and make the test-only lesson
99_demo (``demo_checks.py``, ``graders/test_99_demo.py``) visible to this process and to the processes it starts."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
DEMO_CHECKS = HERE / "demo_checks.py"
DEMO_GRADERS = HERE / "graders"

SETUP = "import torch\nfrom autograder import check"
DOUBLE = "def double(x):\n    return 2 * x"
TRIPLE = "def triple(x):\n    return 3 * x"


def use_demo_checks() -> None:
    """Register the demo checks here and, through the environment, in every worker or grader started later."""
    os.environ["AUTOGRADER_CHECKS"] = str(DEMO_CHECKS)
    from autograder.core import get_check

    get_check("demo.double")


def answer(source: str, grade_id: str) -> nbformat.NotebookNode:
    """An nbgrader autograded answer cell."""
    nbgrader = {"grade": False, "solution": True, "locked": False, "grade_id": grade_id, "schema_version": 3}
    return new_code_cell(source, metadata={"nbgrader": nbgrader})


def graded(source: str, grade_id: str, points: float) -> nbformat.NotebookNode:
    """An nbgrader autograder-tests cell."""
    nbgrader = {"grade": True, "solution": False, "locked": True, "points": points, "grade_id": grade_id,
                "schema_version": 3}  # fmt: skip
    return new_code_cell(source, metadata={"nbgrader": nbgrader})


def tagged(source: str, tag: str) -> nbformat.NotebookNode:
    return new_code_cell(source, metadata={"tags": [tag]})


def code(source: str) -> nbformat.NotebookNode:
    return new_code_cell(source)


def markdown(source: str) -> nbformat.NotebookNode:
    return new_markdown_cell(source)


def demo_notebook(double: str = DOUBLE, triple: str = TRIPLE, extra: tuple = ()) -> list[nbformat.NotebookNode]:
    """The 99_demo lesson laid out as a real lesson: setup, answers, graded check cells, a demo cell;
    ``extra`` cells go after the setup cell."""
    return [
        markdown("# Demo lesson"),
        code(SETUP),
        *extra,
        answer(double, "double"),
        graded('check("demo.double", double)', "test_double", 2),
        graded(
            '### BEGIN HIDDEN TESTS\ncheck("demo.double.hidden", double)\n### END HIDDEN TESTS',
            "test_double_hidden",
            1,
        ),
        answer(triple, "triple"),
        graded('check("demo.triple", triple)', "test_triple", 1),
        tagged("raise RuntimeError('demo cells never run when grading')", "demo"),
    ]


def write(path: Path, cells: list[nbformat.NotebookNode]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(new_notebook(cells=cells), str(path))
    return path
