"""Grade notebooks: one (``grade``), a folder of submissions (``grade_folder``), a learner's progress (``progress``).

A lesson's grading is its pytest file, ``autograder/graders/test_<lesson>.py``: one test per check, each worth the
check's points. ``grade`` runs that file with ``pytest.main`` in this process, with a small plugin (``_Collector``)
that picks up each test's verdict, and adds up the points. The tests call ``core.judge`` on the learner's probe
outcomes, which come from the notebook loaded in this process or, with ``sandbox=True``, from a worker process
(``autograder.sandbox``) that nothing in the notebook can reach the judge from.

In-process grading is for a learner's own notebook: it is fast (one Python, torch imported once) and it trusts
the notebook. A notebook that replaces ``torch.allclose`` or ``autograder.core._differences`` does fool it (one
that replaces ``autograder.core.judge`` does not: the graders hold their own reference to it), and a notebook's
``os._exit`` ends it. Grade other people's notebooks with ``sandbox=True`` (a jail, ``autograder.sandbox``), where
neither can happen.

``grade_folder`` grades each submission in a process of its own (``python -m autograder grade --sandbox``), so
that a notebook that crashes, hangs or floods its output costs its own row and nothing else. Each row is in the
CSV as soon as its notebook is graded (the file is replaced atomically), so a batch that is killed keeps every
grade it finished.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import pytest

from .channel import printable
from .core import Result, format_points
from .hints import hints_used
from .jail import unavailable_reason
from .loader import MESSAGE_CAP, NotebookError, read_cells
from .sandbox import Limits

GRADERS = Path(__file__).resolve().parent / "graders"
LEARNER = pytest.StashKey[object]()  # the graders' `learner`, kept for its notebook problems
BATCH_PID_ENV = "AUTOGRADER_BATCH_PID"  # set for the `grade` processes of a batch: they die with it


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
            points = f"{format_points(r.points)}/{format_points(r.max_points)}"
            lines.append(f"  {'✓' if r.passed else '✗'} {r.id:<{width}}  {points:>5}  {r.message}")
        lines.append(f"score: {format_points(self.score)}/{format_points(self.max_score)}")
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
    isolated: bool = True,
) -> Report:
    """Run the lesson's graders on the notebook. Raises GradingError when it cannot grade (``sandbox`` and
    ``isolated`` included, where the worker cannot be jailed); a notebook that fails every check still gets a
    Report (score 0, and why)."""
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
    if sandbox and isolated and (reason := unavailable_reason()):
        raise GradingError(f"cannot jail the notebook's code: {reason} (or grade --unisolated, in a plain process)")
    collector = _Collector()
    args = [
        str(graders_file),  # a path inside the graders folder, so that its conftest.py (our options) is loaded
        f"--notebook={path}", f"--cell-timeout={limits.cell_timeout}", f"--check-timeout={limits.check_timeout}",
        f"--notebook-timeout={limits.timeout}", f"--memory-gb={limits.memory_gb}", *(["--sandbox"] if sandbox else []),
        *([] if isolated else ["--unisolated"]),
        f"--rootdir={graders}", f"--confcutdir={graders}", "-c", os.devnull,  # not the repository's pytest settings
        "-q", "-p", "no:cacheprovider", "-p", "no:timeout",
    ]  # fmt: skip
    pytest_output = io.StringIO()
    with contextlib.redirect_stdout(pytest_output):
        exit_code = pytest.main(args, plugins=[collector])
    if exit_code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED) or collector.broken:
        details = "\n".join(collector.broken) or pytest_output.getvalue()[-2000:]
        raise GradingError(f"the graders for {lesson} did not run (pytest exit code {int(exit_code)}):\n{details}")
    # a report's message is one line: the lines the check cell wraps it into, joined
    results = [replace(r, message=printable(" ".join(r.message.split()), 2 * MESSAGE_CAP)) for r in collector.results]
    return Report(
        notebook=str(notebook), lesson=lesson, score=sum(r.points for r in results),
        max_score=sum(r.max_points for r in results), checks=results,
        problems=[printable(p, 2 * MESSAGE_CAP) for p in collector.problems],
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
    notebook: Path, lesson: str | None, limits: Limits, graders: Path, json_path: Path, isolated: bool
) -> tuple[dict | None, str]:
    """(the JSON report or None, status) from ``python -m autograder grade --sandbox`` on one notebook."""
    command = [
        sys.executable, "-P", "-m", "autograder", "grade", str(notebook), "--sandbox", "--json", str(json_path),
        f"--timeout={limits.timeout}", f"--cell-timeout={limits.cell_timeout}",
        f"--check-timeout={limits.check_timeout}", f"--memory-gb={limits.memory_gb}", f"--graders={graders}",
        *([f"--lesson={lesson}"] if lesson else []), *([] if isolated else ["--unisolated"]),
    ]  # fmt: skip
    overall = limits.timeout + 60  # the sandbox keeps to limits.timeout; this is for a grader that does not
    with tempfile.TemporaryFile() as log:
        grader = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, BATCH_PID_ENV: str(os.getpid())},
        )  # fmt: skip
        try:
            code = grader.wait(timeout=overall)
        except subprocess.TimeoutExpired:
            os.killpg(grader.pid, signal.SIGKILL)  # the jail dies with it (bwrap --die-with-parent)
            grader.wait()
            return None, f"not graded: grading took longer than {overall:g} s"
        log.seek(0)
        output = log.read()[-2000:].decode("utf-8", errors="replace")
    if code != 0 or not json_path.exists():
        lines = output.strip().splitlines() or [f"exit code {code}"]
        reason = next((line for line in lines if line.startswith("could not grade: ")), lines[-1])
        return None, f"not graded: {printable(reason.removeprefix('could not grade: '), 500)}"
    report = json.loads(json_path.read_text())
    if report["problems"]:
        return report, "graded; " + printable(" | ".join(report["problems"]), 500)
    return report, "graded"


def _report_names(relatives: list[Path]) -> list[str]:
    """A JSON report file name per notebook, from its path in the submissions folder: unique, and readable."""
    names, taken = [], set()
    for relative in relatives:
        name = re.sub(r"[^\w.-]+", "_", "__".join(relative.with_suffix("").parts))
        unique, n = name, 1
        while unique in taken:
            n += 1
            unique = f"{name}-{n}"
        taken.add(unique)
        names.append(unique + ".json")
    return names


class _GradeTable:
    """The CSV of a batch, rewritten (atomically: written aside, then renamed) each time a row is added."""

    FIRST_COLUMNS = ["student", "assignment", "notebook", "score", "max_score", "status", "seconds", "report"]

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: dict[int, dict] = {}
        self.check_ids: list[str] = []
        self.lock = threading.Lock()
        self._write()

    def add(self, index: int, row: dict, check_ids: list[str]) -> None:
        with self.lock:
            self.rows[index] = row
            self.check_ids += [c for c in check_ids if c not in self.check_ids]
            self._write()

    def _write(self) -> None:
        partial = self.path.with_name(self.path.name + ".partial")
        with open(partial, "w", newline="") as f:
            writer = csv.DictWriter(f, [*self.FIRST_COLUMNS, *self.check_ids], restval="")
            writer.writeheader()
            writer.writerows(self.rows[i] for i in sorted(self.rows))
        os.replace(partial, self.path)


def grade_folder(
    folder: str | os.PathLike,
    out_csv: str | os.PathLike,
    limits: Limits = Limits(),
    graders: str | os.PathLike = GRADERS,
    jobs: int = 1,
    isolated: bool = True,
) -> list[dict]:
    """Grade every submission under ``folder``, ``jobs`` at a time, and write one CSV row each, as it is graded:
    student, assignment, notebook (its path in the folder), score, max_score, status, seconds (the wall time of its
    grading), report (its JSON report's file name, empty when it could not be graded), then one column of points
    per check. Each notebook's JSON report is kept in the folder ``<out_csv without .csv>_reports/``, under that
    name. Returns the rows."""
    folder = Path(folder)
    graders = Path(graders).resolve()
    lessons = known_lessons(graders)
    out_csv = Path(out_csv)
    reports_dir = out_csv.with_name(out_csv.stem + "_reports")
    reports_dir.mkdir(parents=True, exist_ok=True)
    submissions = find_submissions(folder)
    report_names = _report_names([notebook.relative_to(folder) for _, _, notebook in submissions])
    table = _GradeTable(out_csv)

    def grade_one(index: int) -> None:
        student, assignment, notebook = submissions[index]
        json_path = reports_dir / report_names[index]
        json_path.unlink(missing_ok=True)
        lesson = assignment if assignment in lessons else None
        start = time.perf_counter()
        report, status = _grade_in_subprocess(notebook, lesson, limits, graders, json_path, isolated)
        row = {"student": student, "assignment": assignment or (report or {}).get("lesson", ""),
               "notebook": str(notebook.relative_to(folder)), "score": "", "max_score": "", "status": status,
               "seconds": f"{time.perf_counter() - start:.1f}",
               "report": json_path.name if report is not None else ""}  # fmt: skip
        check_ids = []
        if report is not None:
            row.update(score=format_points(report["score"]), max_score=format_points(report["max_score"]))
            for result in report["checks"]:
                row[result["id"]] = format_points(result["points"])
                check_ids.append(result["id"])
        table.add(index, row, check_ids)

    with ThreadPoolExecutor(max_workers=jobs) as pool:  # threads only wait: the grading is in subprocesses
        list(pool.map(grade_one, range(len(submissions))))
    return [table.rows[i] for i in sorted(table.rows)]


@dataclass
class BatchRow:
    """One notebook of a batch, read back from its CSV: who, what, and its JSON report (None when not graded)."""

    student: str
    assignment: str
    notebook: str  # its path in the submissions folder
    status: str
    report: dict | None
    seconds: float  # the wall time of its grading


def read_batch(out_csv: str | os.PathLike) -> list[BatchRow]:
    """The rows of a batch's CSV (``grade_folder``), each with its JSON report from ``<csv stem>_reports/``."""
    out_csv = Path(out_csv)
    reports_dir = out_csv.with_name(out_csv.stem + "_reports")
    with open(out_csv, newline="") as f:
        return [
            BatchRow(row["student"], row["assignment"], row["notebook"], row["status"],
                     json.loads((reports_dir / row["report"]).read_text()) if row["report"] else None,
                     float(row["seconds"]))
            for row in csv.DictReader(f)
        ]  # fmt: skip


def progress(lessons_dir: str | os.PathLike, graders: str | os.PathLike = GRADERS) -> list[str]:
    """One line per lesson notebook under ``lessons_dir`` (``<lesson>/<lesson>.ipynb``): its score, or why not, and
    how many hints were read in its folder (``autograder.hints``)."""
    lines = []
    for notebook in sorted(Path(lessons_dir).glob("*/*.ipynb")):
        if any(part.startswith(".") for part in notebook.parts[-2:]):
            continue
        name = notebook.parent.name
        used = hints_used(notebook.parent)
        hints = f"; {used} hint{'s' if used != 1 else ''} used" if used else ""
        try:
            report = grade(notebook, graders=graders)
        except GradingError as e:
            lines.append(f"{name:<16} not graded: {str(e).splitlines()[0]}{hints}")
            continue
        passed = sum(r.passed for r in report.checks)
        todo = next((r.id for r in report.checks if not r.passed), None)
        score = f"{format_points(report.score):>4}/{format_points(report.max_score):<4}"
        line = f"{name:<16} {score} {passed} of {len(report.checks)} checks pass"
        line += f"; next: {todo}" if todo else ""
        line += f"; {len(report.problems)} cell(s) with problems" if report.problems else ""
        lines.append(line + hints)
    return lines
