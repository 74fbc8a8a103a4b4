"""Hints on demand: ``hint("attention.softmax")`` in a cell prints the next hint for that exercise.

Every exercise has two or more levels, keyed by its visible check id: first a nudge (where to look, which property
matters), then the key idea (the method, the shapes, the formula in words). No level is the solution: a hint never
holds a line of the answer's code, so the learner still writes it (``tests/test_hints.py`` holds every hint against
the solutions notebooks). A learner who has read every level is pointed back to the lesson text.

The levels seen are remembered per notebook folder, which is the kernel's working directory, in ``.hints.json``
(``{check_id: levels seen}``): the next call, or a new kernel, goes on from there, and ``python -m autograder status``
counts them. A folder that cannot be written (read-only, a full disk) is no reason to fail the cell: the hint is
printed and this kernel remembers it. While a notebook is graded (``core.grading()``) ``hint`` prints nothing and
writes nothing: a grader running the notebook is not the learner asking, and it does not write into a submission.
"""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path

from .core import grading

HINTS_FILE = ".hints.json"

# (folder, check id) → levels seen in this kernel: what a folder that cannot be written still remembers
_seen_in_kernel: dict[tuple[str, str], int] = {}


def hint(check_id: str) -> None:
    """Print the next hint for the exercise checked by ``check_id`` (as in its check cell: ``"attention.softmax"``)."""
    if grading():
        return
    exercise = _exercise(check_id)
    if exercise is None:
        return
    levels = HINTS[exercise]
    folder = Path.cwd()
    seen = max(_read(folder).get(exercise, 0), _seen_in_kernel.get((str(folder), exercise), 0))
    if seen >= len(levels):
        print(f"no more hints for {exercise}: that was all {len(levels)}. The lesson text above the exercise, and the "
              f"diagnosis its check cell prints, say the rest. The last one again:")  # fmt: skip
    level = min(seen + 1, len(levels))
    print(f"hint {level} of {len(levels)} · {exercise}: {levels[level - 1]}")
    _seen_in_kernel[(str(folder), exercise)] = level
    _record(folder, exercise, level)


def hints_used(folder: str | os.PathLike) -> int:
    """How many hints were read in a notebook folder: the levels seen, summed over its exercises."""
    return sum(_read(Path(folder)).values())


def _exercise(check_id: object) -> str | None:
    """The exercise a check id names (a hidden check's is its visible twin's), or None after saying why not."""
    if not isinstance(check_id, str):
        print(f'hint takes the check id of an exercise, in quotes, as its check cell has it: hint("attention.softmax"), '
              f"not {type(check_id).__name__}")  # fmt: skip
        return None
    exercise = check_id.strip().removesuffix(".hidden")
    if exercise in HINTS:
        return exercise
    close = difflib.get_close_matches(exercise, HINTS, n=3, cutoff=0.6)
    suggestion = f"did you mean {' or '.join(close)}?" if close else "its check cell has the id, e.g. attention.softmax"
    print(f"no hints for {check_id!r}: {suggestion}")
    return None


def _read(folder: Path) -> dict[str, int]:
    """The levels seen in a folder, as its hints file has them; nothing when it is missing or unreadable."""
    try:
        stored = json.loads((folder / HINTS_FILE).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(stored, dict):
        return {}
    return {key: value for key, value in stored.items() if type(value) is int and value > 0}


def _record(folder: Path, exercise: str, level: int) -> None:
    seen = _read(folder)
    seen[exercise] = max(seen.get(exercise, 0), level)
    try:
        (folder / HINTS_FILE).write_text(json.dumps(seen, indent=1, sort_keys=True) + "\n")
    except OSError:
        pass  # a read-only folder: this kernel remembers (_seen_in_kernel), and the hint was printed


# ---- the hints, by exercise -----------------------------------------------------------------------------------------
# Level 1 nudges (where to look, which property matters); the last level gives the key idea (method, shapes, formula
# in words). Never code that solves the exercise. docs/authoring.md, "Hints", says how to write them.

HINTS: dict[str, tuple[str, ...]] = {
    # 02_attention
    "attention.softmax": (
        "Softmax does not change when the same number is subtracted from every entry along `dim`. Which number keeps "
        "exp() from ever overflowing?",
        "Subtract the largest entry along `dim` (keep that dimension so it broadcasts), exponentiate, then divide by "
        "the sum along the same `dim`, again keeping the dimension. Every reduction uses `dim`, never a fixed axis.",
    ),
}
