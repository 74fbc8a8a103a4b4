"""The browser suite's judge (learner_view.problems) fails on what a broken lesson would show: a traceback, Run All
stopped half way, a check that printed nothing or twice, a ✗ in a solution, a warning on stderr, a picture that does
not show. No browser: runs in make test too.

The notebooks are lesson 02 as committed, with the outputs a Run All would give: each code cell counted, and each
exercise's graded check cell printing its verdict, and each ``plt.show()`` cell showing a picture.
"""

from __future__ import annotations

import nbformat
from course import ROOT
from learner_view import TRACEBACK, graded_checks, problems, visible_checks

LESSON = "02_attention/02_attention.ipynb"


def run(kind: str, verdict: str) -> nbformat.NotebookNode:
    """The notebook as Run All leaves it when every visible check prints `verdict` ("✓ … correct", "✗ …")."""
    notebook = nbformat.read(ROOT / kind / LESSON, as_version=4)
    count = 0
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        count += 1
        cell.execution_count = count
        checks = graded_checks(cell)
        if "plt.show()" in cell.source:
            cell.outputs = [nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo="})]
        if checks:
            text = "".join(f"{verdict.format(i)}\n" for i in checks)
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]
    return notebook


def graded_cells(notebook: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [cell for cell in notebook.cells if graded_checks(cell)]


def released() -> nbformat.NotebookNode:
    return run("lessons", "✗ {} (0/1): not implemented yet")


def solved() -> nbformat.NotebookNode:
    return run("solutions", "✓ {} (1/1): correct")


def test_a_fresh_lesson_and_a_solution_as_they_should_look():
    assert len(visible_checks(released())) == 5
    assert problems(released(), released=True) == []
    assert problems(solved(), released=False) == []


def test_a_traceback_is_a_problem_as_an_error_output_or_printed():
    notebook = released()
    demo = max(index for index, cell in enumerate(notebook.cells) if cell.cell_type == "code")
    notebook.cells[demo].outputs = [nbformat.v4.new_output("error", ename="NotImplementedError", evalue="", traceback=[])]
    assert problems(notebook, released=True) == [f"cell {demo}: NotImplementedError: "]
    notebook = solved()
    setup = next(index for index, cell in enumerate(notebook.cells) if cell.cell_type == "code")
    notebook.cells[setup].outputs = [nbformat.v4.new_output("stream", name="stderr", text=f"{TRACEBACK}\n")]
    assert problems(notebook, released=False) == [f"cell {setup}: a traceback on stderr"]


def test_run_all_stopped_before_the_end():
    notebook = released()
    last = [cell for cell in notebook.cells if cell.cell_type == "code"][-1]
    last.execution_count = None
    assert problems(notebook, released=True) == ["Run All stopped before the last cell"]


def test_a_lesson_whose_check_printed_nothing_or_twice():
    notebook = released()
    first, second = graded_cells(notebook)[:2]
    first.outputs = []
    second.outputs = second.outputs * 2  # a check cell and a graded cell each printing it, as before issue 13
    assert problems(notebook, released=True) == [
        "attention.average_past: 0 'not implemented yet' lines, not 1",
        "attention.softmax: 2 'not implemented yet' lines, not 1",
    ]


def test_a_lesson_that_passes_a_check_or_a_solution_that_fails_one():
    notebook = released()
    graded_cells(notebook)[0].outputs[0].text = "✓ attention.average_past (1/1): correct\n"
    assert problems(notebook, released=True) == [
        "attention.average_past: 0 'not implemented yet' lines, not 1",
        "unexpected: ✓ attention.average_past: correct",
    ]
    notebook = solved()
    graded_cells(notebook)[1].outputs[0].text = "✗ attention.softmax (0/1): looks like: no max subtracted.\n"
    assert problems(notebook, released=False) == [
        "✗ attention.softmax: looks like: no max subtracted.",
        "attention.softmax: no ✓ line",
    ]


def test_a_warning_on_stderr_or_a_solutions_missing_picture():
    notebook = solved()
    picture = next(index for index, cell in enumerate(notebook.cells) if "plt.show()" in cell.source)
    notebook.cells[picture].outputs = []  # as under MPLBACKEND=Agg: plt.show() draws nothing
    setup = next(index for index, cell in enumerate(notebook.cells) if cell.cell_type == "code")
    warning = "UserWarning: something the learner did not ask for\n  warnings.warn(\n"
    notebook.cells[setup].outputs = [nbformat.v4.new_output("stream", name="stderr", text=warning)]
    assert problems(notebook, released=False) == [
        f"cell {setup}: on stderr: UserWarning: something the learner did not ask for",
        f"cell {picture}: plt.show() and no picture",
    ]
