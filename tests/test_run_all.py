"""Run All goes through every lesson, as a learner meets it in Jupyter.

Each notebook runs top to bottom in a real kernel (``kernels.execute``: nbclient stops at the first cell that answers
with an error, as JupyterLab's Run All does), demo cells included, with WORKBOOK_QUICK=1, in a course folder that
holds the lessons side by side:

* a released lesson, untouched: each check cell prints one ``✗ <check> (0/N): not implemented yet`` (N, the points
  of the visible and the hidden check together: the cell runs both), the hidden
  cells print nothing, a demo that needs an unfinished function says so in one line (``autograder.notebook``), and
  no cell shows an error or a traceback;
* a solution: each check cell, visible and hidden, prints ✓ with full points, and no cell fails. The solutions of
  lessons 04-06 run in tests/test_carry_forward.py, next to blank earlier lessons; the others run here.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from kernels import (  # noqa: F401 (kernel_environment is a fixture)
    assert_every_check_passes, code_cells, execute, graded_cells, kernel_environment, printed,
)

from autograder.core import VERDICT_LINE, get_check

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted(path.name for path in (ROOT / "solutions").iterdir() if path.is_dir())
SOLUTIONS_RUN_IN_CARRY_FORWARD = {"04_training", "05_generation", "06_your_gpt"}
FINISH_FIRST = re.compile(r"finish `[\w.]+` above to see this")


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A learner's course folder as released: every lesson, nothing done."""
    course = tmp_path_factory.mktemp("released")
    shutil.copytree(ROOT / "lessons", course, dirs_exist_ok=True)
    return course


@pytest.fixture(scope="module")
def solved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    course = tmp_path_factory.mktemp("solved")
    shutil.copytree(ROOT / "solutions", course, dirs_exist_ok=True)
    return course


@pytest.mark.parametrize("lesson", LESSONS)
def test_run_all_goes_through_a_fresh_lesson(lesson: str, released: Path, kernel_environment) -> None:
    nb = execute(released / lesson / f"{lesson}.ipynb")
    cells = code_cells(nb)
    assert all(cell.execution_count is not None for cell in cells), "Run All stopped before the last cell"
    for number, cell in enumerate(cells, start=1):
        assert not [output for output in cell.outputs if output.output_type == "error"], f"code cell {number}"
        assert "Traceback" not in printed(cell), f"code cell {number}"
    graded = graded_cells(nb)
    for cell in graded:
        grade_id = cell.metadata.nbgrader.grade_id
        if grade_id.endswith("_hidden"):  # a comment only, in the release
            assert printed(cell) == "", grade_id
            continue
        check = get_check(re.fullmatch(r'check\("([\w.]+)", \w+\)', cell.source).group(1))
        exercise_points = check.points + get_check(check.id + ".hidden").points  # the cell runs both halves
        assert VERDICT_LINE.findall(printed(cell)) == [("✗", check.id, "0", f"{exercise_points:g}",
                                                        "not implemented yet")]
    others = "".join(printed(cell) for cell in cells if cell not in graded)
    assert not VERDICT_LINE.search(others)
    finish_lines = [line for line in others.splitlines() if line.startswith("finish ")]
    assert finish_lines and all(FINISH_FIRST.fullmatch(line) for line in finish_lines), finish_lines


@pytest.mark.parametrize("lesson", [lesson for lesson in LESSONS if lesson not in SOLUTIONS_RUN_IN_CARRY_FORWARD])
def test_run_all_goes_through_a_solution_and_every_check_passes(lesson: str, solved: Path, kernel_environment) -> None:
    nb = execute(solved / lesson / f"{lesson}.ipynb")
    assert_every_check_passes(nb)
    assert not any(FINISH_FIRST.search(printed(cell)) for cell in code_cells(nb))
