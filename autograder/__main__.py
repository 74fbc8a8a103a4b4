"""The grader's command line: ``python -m autograder grade|batch|import|status|report|similarity``.

    python -m autograder grade lessons/02_attention/02_attention.ipynb            # score table, in this process
    python -m autograder grade submission.ipynb --sandbox --json grade.json       # the notebook in a jail
    python -m autograder batch submitted/ --out grades.csv                        # nbgrader's submitted/ folder
    python -m autograder batch submitted/ --out grades/grades.csv --gradebook     # ... into gradebook.db, feedback/
    python -m autograder import grades/grades.csv                                 # an earlier batch, the same way
    python -m autograder status                                                   # every lesson in lessons/
    python -m autograder report grades/ --out report.html                         # the class report (+ .json)
    python -m autograder similarity submitted/ --lesson 02_attention --out similarity.html   # alike code (+ .json)

``grade`` exits 0 whenever it could grade, whatever the score, and 1 when it could not (no such file, not a
notebook, unknown lesson; ``--sandbox`` where bubblewrap cannot jail the worker, unless ``--unisolated``).
``--gradebook`` and ``import`` use the nbgrader course of the current folder, and exit 1 when its gradebook cannot
take the batch (no gradebook, a lesson not registered in it, graded cells that differ from the graders' checks).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .feedback import write_feedback
from .grading import BATCH_PID_ENV, GRADERS, GradingError, grade, grade_folder, progress, read_batch
from .jail import unavailable_reason
from .sandbox import Limits

if TYPE_CHECKING:
    from nbgrader.apps.baseapp import NbGrader

PR_SET_PDEATHSIG = 1


def _add_limits(command: argparse.ArgumentParser) -> None:
    command.add_argument("--timeout", type=float, default=Limits.timeout,
                         help="seconds one notebook's grading may take in all, a safety net "
                              f"(default {Limits.timeout:g})")  # fmt: skip
    command.add_argument("--cell-timeout", type=float, default=Limits.cell_timeout,
                         help=f"seconds per notebook cell (default {Limits.cell_timeout:g})")  # fmt: skip
    command.add_argument("--check-timeout", type=float, default=Limits.check_timeout,
                         help=f"seconds per check's probe (default {Limits.check_timeout:g})")  # fmt: skip
    command.add_argument("--memory-gb", type=float, default=Limits.memory_gb,
                         help=f"memory of a worker and all it starts (default {Limits.memory_gb:g})")  # fmt: skip
    command.add_argument("--unisolated", action="store_true",
                         help="where bubblewrap is missing: the worker in a plain process (no jail)")  # fmt: skip


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    one = commands.add_parser("grade", help="grade one notebook: a score table, and optionally JSON")
    one.add_argument("notebook")
    one.add_argument("--lesson", default=None, help="e.g. 02_attention (default: from the folder or file name)")
    one.add_argument("--sandbox", action="store_true", help="run the notebook's code in a jailed worker process")
    one.add_argument("--json", default=None, help="also write the grade to this JSON file")
    _add_limits(one)

    many = commands.add_parser("batch", help="grade every submission in a folder, each in its own process")
    many.add_argument("folder", help="nbgrader's submitted/ (<student>/<assignment>/*.ipynb) or a folder of notebooks")
    many.add_argument("--out", required=True, help="the CSV to write; JSON reports go to <out>_reports/")
    many.add_argument("--jobs", type=int, default=1, help="notebooks graded at once (default 1)")
    many.add_argument("--gradebook", action="store_true",
                      help="then import the grades into the gradebook of the nbgrader course in this folder, and "
                           "write each learner's feedback")  # fmt: skip
    _add_limits(many)

    into = commands.add_parser("import", help="a batch's grades into this folder's nbgrader gradebook, with feedback")
    into.add_argument("csv", help="the CSV a batch wrote (its JSON reports next to it, in <csv>_reports/)")

    for command in (many, into):
        command.add_argument("--feedback", default=None,
                             help="write each learner's feedback page under this folder (default with the gradebook: "
                                  "the course's feedback/)")  # fmt: skip

    ledger = commands.add_parser("status", help="your progress: one line per lesson notebook")
    ledger.add_argument("--dir", default="lessons", help="the folder of lesson folders (default: lessons)")

    report = commands.add_parser("report", help="the class report: pass rates, mistakes, scores (HTML and JSON)")
    report.add_argument("grades", nargs="+", help="a folder of batch CSVs (with their _reports/), or autograded/")
    report.add_argument("--out", required=True, help="the HTML to write; the JSON goes next to it")

    alike = commands.add_parser("similarity", help="pairs of submissions, and submissions and solutions, alike")
    alike.add_argument("folder", help="nbgrader's submitted/ (<student>/<lesson>/*.ipynb)")
    alike.add_argument("--lesson", required=True, help="e.g. 02_attention")
    alike.add_argument("--out", required=True, help="the HTML to write; the JSON goes next to it")
    alike.add_argument("--solutions", default="solutions", help="the lessons' sources (default: solutions)")
    alike.add_argument("--release", default="lessons", help="the released lessons: boilerplate (default: lessons)")

    for command in (one, many, ledger):
        command.add_argument("--graders", default=str(GRADERS), help="the folder of test_<lesson>.py graders")
    return parser


def _die_with_the_batch() -> None:
    """A ``grade`` started by ``batch`` dies with it (its jail dies with it in turn): a killed batch leaves no
    grading behind."""
    batch = os.environ.pop(BATCH_PID_ENV, None)
    if batch:
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != int(batch):  # it died before the line above
            sys.exit(1)


def _load_course() -> NbGrader | None:
    """The nbgrader course of the current folder, or None after saying why it cannot take grades."""
    from .gradebook import GradebookError, load_course  # nbgrader takes a second to import: only when needed

    try:
        return load_course()
    except GradebookError as e:
        print(f"cannot import: {e}", file=sys.stderr)
        return None


def _import(out_csv: str, course: NbGrader | None, feedback: str | None) -> int:
    """A batch's grades into the course's gradebook (when there is a course) and each learner's feedback page."""
    if course is None and feedback is None:
        return 0
    rows = read_batch(out_csv)
    if course is not None:
        from .gradebook import GradebookError, import_batch

        try:
            skipped = import_batch(rows, course)
        except GradebookError as e:
            print(f"cannot import: {e}", file=sys.stderr)
            return 1
        for line in skipped:
            print(line)
        print(f"imported {len(rows) - len(skipped)} notebooks into {course.coursedir.db_url}")
        feedback = feedback or str(Path(course.coursedir.root) / course.coursedir.feedback_directory)
    if feedback:
        print(f"feedback for {len(write_feedback(rows, feedback))} notebooks: {feedback}")
    return 0


def main(argv: list[str] | None = None) -> int:
    _die_with_the_batch()
    args = _build_parser().parse_args(argv)
    course = None
    if args.command == "import" or (args.command == "batch" and args.gradebook):
        course = _load_course()  # before grading: a batch that cannot be imported says so at once
        if course is None:
            return 1
    if args.command == "import":
        return _import(args.csv, course, args.feedback)
    if args.command == "status":
        if not Path(args.dir).is_dir():
            print(f"no folder {args.dir}: run this from the repository, or pass --dir", file=sys.stderr)
            return 1
        for line in progress(args.dir, args.graders) or [f"no lesson notebooks in {args.dir}"]:
            print(line)
        return 0
    if args.command == "report":  # imported here: matplotlib and copydetect are slow, and `grade` runs per notebook
        from .report import write_report

        summary = write_report(args.grades, args.out)
        graded = sum(lesson["graded"] for lesson in summary["lessons"])
        print(f"class report on {graded} graded submissions: {args.out}")
        return 0
    if args.command == "similarity":
        from .similarity import write_similarity

        try:
            result = write_similarity(args.folder, args.lesson, args.out, args.solutions, args.release)
        except FileNotFoundError as e:
            print(e, file=sys.stderr)
            return 1
        print(f"{len(result['pairs'])} pairs compared: {args.out}")
        return 0
    limits = Limits(args.timeout, args.cell_timeout, args.check_timeout, args.memory_gb)
    if args.command == "batch" or args.sandbox:
        reason = None if args.unisolated else unavailable_reason()
        if reason:
            reason = f"cannot jail the notebooks' code: {reason} (or pass --unisolated for a plain process)"
            print(reason, file=sys.stderr)
            return 1
    if args.command == "batch":
        rows = grade_folder(args.folder, args.out, limits, args.graders, args.jobs, isolated=not args.unisolated)
        graded = sum(row["status"].startswith("graded") for row in rows)
        print(f"graded {graded} of {len(rows)} notebooks: {args.out}")
        return _import(args.out, course, args.feedback)
    try:
        report = grade(args.notebook, args.lesson, args.sandbox, limits, args.graders, isolated=not args.unisolated)
    except GradingError as e:
        print(f"could not grade: {e}", file=sys.stderr)
        return 1
    print(report.table())
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_json(), indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
