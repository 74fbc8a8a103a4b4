"""A batch's grades in nbgrader's gradebook: the hardened grader's results (``grade_folder``'s CSV and JSON reports)
written per graded cell through nbgrader's own API, so that the Formgrader, ``nbgrader export`` and manual grading
see them as they see ``nbgrader autograde``'s.

Each check lands in the graded cell that runs it. The gradebook keeps a copy of every graded cell's source (hidden
tests included), and the cell whose code calls ``check("attention.softmax", ...)`` is the cell of the check
``attention.softmax``. Anything that does not pair up (a check without a cell, a cell without a check, points that
differ, a lesson not registered) stops the import before anything is written: the lesson the graders grade and
the gradebook's copy of it are out of step.

What ``nbgrader autograde`` does with a graded notebook, this does too, with nbgrader's code where it has some:

- the student is created if missing, and the submission's time is read from ``timestamp.txt`` in the course's
  ``submitted/<student>/<assignment>/`` when there is one;
- ``auto_score`` is set on each autograded cell and ``manual_score`` is left alone: a score given in the Formgrader
  still counts, and is marked for review when the automatic score under it is imported again;
- the late penalty comes from the course's configured late-submission plugin, through nbgrader's
  ``AssignLatePenalties``.

A notebook the grader could not grade scores 0 on every autograded cell, is flagged, and carries the reason as the
automatic comment of each of its answer cells, where the Formgrader shows it. Importing a batch twice gives the
same gradebook.
"""

from __future__ import annotations

import ast
import logging
import warnings
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.apps.baseapp import NbGrader
from nbgrader.preprocessors import AssignLatePenalties
from sqlalchemy.exc import SAWarning

from .grading import BatchRow

NOT_GRADED = "The hardened grader could not grade this notebook: {reason}"
SQLITE = "sqlite:///"


class GradebookError(Exception):
    """The batch cannot go into the gradebook as it is; nothing was written."""


def load_course() -> NbGrader:
    """nbgrader's settings as its commands see them from the current folder (its ``nbgrader_config.py``, and those
    in Jupyter's config folders): the gradebook, the course folders, the late-submission plugin."""
    course = NbGrader(log_level=logging.WARNING)
    course.initialize([])
    database = course.coursedir.db_url
    if database.startswith(SQLITE) and not Path(database.removeprefix(SQLITE)).exists():
        raise GradebookError(
            f"no gradebook at {database.removeprefix(SQLITE)}: run this in the course's folder (where "
            "nbgrader_config.py is), after `nbgrader generate_assignment <lesson>` registered the lesson"
        )
    return course


def notebook_name(row: BatchRow) -> str:
    """The notebook's name in nbgrader (its file name without .ipynb), for a row in nbgrader's layout."""
    parts = Path(row.notebook).parts
    if len(parts) != 3:
        raise GradebookError(
            f"{row.notebook} is not in nbgrader's layout <student>/<assignment>/<notebook>.ipynb: grade the course's "
            "submitted/ folder to import into the gradebook"
        )
    return Path(parts[2]).stem


def _checks_run_by(source: str) -> list[str]:
    """The check ids a cell's code passes to ``check(...)``, in order."""
    return [
        node.args[0].value for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "check"
        and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
    ]  # fmt: skip


def _autograded_cells(gradebook: Gradebook, assignment: str, notebook: str) -> dict[str, tuple[str, float]] | None:
    """check id → (name, max score) of the graded cell that runs it, in the gradebook's copy of the notebook; None
    when the assignment has no such notebook. Cells graded by hand (written answers, tasks) are left to the
    Formgrader."""
    try:
        gradebook.find_assignment(assignment)
    except MissingEntry:
        raise GradebookError(
            f"the gradebook has no assignment {assignment}: register it first, with `nbgrader generate_assignment "
            f"{assignment} --CourseDirectory.release_directory=release --force` (docs/instructor.md, step 3)"
        ) from None
    try:
        master = gradebook.find_notebook(notebook, assignment)
    except MissingEntry:
        return None
    answers = {cell.name for cell in master.solution_cells}
    sources = {cell.name: cell.source for cell in master.source_cells}
    cells: dict[str, tuple[str, float]] = {}
    for cell in master.grade_cells:
        if cell.cell_type != "code" or cell.name in answers:
            continue
        where = f"{assignment}/{notebook}, graded cell {cell.name}"
        try:
            checks = _checks_run_by(sources.get(cell.name, ""))
        except SyntaxError as e:
            raise GradebookError(f"{where}: its code does not parse ({e.msg}, line {e.lineno})") from None
        if len(checks) != 1:
            raise GradebookError(f"{where} runs {len(checks)} checks ({', '.join(checks) or 'none'}), not one")
        if checks[0] in cells:
            raise GradebookError(f"{where} runs {checks[0]}, as the graded cell {cells[checks[0]][0]} does")
        cells[checks[0]] = (cell.name, cell.max_score)
    return cells


def _cell_scores(row: BatchRow, cells: dict[str, tuple[str, float]]) -> dict[str, float]:
    """Graded cell name → its automatic score for this row: each check's points, or 0 everywhere when not graded."""
    if row.report is None:
        return {name: 0.0 for name, _ in cells.values()}
    checks = {check["id"]: check for check in row.report["checks"]}
    differences = [f"{c} has no graded cell" for c in sorted(checks.keys() - cells.keys())]
    differences += [f"the graded cell {cells[c][0]} runs {c}, which the graders do not grade"
                    for c in sorted(cells.keys() - checks.keys())]  # fmt: skip
    for c in sorted(checks.keys() & cells.keys()):
        name, max_score = cells[c]
        if checks[c]["max_points"] != max_score:
            differences.append(f"{c} is worth {checks[c]['max_points']:g} points, its graded cell {name} {max_score:g}")
    if differences:
        raise GradebookError(
            f"{row.notebook}: the graders and the gradebook's {row.assignment} differ: {'; '.join(differences)}. "
            "Register the lesson the graders grade again (nbgrader generate_assignment), or grade with its graders"
        )
    return {cells[c][0]: check["points"] for c, check in checks.items()}


def _write(gradebook: Gradebook, course: NbGrader, row: BatchRow, notebook: str, scores: dict[str, float]) -> None:
    """One notebook's grades, comments and submission time, as nbgrader's autograde would write them."""
    coursedir = course.coursedir
    gradebook.update_or_create_student(row.student)
    folder = coursedir.format_path(coursedir.submitted_directory, row.student, row.assignment)
    timestamp = coursedir.get_existing_timestamp(folder)
    submitted_at = {"timestamp": timestamp} if timestamp else {}  # else an earlier time stays, as with autograde
    with warnings.catch_warnings():  # nbgrader links a new submission's rows before adding them: SQLAlchemy warns
        warnings.simplefilter("ignore", SAWarning)
        gradebook.update_or_create_submission(row.assignment, row.student, **submitted_at)
    submitted = gradebook.find_submission_notebook(notebook, row.assignment, row.student)
    for grade in submitted.grades:
        if grade.name in scores:
            grade.auto_score = scores[grade.name]
            grade.needs_manual_grade = grade.manual_score is not None  # a score given by hand: review it
    reason = None if row.report is not None else NOT_GRADED.format(reason=row.status.removeprefix("not graded: "))
    for comment in submitted.comments:
        comment.auto_comment = reason
    if reason:
        submitted.flagged = True
    gradebook.db.commit()


def _assign_late_penalty(course: NbGrader, row: BatchRow, notebook: str) -> None:
    """nbgrader's own late-penalty step of autograde, with the course's configured plugin."""
    resources = {"nbgrader": {"notebook": notebook, "assignment": row.assignment, "student": row.student,
                              "db_url": course.coursedir.db_url}}  # fmt: skip
    AssignLatePenalties(parent=course).preprocess(nbformat.v4.new_notebook(), resources)


def import_batch(rows: list[BatchRow], course: NbGrader) -> list[str]:
    """Write the rows' grades into the course's gradebook (``load_course``). Every row is checked against the
    gradebook before the first is written; GradebookError says what does not fit. A notebook that is not one of its
    assignment's (a learner's copy, ``02_attention-Copy1.ipynb``) is skipped, as autograde skips it: returns a line
    for each."""
    with Gradebook(course.coursedir.db_url, course.coursedir.course_id) as gradebook:
        cells: dict[tuple[str, str], dict[str, tuple[str, float]] | None] = {}
        plans, skipped = [], []
        for row in rows:
            notebook = notebook_name(row)
            if (row.assignment, notebook) not in cells:
                cells[row.assignment, notebook] = _autograded_cells(gradebook, row.assignment, notebook)
            if cells[row.assignment, notebook] is None:
                skipped.append(f"{row.notebook}: skipped, the assignment {row.assignment} has no notebook {notebook}")
                continue
            plans.append((row, notebook, _cell_scores(row, cells[row.assignment, notebook])))
        for row, notebook, scores in plans:
            _write(gradebook, course, row, notebook, scores)
    for row, notebook, _ in plans:
        _assign_late_penalty(course, row, notebook)
    return skipped
