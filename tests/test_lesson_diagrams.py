"""Every lesson has at least one diagram, and each one draws in the released lesson, before any exercise is done.

A diagram is a code cell tagged ``diagram`` (and ``demo``, so that no grader runs it). It draws with matplotlib from
the reference or from plain shapes, never from the learner's unfinished functions: here it runs after the released
lesson's setup cell alone (``yours(...)`` hands over the answer key, as while grading), headless (Agg), and must leave
a figure that renders with drawn artists in it. The browser suite (tests/browser) checks that a picture appears under
every ``plt.show()`` cell of the solutions in JupyterLab.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import nbformat
import numpy as np
import pytest

from autograder.loader import GRADING_ENV

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 (after the backend is chosen)

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted(path.name for path in (ROOT / "solutions").iterdir() if path.is_dir())
MIN_INK = 0.06  # the share of the rendered figure that is not background; an empty pair of axes is about 0.03


def _diagrams(lesson: str) -> list[tuple[int, nbformat.NotebookNode]]:
    nb = nbformat.read(ROOT / "lessons" / lesson / f"{lesson}.ipynb", as_version=4)
    return [(index, cell) for index, cell in enumerate(nb.cells)
            if cell.cell_type == "code" and "diagram" in cell.metadata.get("tags", [])]


def _ink(figure: plt.Figure) -> float:
    """The share of the figure's pixels that something was drawn on, once rendered (an artist that cannot be drawn
    raises here)."""
    figure.canvas.draw()
    pixels = np.asarray(figure.canvas.buffer_rgba())[..., :3]
    return float((pixels < 245).any(axis=-1).mean())


@pytest.mark.parametrize("lesson", LESSONS)
def test_a_lesson_has_a_diagram_that_no_grader_runs(lesson: str) -> None:
    diagrams = _diagrams(lesson)
    assert diagrams, f"{lesson}: no code cell tagged 'diagram'"
    for index, cell in diagrams:
        assert "demo" in cell.metadata.tags and "nbgrader" not in cell.metadata, f"{lesson} cell {index + 1}"


@pytest.mark.parametrize(("lesson", "index"), [(lesson, index) for lesson in LESSONS for index, _ in _diagrams(lesson)])
def test_a_diagram_draws_before_any_exercise_is_done(lesson: str, index: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(GRADING_ENV, "1")  # the setup cell's `yours(...)`: the answer key, at once and silently
    monkeypatch.chdir(ROOT / "lessons" / lesson)
    cells = nbformat.read(ROOT / "lessons" / lesson / f"{lesson}.ipynb", as_version=4).cells
    setup = next(cell for cell in cells if cell.cell_type == "code")
    namespace: dict = {}
    plt.close("all")
    exec(compile(setup.source, f"{lesson} setup", "exec"), namespace)
    shown = []
    monkeypatch.setattr(plt, "show", lambda *args, **kwargs: shown.append(plt.gcf()))
    exec(compile(cells[index].source, f"{lesson} cell {index + 1}", "exec"), namespace)
    assert shown, f"{lesson} cell {index + 1} never calls plt.show()"
    assert all(_ink(figure) >= MIN_INK for figure in shown), f"{lesson} cell {index + 1}: a figure is (nearly) empty"
    plt.close("all")
