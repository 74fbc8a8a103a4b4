"""The instructor's nbgrader round trip, end to end, in a throwaway course folder.

The course is a copy of nbgrader_config.py and solutions/: the config roots the course at its own folder, so the
repository's lessons/ and gradebook are never touched. Learners are simulated by writing notebooks into
submitted/<student>/02_attention/, built from the released lesson the way a learner would fill it in:

* correct: every exercise cell filled with the reference solution: full marks (hidden tests restored by nbgrader);
* wrong:   average_past divides by T (a mistake in the catalogue): loses exactly that check's visible and hidden
           points, and the graded cell's output names the mistake;
* loop:    average_past never advances its loop: the per-cell timeout interrupts each cell that calls it, grading
           goes on, and only average_past's points are lost;
* stub:    the released lesson as it is: 0, and graded without a crash;
* pasted:  correct, with an exercise cell copied and pasted (a duplicated grade_id), repaired by autograder.repair
           before grading: full marks.

Each submission costs about 3 s (2 s of it a kernel with torch) and the loop student three timeouts more; with
nbgrader's start-up for each command the file takes about a minute. One lesson is exercised: the machinery is the
same for every lesson.
"""

from __future__ import annotations

import copy
import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from autograder.core import checks_for, get_check
from autograder.repair import repair_duplicate_grade_ids
from autograder.report import read_autograded, summarize

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
LESSON = "02_attention"
BIN = Path(sys.executable).parent
# nbgrader runs `alembic` by name when it creates a gradebook: the environment's bin folder must be on PATH.
ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
# Per-cell limit for the graded run, in seconds. The solutions' slowest cell is the setup cell (imports torch and
# matplotlib, ≈ 1.6 s on a 2-core CPU); graded cells take under 0.3 s. Every cell that calls the looping function
# costs this much.
CELL_TIMEOUT = 6

AVERAGE_DIVIDED_BY_T = '''def average_past(x: torch.Tensor) -> torch.Tensor:
    T = x.size(1)
    return torch.ones(T, T).tril() / T @ x
'''
AVERAGE_LOOPS_FOREVER = '''def average_past(x: torch.Tensor) -> torch.Tensor:
    out = torch.zeros_like(x)
    t = 0
    while t < x.size(1):
        out[:, t] = x[:, : t + 1].mean(dim=1)  # t is never advanced
    return out
'''


def _run(course: Path, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([BIN / "nbgrader", *args], cwd=course, env=ENV, capture_output=True, text=True)
    assert result.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{result.stdout}\n{result.stderr[-4000:]}"
    return result


def _grade_id(cell: nbformat.NotebookNode) -> str | None:
    return cell.metadata.get("nbgrader", {}).get("grade_id")


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A course folder with the lesson released and registered in its own gradebook (graded cells, hidden tests)."""
    root = tmp_path_factory.mktemp("course")
    shutil.copy(ROOT / "nbgrader_config.py", root)
    shutil.copytree(ROOT / "solutions" / LESSON, root / "solutions" / LESSON)
    _run(root, "generate_assignment", LESSON, "--log-level=WARN")
    return root


def _without_markers(source: str) -> str:
    return "\n".join(line for line in source.splitlines()
                     if line.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION"))


def _submission(course: Path, lesson: str = LESSON, **sources: str) -> nbformat.NotebookNode:
    """The released lesson with every exercise cell filled in from the solutions, then ``sources`` by grade_id."""
    solved = {_grade_id(cell): cell.source
              for cell in nbformat.read(course / "solutions" / lesson / f"{lesson}.ipynb", as_version=4).cells
              if cell.metadata.get("nbgrader", {}).get("solution")}
    nb = nbformat.read(course / "lessons" / lesson / f"{lesson}.ipynb", as_version=4)
    for cell in nb.cells:
        grade_id = _grade_id(cell)
        if grade_id in solved:
            cell.source = sources.get(grade_id, _without_markers(solved[grade_id]))
    return nb


def _submit(course: Path, student: str, nb: nbformat.NotebookNode, lesson: str = LESSON) -> Path:
    path = course / "submitted" / student / lesson / f"{lesson}.ipynb"
    path.parent.mkdir(parents=True)
    nbformat.write(nb, path)
    return path


@pytest.fixture(scope="module")
def scores(course: Path) -> dict[str, tuple[float, float]]:
    """Submit, repair, autograde and export; each student's (score, max_score) from nbgrader's CSV."""
    _submit(course, "correct", _submission(course))
    _submit(course, "wrong", _submission(course, solution_average_past=AVERAGE_DIVIDED_BY_T))
    _submit(course, "loop", _submission(course, solution_average_past=AVERAGE_LOOPS_FOREVER))
    _submit(course, "stub", nbformat.read(course / "lessons" / LESSON / f"{LESSON}.ipynb", as_version=4))
    pasted = _submission(course)
    index = next(i for i, cell in enumerate(pasted.cells) if _grade_id(cell) == "solution_softmax")
    copied = copy.deepcopy(pasted.cells[index])
    copied.id = "pasted-softmax"
    pasted.cells.insert(index + 1, copied)
    assert len(repair_duplicate_grade_ids(_submit(course, "pasted", pasted))) == 1

    _run(course, "autograde", LESSON, f"--Execute.timeout={CELL_TIMEOUT}", "--log-level=WARN")
    _run(course, "export", f"--to={course / 'grades.csv'}", "--log-level=WARN")
    with open(course / "grades.csv", newline="") as f:
        return {row["student_id"]: (float(row["score"]), float(row["max_score"])) for row in csv.DictReader(f)}


def _max_points() -> float:
    return sum(check.points for check in checks_for(LESSON))


def _average_past_points() -> float:
    return get_check("attention.average_past").points + get_check("attention.average_past.hidden").points


def test_the_solutions_pass_nbgrader_validate(course: Path) -> None:
    result = _run(course, "validate", f"solutions/{LESSON}/{LESSON}.ipynb")
    assert "Success! Your notebook passes all the tests." in result.stdout, result.stdout[-3000:]


def test_the_reference_solutions_get_full_marks(scores: dict[str, tuple[float, float]]) -> None:
    assert scores["correct"] == (_max_points(), _max_points())


def test_one_wrong_function_loses_exactly_its_checks_points(course: Path, scores) -> None:
    assert scores["wrong"][0] == _max_points() - _average_past_points()
    graded = nbformat.read(course / "autograded" / "wrong" / LESSON / f"{LESSON}.ipynb", as_version=4)
    cells = {_grade_id(cell): cell for cell in graded.cells}
    mistake = "divides by T instead of t+1"
    assert mistake in [m.name for m in get_check("attention.average_past").mistakes]
    for grade_id, check_id in [("test_average_past", "attention.average_past"),
                               ("test_average_past_hidden", "attention.average_past.hidden")]:  # fmt: skip
        # the check cell, which only prints for the learner, raises while graded: both cells score 0
        errors = [output["evalue"] for output in cells[grade_id].outputs if output.output_type == "error"]
        assert len(errors) == 1 and errors[0].startswith(f"✗ {check_id} (0/") and mistake in errors[0], errors


def test_a_hanging_function_is_interrupted_and_costs_only_its_points(scores) -> None:
    assert scores["loop"][0] == _max_points() - _average_past_points()


def test_the_unchanged_lesson_scores_zero(course: Path, scores) -> None:
    assert scores["stub"] == (0.0, _max_points())


def test_a_repaired_copy_paste_submission_gets_full_marks(scores) -> None:
    assert scores["pasted"] == (_max_points(), _max_points())


def test_feedback_leaves_out_hidden_tests(course: Path, scores) -> None:
    _run(course, "generate_feedback", LESSON, "--student=wrong", "--log-level=WARN")
    graded = (course / "autograded" / "wrong" / LESSON / f"{LESSON}.ipynb").read_text()
    html = (course / "feedback" / "wrong" / LESSON / f"{LESSON}.html").read_text()
    assert "BEGIN HIDDEN TESTS" in graded and "BEGIN HIDDEN TESTS" not in html
    assert "divides by T instead of t+1" in html


def test_the_class_report_reads_the_autograded_notebooks(course: Path, scores) -> None:
    """The class report after nbgrader: each check's verdict and named mistake read back from the graded cells."""
    submissions = {s.student: s for s in read_autograded(course / "autograded")}
    assert {student: s.score for student, s in submissions.items()} == {k: v[0] for k, v in scores.items()}
    mistakes = {r.id: r.mistake for r in submissions["wrong"].checks if not r.passed}
    assert mistakes == {"attention.average_past": "divides by T instead of t+1",
                        "attention.average_past.hidden": "divides by T instead of t+1"}
    assert all(r.message == "not implemented yet" for r in submissions["stub"].checks)
    (lesson,) = summarize(list(submissions.values()))["lessons"]
    assert lesson["mistakes"] == [{"check": "attention.average_past", "name": "divides by T instead of t+1",
                                   "learners": 1, "share": 0.2}]
    assert {u["check"] for u in lesson["unimplemented"]} == {c.id for c in checks_for(LESSON)}


OTHER_LESSONS = sorted(p.name for p in (ROOT / "solutions").iterdir() if p.is_dir() and p.name != LESSON)


@pytest.mark.parametrize("lesson", OTHER_LESSONS)
def test_every_other_lesson_goes_through_nbgrader(lesson: str, tmp_path: Path) -> None:
    """The short round for the other lessons: release, autograde the solutions and the stub, export."""
    shutil.copy(ROOT / "nbgrader_config.py", tmp_path)
    shutil.copytree(ROOT / "solutions" / lesson, tmp_path / "solutions" / lesson)
    _run(tmp_path, "generate_assignment", lesson, "--log-level=WARN")
    _submit(tmp_path, "correct", _submission(tmp_path, lesson), lesson)
    _submit(tmp_path, "stub", nbformat.read(tmp_path / "lessons" / lesson / f"{lesson}.ipynb", as_version=4), lesson)
    _run(tmp_path, "autograde", lesson, f"--Execute.timeout={CELL_TIMEOUT}", "--log-level=WARN")
    _run(tmp_path, "export", f"--to={tmp_path / 'grades.csv'}", "--log-level=WARN")
    with open(tmp_path / "grades.csv", newline="") as f:
        rows = {row["student_id"]: (float(row["score"]), float(row["max_score"])) for row in csv.DictReader(f)}
    max_points = sum(check.points for check in checks_for(lesson))
    assert rows == {"correct": (max_points, max_points), "stub": (0.0, max_points)}
