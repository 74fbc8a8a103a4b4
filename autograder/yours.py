"""Your code carries forward: a later lesson runs on the objects you wrote in an earlier one.

In a lesson's setup cell::

    from autograder import yours
    CausalSelfAttention = yours("02_attention").CausalSelfAttention    # one object
    mine = yours("03_gpt_block")                                       # or all of them: mine.GPT, mine.Block, …

``yours(lesson)`` finds the earlier lesson's notebook beside the current one (a notebook's kernel runs in the
notebook's folder, so ``../02_attention/02_attention.ipynb``), loads it the way the graders do (definitions only:
no demo or graded cells; ``autograder.loader``), and runs that lesson's checks, visible and hidden, on
each of its graded objects. An object that passes all of its checks is yours. Where one does not — not defined, not
implemented yet, failing a check, or the notebook missing or unreadable — the reference's object
(``autograder.answer_key``) takes its place, and one line says so::

    CausalSelfAttention: the reference's — yours fails attention.causal_self_attention

so a lesson always runs top to bottom: on your parts where they work, on the reference's where they do not yet.
Loading an earlier notebook runs its own ``yours(...)`` too, so lesson 04's GPT is built on your lesson-02 attention.

While a notebook is being graded (nbgrader sets NBGRADER_EXECUTION, the autograder's loader AUTOGRADER_GRADING),
``yours`` returns the reference's objects at once and prints nothing: each notebook is graded on its own, and a
grader need not (a hardened one cannot) see the learner's other notebooks.

Results are kept per notebook and modification time (its own and the earlier lessons'), so re-running a cell is
instant and editing an earlier notebook is noticed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .answer_key import ANSWER_KEY, resolve
from .core import Check, checks_for, grading, judge
from .loader import LoadedNotebook, NotebookError, load_notebook

YOURS = "yours"
REFERENCE = "the reference's"
TIME_LIMIT = 30.0  # seconds for each cell of the earlier notebook, and for each check


@dataclass(frozen=True)
class Carried:
    """A lesson's graded objects, each the learner's or the reference's, under the names the lesson gives them.

    ``carried.GPT`` is the object; ``whose["GPT"]`` is ``"yours"`` or ``"the reference's"``; ``status["GPT"]`` says
    why, in a few words: ``"passes its 4 checks"``, ``"yours fails gpt_block.init"``, ``"yours is not implemented
    yet"``, ``"03_gpt_block not found"``. ``lines()`` gives one ``"GPT: yours — passes its 4 checks"`` per object.
    ``mine`` holds the learner's objects; the reference's are imported from the answer key when asked for.
    """

    lesson: str
    whose: dict[str, str]
    status: dict[str, str]
    mine: dict[str, Any]

    def __getattr__(self, name: str) -> Any:
        fields = vars(self)  # not self.whose: no recursion before __init__ has set the fields
        if name in fields.get("mine", {}):
            return fields["mine"][name]
        if name in fields.get("whose", {}):
            return resolve(ANSWER_KEY[self.lesson][name])
        names = ", ".join(fields.get("whose", {}))
        raise AttributeError(f"lesson {fields.get('lesson')} grades no object named {name!r}; it grades {names}")

    def __dir__(self) -> list[str]:
        return [*super().__dir__(), *self.whose]

    def lines(self) -> list[str]:
        return [f"{name}: {whose} — {self.status[name]}" for name, whose in self.whose.items()]


def yours(lesson: str, course: str | os.PathLike | None = None) -> Carried:
    """The graded objects of an earlier ``lesson`` ("02_attention"): yours where they pass their checks, the
    reference's elsewhere, with one printed line for each of those.

    ``course`` is the folder that holds the lessons' folders; by default the parent of the working directory, which
    in a notebook is the notebook's own folder.
    """
    if lesson not in ANSWER_KEY:
        raise KeyError(f"no lesson {lesson!r}; known: {', '.join(ANSWER_KEY)}")
    if grading():
        return _all_reference(lesson, "graded on its own: each notebook is graded without the others")
    course = Path(course) if course is not None else Path.cwd().parent
    notebook = (course / lesson / f"{lesson}.ipynb").absolute()
    key = (lesson, notebook, _modification_times(course, lesson))
    if key not in _cache:
        _cache[key] = _carry(lesson, notebook)
    carried = _cache[key]
    _print_summary(carried)
    return carried


_cache: dict[tuple, Carried] = {}


def _modification_times(course: Path, lesson: str) -> tuple[int | None, ...]:
    """The modification times of the lesson's notebook and of the earlier lessons' (which it may carry forward)."""
    lessons = list(ANSWER_KEY)
    times = []
    for name in lessons[: lessons.index(lesson) + 1]:
        try:
            times.append((course / name / f"{name}.ipynb").stat().st_mtime_ns)
        except OSError:
            times.append(None)
    return tuple(times)


def _all_reference(lesson: str, reason: str) -> Carried:
    return Carried(lesson, dict.fromkeys(ANSWER_KEY[lesson], REFERENCE), dict.fromkeys(ANSWER_KEY[lesson], reason), {})


def _carry(lesson: str, notebook: Path) -> Carried:
    if not notebook.exists():
        return _all_reference(lesson, f"{lesson} not found")
    try:
        loaded = load_notebook(notebook, TIME_LIMIT, TIME_LIMIT, grading=False)
    except NotebookError:
        return _all_reference(lesson, f"{lesson} could not be read as a notebook")
    checks = checks_for(lesson)
    whose, status, mine = {}, {}, {}
    for name in ANSWER_KEY[lesson]:
        its_checks = [check for check in checks if check.target == name]
        failure = _first_failure(loaded, name, its_checks)
        if failure is None:
            whose[name], status[name] = YOURS, f"passes its {len(its_checks)} checks"
            mine[name] = loaded.module.__dict__[name]
        else:
            whose[name], status[name] = REFERENCE, failure
    return Carried(lesson, whose, status, mine)


def _first_failure(loaded: LoadedNotebook, name: str, checks: list[Check]) -> str | None:
    """Why the learner's ``name`` is not used, or None when it passes every check (the hidden ones included)."""
    if loaded.module.__dict__.get(name) is None:
        return "yours is not defined"
    for check in checks:
        outcome = loaded.outcome(check)
        if outcome.error == "not implemented yet":
            return "yours is not implemented yet"
        if not judge(check, outcome).passed:
            return f"yours fails {check.id}"
    return None


def _print_summary(carried: Carried) -> None:
    """One line for the objects that are yours, one for each that is the reference's."""
    if carried.mine:
        count = f"{len(carried.mine)} of {len(carried.whose)}"
        print(f"{carried.lesson}: using yours for {count} objects (they pass their checks)")
    for name, whose in carried.whose.items():
        if whose == REFERENCE:
            print(f"{name}: {REFERENCE} — {carried.status[name]}")
