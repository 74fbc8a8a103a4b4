"""The hardened grader's grades in nbgrader's gradebook (``batch --gradebook``, ``import``) and each learner's
feedback page, in a throwaway course of the test-only lesson 99_demo under a late-penalty configuration.

Three learners are graded once, by the real command in the course folder (about 25 s, the jail included): alice is
right and on time, bob's ``double`` raises with hostile text in its message and he is late, carol's notebook is not
a notebook. nbgrader's own ``export`` is the judge of what the Formgrader shows. Tests that import again work on a
copy of the graded course (the course root is its nbgrader_config.py's folder, so a copy is a course of its own).
"""

from __future__ import annotations

import csv
import datetime
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook
from notebooks.build import DEMO_GRADERS, demo_notebook, use_demo_checks, write
from test_nbgrader_workflow import ENV, ROOT, _run

from autograder.__main__ import main
from autograder.core import checks_for
from autograder.gradebook import _checks_run_by

pytestmark = pytest.mark.slow

LESSON = "99_demo"
DUE = datetime.datetime(2026, 6, 1)
HOSTILE = "<script>alert('pwned')</script>"
CELL_OF = {"demo.double": "test_double", "demo.double.hidden": "test_double_hidden", "demo.triple": "test_triple"}
GRADEBOOK_TABLES = ["student", "submitted_assignment", "submitted_notebook", "grade", "comment"]


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A course with 99_demo registered (due on DUE, late work scored 0), three submissions, graded and imported."""
    use_demo_checks()
    root = tmp_path_factory.mktemp("course")
    config = (ROOT / "nbgrader_config.py").read_text() + '\nc.LateSubmissionPlugin.penalty_method = "zero"\n'
    (root / "nbgrader_config.py").write_text(config)
    write(root / "solutions" / LESSON / f"{LESSON}.ipynb", demo_notebook())
    _run(root, "generate_assignment", LESSON, "--log-level=WARN")
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", "") as gradebook:
        gradebook.update_or_create_assignment(LESSON, duedate=DUE)
    submitted = root / "submitted"
    write(submitted / "alice" / LESSON / f"{LESSON}.ipynb", demo_notebook())
    (submitted / "alice" / LESSON / "timestamp.txt").write_text("2026-05-31 23:00:00 UTC")
    bob = f"def double(x):\n    raise ValueError({HOSTILE!r})"
    write(submitted / "bob" / LESSON / f"{LESSON}.ipynb", demo_notebook(double=bob))
    (submitted / "bob" / LESSON / "timestamp.txt").write_text("2026-06-02 10:00:00 UTC")
    (submitted / "carol" / LESSON).mkdir(parents=True)
    (submitted / "carol" / LESSON / f"{LESSON}.ipynb").write_text("{ not json")
    command = [sys.executable, "-m", "autograder", "batch", "submitted", "--out", "grades/grades.csv", "--gradebook",
               "--jobs=2", "--cell-timeout=2", "--check-timeout=2", f"--graders={DEMO_GRADERS}"]  # fmt: skip
    environment = {**os.environ, "PATH": ENV["PATH"]}  # nbgrader's alembic, and the demo checks
    finished = subprocess.run(command, cwd=root, env=environment, capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert "imported 3 notebooks" in finished.stdout and "feedback for 3 notebooks" in finished.stdout
    return root


@pytest.fixture(scope="module")
def exported(course: Path) -> dict[str, dict]:
    """What the Formgrader shows, as nbgrader's export writes it: a row per student."""
    return _export(course)


def _batch_rows(course: Path) -> dict[str, dict]:
    with open(course / "grades" / "grades.csv", newline="") as f:
        return {row["student"]: row for row in csv.DictReader(f)}


def _report(course: Path, student: str) -> dict:
    return json.loads((course / "grades" / "grades_reports" / _batch_rows(course)[student]["report"]).read_text())


def _export(course: Path) -> dict[str, dict]:
    _run(course, "export", f"--to={course / 'export.csv'}", "--log-level=ERROR")
    with open(course / "export.csv", newline="") as f:
        return {row["student_id"]: row for row in csv.DictReader(f)}


def _submitted_notebook(course: Path, student: str):
    """(flagged, {cell: (auto_score, manual_score, needs_manual_grade)}, {cell: auto_comment}) from the gradebook."""
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "") as gradebook:
        notebook = gradebook.find_submission_notebook(LESSON, LESSON, student)
        grades = {g.name: (g.auto_score, g.manual_score, g.needs_manual_grade) for g in notebook.grades}
        return notebook.flagged, grades, {c.name: c.auto_comment for c in notebook.comments}


def _gradebook_rows(course: Path) -> dict[str, list]:
    with sqlite3.connect(course / "gradebook.db") as db:
        return {table: sorted(db.execute(f"SELECT * FROM {table}").fetchall(), key=repr) for table in GRADEBOOK_TABLES}


def _copy(course: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(course, tmp_path / "course"))


def test_export_agrees_with_the_batch_csv(course: Path, exported: dict[str, dict]) -> None:
    batch = _batch_rows(course)
    assert sorted(exported) == sorted(batch) == ["alice", "bob", "carol"]
    for student, row in batch.items():
        assert float(exported[student]["raw_score"]) == float(row["score"] or 0), student
        assert float(exported[student]["max_score"]) == 4.0
    assert float(exported["alice"]["score"]) == 4.0 and float(exported["alice"]["late_submission_penalty"]) == 0


def test_each_check_lands_in_the_graded_cell_that_runs_it(course: Path) -> None:
    for student in ("alice", "bob"):
        _, grades, _ = _submitted_notebook(course, student)
        checks = _report(course, student)["checks"]
        assert grades == {CELL_OF[check["id"]]: (check["points"], None, False) for check in checks}, student
    assert _submitted_notebook(course, "bob")[1]["test_triple"][0] == 1.0  # bob's triple is right


def test_a_late_submission_gets_the_configured_penalty(exported: dict[str, dict]) -> None:
    bob = exported["bob"]
    assert bob["timestamp"].startswith("2026-06-02 10:00:00")
    assert (float(bob["raw_score"]), float(bob["late_submission_penalty"]), float(bob["score"])) == (1.0, 1.0, 0.0)


def test_an_ungraded_notebook_scores_0_and_says_why_in_the_formgrader(course: Path, exported) -> None:
    flagged, grades, comments = _submitted_notebook(course, "carol")
    assert flagged and grades == {cell: (0.0, None, False) for cell in CELL_OF.values()}
    assert set(comments) == {"double", "triple"}
    assert all(c.startswith("The hardened grader could not grade") and "not valid JSON" in c for c in comments.values())
    assert float(exported["carol"]["score"]) == 0


class _Page(HTMLParser):
    """The tags and the text of a feedback page, as a browser reads them."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs) -> None:
        self.tags.append(tag)

    def handle_data(self, data) -> None:
        self.text.append(data)


def test_feedback_has_every_check_and_shows_hostile_text_as_text(course: Path) -> None:
    feedback = course / "feedback"
    assert sorted(p.relative_to(feedback).as_posix() for p in feedback.rglob("*.html")) == [
        f"{student}/{LESSON}/{LESSON}.html" for student in ("alice", "bob", "carol")
    ]
    page = _Page((feedback / "bob" / LESSON / f"{LESSON}.html").read_text())
    text = "".join(page.text)
    assert "script" not in page.tags and HOSTILE in text  # shown, not run
    for check in _report(course, "bob")["checks"]:
        verdict = "✓" if check["passed"] else "✗"
        assert f"{verdict}{check['id']}{check['points']:g} / {check['max_points']:g}{check['message']}" in text
    assert "Score: 1 / 4" in text
    assert "BEGIN HIDDEN TESTS" not in text and "linspace" not in text  # no hidden test, no probe input
    carol = "".join(_Page((feedback / "carol" / LESSON / f"{LESSON}.html").read_text()).text)
    assert "could not be graded" in carol and "not valid JSON" in carol and "Score: 0" in carol
    assert f"{LESSON}.ipynb is not a notebook" in carol and str(course) not in carol  # no path of the grader's


def test_importing_again_changes_nothing(course: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    copy = _copy(course, tmp_path)
    before = _gradebook_rows(copy), {p: p.read_bytes() for p in (copy / "feedback").rglob("*.html")}
    monkeypatch.chdir(copy)
    assert main(["import", "grades/grades.csv"]) == 0
    assert "imported 3 notebooks" in capsys.readouterr().out
    assert (_gradebook_rows(copy), {p: p.read_bytes() for p in (copy / "feedback").rglob("*.html")}) == before


def test_a_manual_score_survives_an_import_and_counts_in_the_export(course: Path, tmp_path: Path, monkeypatch) -> None:
    copy = _copy(course, tmp_path)
    with Gradebook(f"sqlite:///{copy / 'gradebook.db'}", "") as gradebook:  # as the Formgrader saves a score
        grade = gradebook.find_grade("test_triple", LESSON, LESSON, "alice")
        grade.manual_score, grade.needs_manual_grade = 0.5, False
        gradebook.db.commit()
    monkeypatch.chdir(copy)
    assert main(["import", "grades/grades.csv"]) == 0
    _, grades, _ = _submitted_notebook(copy, "alice")
    assert grades["test_triple"] == (1.0, 0.5, True)  # the automatic score under it changed hands: review it
    assert float(_export(copy)["alice"]["score"]) == 3.5


def _edit_report(course: Path, student: str, edit) -> None:
    path = course / "grades" / "grades_reports" / _batch_rows(course)[student]["report"]
    report = json.loads(path.read_text())
    edit(report)
    path.write_text(json.dumps(report))


def _edit_csv(course: Path, edit) -> None:
    path = course / "grades" / "grades.csv"
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    fields = list(rows[0])
    edit(rows)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fields)
        writer.writeheader()
        writer.writerows(rows)


def _rename_triple(report: dict) -> None:
    report["checks"][2]["id"] = "demo.quadruple"


def _double_the_points(report: dict) -> None:
    report["checks"][0]["max_points"] = 4


def _unregistered_lesson(rows: list[dict]) -> None:
    rows[1].update(assignment="98_other", notebook=f"bob/98_other/{LESSON}.ipynb")


def _flat_layout(rows: list[dict]) -> None:
    rows[0]["notebook"] = "alice.ipynb"


@pytest.mark.parametrize(
    "report_edit, csv_edit, messages",
    [
        (_rename_triple, None, ["demo.quadruple has no graded cell",
                                "the graded cell test_triple runs demo.triple, which the graders do not grade"]),
        (_double_the_points, None, ["demo.double is worth 4 points, its graded cell test_double 2"]),
        (None, _unregistered_lesson, ["the gradebook has no assignment 98_other", "nbgrader generate_assignment"]),
        (None, _flat_layout, ["alice.ipynb is not in nbgrader's layout"]),
    ],
    ids=["renamed-check", "points", "unregistered-lesson", "flat-layout"],
)  # fmt: skip
def test_a_batch_that_does_not_fit_the_gradebook_writes_nothing(
    course, tmp_path, monkeypatch, capsys, report_edit, csv_edit, messages
) -> None:
    copy = _copy(course, tmp_path)
    if report_edit:
        _edit_report(copy, "alice", report_edit)
    if csv_edit:
        _edit_csv(copy, csv_edit)
    before = _gradebook_rows(copy)
    monkeypatch.chdir(copy)
    assert main(["import", "grades/grades.csv"]) == 1
    error = capsys.readouterr().err
    assert error.startswith("cannot import: ") and all(message in error for message in messages), error
    assert _gradebook_rows(copy) == before


def test_a_notebook_the_lesson_does_not_have_is_skipped_as_autograde_skips_it(
    course: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    copy = _copy(course, tmp_path)
    _edit_csv(copy, lambda rows: rows.append({**rows[0], "notebook": f"alice/{LESSON}/{LESSON}-Copy1.ipynb"}))
    before = _gradebook_rows(copy)
    monkeypatch.chdir(copy)
    assert main(["import", "grades/grades.csv"]) == 0
    out = capsys.readouterr().out
    assert f"alice/{LESSON}/{LESSON}-Copy1.ipynb: skipped, the assignment {LESSON} has no notebook {LESSON}-Copy1" in out
    assert "imported 3 notebooks" in out and _gradebook_rows(copy) == before


def test_without_a_gradebook_import_says_where_it_looked(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["import", "grades.csv"]) == 1
    assert f"no gradebook at {tmp_path / 'gradebook.db'}: run this in the course's folder" in capsys.readouterr().err
    assert not (tmp_path / "gradebook.db").exists()


@pytest.mark.parametrize("lesson", sorted(p.name for p in (ROOT / "solutions").iterdir() if p.is_dir()))
def test_each_lessons_graded_cells_pair_with_its_checks(lesson: str) -> None:
    """What the import pairs in the gradebook's copy of a lesson holds in its source: one check per graded cell, each
    check in one cell, for the same points."""
    notebook = nbformat.read(ROOT / "solutions" / lesson / f"{lesson}.ipynb", as_version=4)
    graded = [cell for cell in notebook.cells if cell.metadata.get("nbgrader", {}).get("grade")]
    runs = [(_checks_run_by(cell.source), cell.metadata["nbgrader"]["points"]) for cell in graded]
    assert all(len(checks) == 1 for checks, _ in runs)
    assert sorted((checks[0], points) for checks, points in runs) == sorted(
        (check.id, check.points) for check in checks_for(lesson)
    )
