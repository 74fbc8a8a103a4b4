"""What a learner sees after Run All, judged from the notebook JupyterLab saved (its model: outputs and execution
counts as the page shows them).

A solution: every check line is ✓ and every exercise's visible check printed one. A released lesson (nothing
implemented yet): every exercise's visible check printed exactly one "✗ <id> (0/p): not implemented yet" line, and no
other check line appears; a solution also shows a picture in every cell that calls ``plt.show()``. Both: no error
output, no traceback and nothing on stderr anywhere, and the last code cell ran (Run All stops at the first cell that
raises).
"""

from __future__ import annotations

import re
from collections import Counter

import nbformat

CHECK_LINE = re.compile(r"^([✓✗]) (\S+) \(\d+/\d+\): (.*)$", re.M)
CHECK_CALL = re.compile(r"check\(\s*\"([\w.]+)\"")
TRACEBACK = "Traceback (most recent call last)"


def graded_checks(cell: nbformat.NotebookNode) -> list[str]:
    """The visible check ids a graded cell runs (none for other cells; hidden checks are not in the release)."""
    if not cell.metadata.get("nbgrader", {}).get("grade"):
        return []
    return [check_id for check_id in CHECK_CALL.findall(cell.source) if not check_id.endswith(".hidden")]


def visible_checks(notebook: nbformat.NotebookNode) -> list[str]:
    """The check ids of the exercises' visible graded cells, in order."""
    return [check_id for cell in notebook.cells for check_id in graded_checks(cell)]


def check_lines(notebook: nbformat.NotebookNode) -> list[tuple[str, str, str]]:
    """Every verdict printed in the notebook, as (✓ or ✗, check id, message)."""
    printed = "".join(out.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                      for out in cell.outputs if out.output_type == "stream")  # fmt: skip
    return CHECK_LINE.findall(printed)


def errors(notebook: nbformat.NotebookNode) -> list[str]:
    """Every error output, and every traceback printed to a stream, each as one line naming the cell."""
    found = []
    for index, cell in enumerate(notebook.cells):
        for out in cell.get("outputs", []):
            if out.output_type == "error":
                found.append(f"cell {index}: {out.ename}: {out.evalue}")
            elif out.output_type == "stream" and TRACEBACK in out.text:
                found.append(f"cell {index}: a traceback on {out.name}")
    return found


def missing_pictures(notebook: nbformat.NotebookNode) -> list[str]:
    """Every code cell that calls ``plt.show()`` and shows no picture, as one line naming the cell."""
    return [f"cell {index}: plt.show() and no picture" for index, cell in enumerate(notebook.cells)
            if cell.cell_type == "code" and "plt.show()" in cell.source
            and not any("image/png" in out.get("data", {}) for out in cell.outputs)]  # fmt: skip


def stderr_lines(notebook: nbformat.NotebookNode) -> list[str]:
    """Everything written to stderr (warnings a learner sees in red), one line per output naming the cell."""
    return [f"cell {index}: on stderr: {out.text.strip().splitlines()[0][:120] if out.text.strip() else ''}"
            for index, cell in enumerate(notebook.cells) for out in cell.get("outputs", [])
            if out.output_type == "stream" and out.name == "stderr" and TRACEBACK not in out.text]  # fmt: skip


def problems(notebook: nbformat.NotebookNode, released: bool) -> list[str]:
    """What is wrong with what the learner sees, one line each; empty when all is as it should be."""
    found = errors(notebook) + stderr_lines(notebook)
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    if code_cells and code_cells[-1].execution_count is None:
        found.append("Run All stopped before the last cell")
    lines = check_lines(notebook)
    expected = Counter(visible_checks(notebook))
    if released:
        not_implemented = Counter(i for mark, i, message in lines if mark == "✗" and message == "not implemented yet")
        found += [f"{i}: {not_implemented[i]} 'not implemented yet' lines, not 1" for i in expected
                  if not_implemented[i] != 1]  # fmt: skip
        found += [f"unexpected: {mark} {i}: {message}" for mark, i, message in lines
                  if i not in expected or message != "not implemented yet"]  # fmt: skip
    else:
        found += missing_pictures(notebook)  # in a lesson, a picture may wait for an unfinished function
        found += [f"{mark} {i}: {message}" for mark, i, message in lines if mark != "✓"]
        passed = {i for mark, i, _ in lines if mark == "✓"}
        found += [f"{i}: no ✓ line" for i in expected if i not in passed]
    return found
