"""Grade notebooks: one (``grade``), a folder of submissions (``grade_folder``), a learner's progress (``progress``).

A lesson's grading is its pytest file, ``autograder/graders/test_<lesson>.py``: one test per check, each worth the
check's points. ``grade`` runs that file with ``pytest.main`` in this process, with a small plugin (``_Collector``)
that picks up each test's verdict, and adds up the points. The tests call ``core.judge`` on the learner's probe
outcomes, which come from the notebook loaded in this process or, with ``sandbox=True``, from a worker process
(``autograder.sandbox``) that nothing in the notebook can reach the judge from.

In-process grading is for a learner's own notebook: it is fast (one Python, torch imported once) and it trusts
the notebook. A notebook that replaces ``torch.allclose`` or ``autograder.core._differences`` does fool it (one
that replaces ``autograder.core.judge`` does not: the graders hold their own reference to it), and a notebook's
``os._exit`` ends it. Grade other people's notebooks with ``sandbox=True``, where neither can happen.

``grade_folder`` grades each submission in a process of its own (``python -m autograder grade --sandbox``), so
that a notebook that crashes, hangs or floods its output costs its own row and nothing else.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pytest

from .core import Result
from .loader import NotebookError, read_cells
from .sandbox import Limits

GRADERS = Path(__file__).resolve().parent / "graders"
LEARNER = pytest.StashKey[object]()  # the graders' `learner`, kept for its notebook problems


def _fmt(points: float) -> str:
    return f"{points:g}"


class GradingError(Exception):
    """The notebook could not be graded at all (no such file, not a notebook, unknown lesson, broken graders)."""


@dataclass
class Report:
    """One notebook's grade, as printed and as written to JSON."""

    notebook: str
    lesson: str
    score: float
    max_score: float
    checks: list[Result]
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "notebook": self.notebook, "lesson": self.lesson, "score": self.score, "max_score": self.max_score,
            "checks": [asdict(result) for result in self.checks], "problems": self.problems,
        }  # fmt: skip

    def table(self) -> str:
        width = max((len(r.id) for r in self.checks), default=0)
        lines = [f"{self.lesson}: {self.notebook}"]
        for r in self.checks:
            points = f"{_fmt(r.points)}/{_fmt(r.max_points)}"
            lines.append(f"  {'✓' if r.passed else '✗'} {r.id:<{width}}  {points:>5}  {r.message}")
        lines.append(f"score: {_fmt(self.score)}/{_fmt(self.max_score)}")
        if self.problems:
            lines.append("problems while running the notebook (grading went on without what they left undefined):")
            lines.extend(f"  - {problem}" for problem in self.problems)
        return "\n".join(lines)


# ---- one notebook ----------------------------------------------------------------------------------------------------


def known_lessons(graders: Path = GRADERS) -> list[str]:
    """Lessons that have a graders file, ``test_<lesson>.py``."""
    return sorted(path.stem.removeprefix("test_") for path in Path(graders).glob("test_*.py"))


def infer_lesson(notebook: str | os.PathLike, graders: Path = GRADERS) -> str:
    """The lesson of a notebook, from its folder (nbgrader's assignment folder) or else its file name; a copy such
    as ``02_attention-Copy1.ipynb`` counts too."""
    path = Path(notebook).resolve()
    lessons = sorted(known_lessons(graders), key=len, reverse=True)
    for name in (path.parent.name, path.stem):
        for lesson in lessons:
            if name.startswith(lesson):
                return lesson
    raise GradingError(
        f"cannot tell which lesson {path.name} belongs to: name its folder or file after one of "
        f"{', '.join(lessons) or '(no lessons have graders)'}, or pass --lesson"
    )


class _Collector:
    """A pytest plugin: each test's verdict (recorded by the graders' ``grade`` fixture), the tests that failed
    without one (a broken grader, not a learner's mistake), and the learner's notebook problems."""

    def __init__(self) -> None:
        self.results: list[Result] = []
        self.broken: list[str] = []
        self.problems: list[str] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        verdicts = [value for name, value in report.user_properties if name == "autograder_result"]
        if report.when == "call" and verdicts:
            self.results.append(Result(**verdicts[-1]))
        elif report.failed:
            self.broken.append(f"{report.nodeid} ({report.when}): {report.longreprtext.strip()[-1000:]}")

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        learner = session.config.stash.get(LEARNER, None)
        self.problems = list(learner.problems) if learner is not None else []


def grade(
    notebook: str | os.PathLike,
    lesson: str | None = None,
    sandbox: bool = False,
    limits: Limits = Limits(),
    graders: str | os.PathLike = GRADERS,
) -> Report:
    """Run the lesson's graders on the notebook. Raises GradingError when it cannot grade; a notebook that fails
    every check still gets a Report (score 0, and why)."""
    path = Path(notebook).resolve()
    graders = Path(graders).resolve()
    try:
        read_cells(path)
    except NotebookError as e:
        raise GradingError(str(e)) from None
    lesson = lesson or infer_lesson(path, graders)
    graders_file = graders / f"test_{lesson}.py"
    if not graders_file.exists():
        raise GradingError(f"no graders for lesson {lesson!r}; known: {', '.join(known_lessons(graders)) or 'none'}")
    collector = _Collector()
    args = [
        str(graders_file),  # a path inside the graders folder, so that its conftest.py (our options) is loaded
        f"--notebook={path}", f"--cell-timeout={limits.cell_timeout}", f"--check-timeout={limits.check_timeout}",
        f"--worker-timeout={limits.timeout}", f"--memory-gb={limits.memory_gb}", *(["--sandbox"] if sandbox else []),
        f"--rootdir={graders}", f"--confcutdir={graders}", "-c", os.devnull,  # not the repository's pytest settings
        "-q", "-p", "no:cacheprovider", "-p", "no:timeout",
    ]  # fmt: skip
    pytest_output = io.StringIO()
    with contextlib.redirect_stdout(pytest_output):
        exit_code = pytest.main(args, plugins=[collector])
    if exit_code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED) or collector.broken:
        details = "\n".join(collector.broken) or pytest_output.getvalue()[-2000:]
        raise GradingError(f"the graders for {lesson} did not run (pytest exit code {int(exit_code)}):\n{details}")
    results = collector.results
    return Report(
        notebook=str(notebook), lesson=lesson, score=sum(r.points for r in results),
        max_score=sum(r.max_points for r in results), checks=results, problems=collector.problems,
    )  # fmt: skip


# ---- many notebooks --------------------------------------------------------------------------------------------------


def find_submissions(folder: str | os.PathLike) -> list[tuple[str, str, Path]]:
    """(student, assignment, notebook) for nbgrader's ``<student>/<assignment>/<notebook>.ipynb`` layout, and
    (file stem, "", notebook) for notebooks lying directly in the folder. Hidden folders (checkpoints) are skipped."""
    folder = Path(folder)
    nested = [(p.parent.parent.name, p.parent.name, p) for p in sorted(folder.glob("*/*/*.ipynb"))]
    flat = [(p.stem, "", p) for p in sorted(folder.glob("*.ipynb"))]
    return [(s, a, p) for s, a, p in nested + flat if not any(x.startswith(".") for x in p.relative_to(folder).parts)]


def _grade_in_subprocess(
    notebook: Path, lesson: str | None, limits: Limits, graders: Path, json_path: Path
) -> tuple[dict | None, str]:
    """(the JSON report or None, status) from ``python -m autograder grade --sandbox`` on one notebook."""
    command = [
        sys.executable, "-m", "autograder", "grade", str(notebook), "--sandbox", "--json", str(json_path),
        f"--timeout={limits.timeout}", f"--cell-timeout={limits.cell_timeout}",
        f"--check-timeout={limits.check_timeout}", f"--memory-gb={limits.memory_gb}", f"--graders={graders}",
        *([f"--lesson={lesson}"] if lesson else []),
    ]  # fmt: skip
    # the sandbox bounds each worker; this bounds the whole, for a notebook that hangs in check after check
    overall = 10 * limits.timeout + 60
    with tempfile.TemporaryFile() as log:
        grader = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            code = grader.wait(timeout=overall)
        except subprocess.TimeoutExpired:
            os.killpg(grader.pid, signal.SIGKILL)
            grader.wait()
            return None, f"not graded: grading took longer than {overall:g} s"
        log.seek(0)
        output = log.read()[-2000:].decode("utf-8", errors="replace")
    if code != 0 or not json_path.exists():
        lines = output.strip().splitlines() or [f"exit code {code}"]
        reason = next((line for line in lines if line.startswith("could not grade: ")), lines[-1])
        return None, f"not graded: {reason.removeprefix('could not grade: ')}"
    report = json.loads(json_path.read_text())
    if report["problems"]:
        return report, "graded; " + " | ".join(report["problems"])[:500]
    return report, "graded"


def grade_folder(
    folder: str | os.PathLike,
    out_csv: str | os.PathLike,
    limits: Limits = Limits(),
    graders: str | os.PathLike = GRADERS,
    jobs: int = 1,
) -> list[dict]:
    """Grade every submission under ``folder``, ``jobs`` at a time, and write one CSV row each: student,
    assignment, score, max_score, status, then one column of points per check. Each notebook's JSON report is kept
    in the folder ``<out_csv without .csv>_reports/``. Returns the rows."""
    graders = Path(graders).resolve()
    lessons = known_lessons(graders)
    out_csv = Path(out_csv)
    reports_dir = out_csv.with_name(out_csv.stem + "_reports")
    reports_dir.mkdir(parents=True, exist_ok=True)
    submissions = find_submissions(folder)

    def grade_one(submission: tuple[str, str, Path]) -> tuple[dict | None, str]:
        student, assignment, notebook = submission
        json_path = reports_dir / f"{student}__{assignment or notebook.stem}.json"
        json_path.unlink(missing_ok=True)
        lesson = assignment if assignment in lessons else None
        return _grade_in_subprocess(notebook, lesson, limits, graders, json_path)

    with ThreadPoolExecutor(max_workers=jobs) as pool:  # threads only wait: the grading is in subprocesses
        graded = list(pool.map(grade_one, submissions))
    rows, check_ids = [], []
    for (student, assignment, _), (report, status) in zip(submissions, graded, strict=True):
        row = {"student": student, "assignment": assignment or (report or {}).get("lesson", ""),
               "score": "", "max_score": "", "status": status}  # fmt: skip
        if report is not None:
            row.update(score=_fmt(report["score"]), max_score=_fmt(report["max_score"]))
            for result in report["checks"]:
                row[result["id"]] = _fmt(result["points"])
                if result["id"] not in check_ids:
                    check_ids.append(result["id"])
        rows.append(row)
    with open(out_csv, "w", newline="") as f:
        writer = csv.DictWriter(f, ["student", "assignment", "score", "max_score", "status", *check_ids], restval="")
        writer.writeheader()
        writer.writerows(rows)
    return rows


def progress(lessons_dir: str | os.PathLike, graders: str | os.PathLike = GRADERS) -> list[str]:
    """One line per lesson notebook under ``lessons_dir`` (``<lesson>/<lesson>.ipynb``): its score, or why not."""
    lines = []
    for notebook in sorted(Path(lessons_dir).glob("*/*.ipynb")):
        if any(part.startswith(".") for part in notebook.parts[-2:]):
            continue
        name = notebook.parent.name
        try:
            report = grade(notebook, graders=graders)
        except GradingError as e:
            lines.append(f"{name:<16} not graded: {str(e).splitlines()[0]}")
            continue
        passed = sum(r.passed for r in report.checks)
        todo = next((r.id for r in report.checks if not r.passed), None)
        score = f"{_fmt(report.score):>4}/{_fmt(report.max_score):<4}"
        line = f"{name:<16} {score} {passed} of {len(report.checks)} checks pass"
        line += f"; next: {todo}" if todo else ""
        line += f"; {len(report.problems)} cell(s) with problems" if report.problems else ""
        lines.append(line)
    return lines
