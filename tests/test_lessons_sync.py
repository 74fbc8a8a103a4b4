"""lessons/ is what `make release` generates from solutions/, and the graded cells agree with the check registry.

Learner notebooks are generated, never edited by hand: regenerating them into a temporary folder must give the
committed files byte for byte (nbgrader's release is deterministic). A failure here means "run `make release`"
(or, for the registry tests, that a notebook and autograder/checks disagree about ids or points).
"""

from __future__ import annotations

import filecmp
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from autograder.core import checks_for, get_check

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted(path.name for path in (ROOT / "solutions").glob("*/") if path.is_dir())
NBGRADER = str(Path(sys.executable).with_name("nbgrader"))
STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
CHECK_CALL = re.compile(r'\bcheck\("([\w.]+)", (\w+)\)')
HIDDEN_BEGIN, HIDDEN_END = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"


def _notebook(folder: str, lesson: str) -> nbformat.NotebookNode:
    return nbformat.read(ROOT / folder / lesson / f"{lesson}.ipynb", as_version=4)


def _nbgrader(cell: nbformat.NotebookNode) -> dict:
    return cell.metadata.get("nbgrader", {})


def _graded(cell: nbformat.NotebookNode) -> bool:
    return bool(_nbgrader(cell).get("grade")) and not _nbgrader(cell).get("solution")


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh release of every lesson, made as `make release` makes it but into a temporary folder."""
    out = tmp_path_factory.mktemp("release")
    subprocess.run([NBGRADER, "generate_assignment", "*", "--no-db", "--log-level=ERROR",
                    f"--CourseDirectory.release_directory={out}"], cwd=ROOT, check=True)
    return out


def test_there_are_lessons() -> None:
    assert "02_attention" in LESSONS


@pytest.mark.parametrize("lesson", LESSONS)
def test_lessons_are_what_make_release_generates(lesson: str, released: Path) -> None:
    fresh, committed = released / lesson, ROOT / "lessons" / lesson
    assert committed.is_dir(), f"lessons/{lesson}/ is missing: run `make release`"
    comparison = filecmp.dircmp(fresh, committed, ignore=[".ipynb_checkpoints", "__pycache__", ".hints.json"])
    stale = comparison.left_only + comparison.right_only + comparison.diff_files + comparison.funny_files
    assert not stale, f"lessons/{lesson}/ differs from solutions/{lesson}/ in {stale}: run `make release`"
    for name in comparison.common_files:  # dircmp compares sizes and dates only; compare contents
        assert (fresh / name).read_bytes() == (committed / name).read_bytes(), f"run `make release` ({name})"


@pytest.mark.parametrize("folder", ["solutions", "lessons"])
@pytest.mark.parametrize("lesson", LESSONS)
def test_notebooks_are_committed_without_outputs(lesson: str, folder: str) -> None:
    for index, cell in enumerate(_notebook(folder, lesson).cells):
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{folder}/{lesson} cell {index + 1}"


@pytest.mark.parametrize("lesson", LESSONS)
def test_learners_get_stubs_and_the_same_locked_graded_cells(lesson: str) -> None:
    source, release = _notebook("solutions", lesson), _notebook("lessons", lesson)
    released_cells = {_nbgrader(cell).get("grade_id"): cell for cell in release.cells}
    for cell in source.cells:
        grade_id = _nbgrader(cell).get("grade_id")
        if grade_id is None:
            continue
        mine = released_cells[grade_id]
        assert "### BEGIN SOLUTION" not in mine.source and HIDDEN_BEGIN not in mine.source
        if _nbgrader(cell).get("solution"):  # one stub, at the region's indentation, for every solution region
            dedented = "\n".join(line.strip() for line in mine.source.splitlines())
            assert dedented.count(STUB) == cell.source.count("### BEGIN SOLUTION") > 0, grade_id
        if _graded(cell):
            assert _nbgrader(mine)["locked"] and _nbgrader(mine)["points"] == _nbgrader(cell)["points"], grade_id
            if HIDDEN_BEGIN in cell.source:  # what is left is the note that says what the empty cell is for
                assert mine.source and all(map(_plain_comment, mine.source.splitlines())), grade_id
            else:  # the learner's check cell is the graded cell, as it is
                assert mine.source == cell.source, grade_id
    assert [_nbgrader(c).get("grade_id") for c in source.cells] == [_nbgrader(c).get("grade_id") for c in release.cells]


@pytest.mark.parametrize("lesson", LESSONS)
def test_grade_ids_are_unique(lesson: str) -> None:
    ids = [_nbgrader(cell)["grade_id"] for cell in _notebook("solutions", lesson).cells if _nbgrader(cell)]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


def _plain_comment(line: str) -> bool:
    return line.startswith("#") and not line.startswith("###")


@pytest.mark.parametrize("lesson", LESSONS)
def test_graded_cells_grade_every_registered_check_for_its_points(lesson: str) -> None:
    graded = []
    for cell in _notebook("solutions", lesson).cells:
        if not _graded(cell):
            continue
        # a plain comment (say, the note above a hidden block that stays visible in the release) is allowed
        body = "\n".join(line for line in cell.source.splitlines() if not _plain_comment(line)).strip()
        hidden = body.startswith(HIDDEN_BEGIN)
        if hidden:
            assert body.endswith(HIDDEN_END), f"{_nbgrader(cell)['grade_id']}: hidden tests must fill the cell"
            body = body[len(HIDDEN_BEGIN):-len(HIDDEN_END)].strip()
        match = CHECK_CALL.fullmatch(body)
        assert match, f"{_nbgrader(cell)['grade_id']}: a graded cell holds one check(...) call"
        check_id, target = match.groups()
        check = get_check(check_id)
        assert check.lesson == lesson and check.target == target and check.hidden == hidden, check_id
        assert float(_nbgrader(cell)["points"]) == check.points, f"{check_id}: cell and check disagree on points"
        graded.append(check_id)
    assert sorted(graded) == sorted(check.id for check in checks_for(lesson)), "each check graded exactly once"


@pytest.mark.parametrize("lesson", LESSONS)
def test_checks_run_only_in_graded_cells(lesson: str) -> None:
    """Each exercise has two cells of grading, its check cell and its hidden one: no other cell calls a check."""
    for index, cell in enumerate(_notebook("solutions", lesson).cells):
        if cell.cell_type == "code" and not _graded(cell):
            assert not CHECK_CALL.search(cell.source), f"cell {index + 1} calls check(...) but is not graded"
