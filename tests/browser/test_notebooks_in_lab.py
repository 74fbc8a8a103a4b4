"""Every lesson, released and solved, run in JupyterLab the way a learner runs it: open it, Run → Run All Cells,
and read what came out.

- a solution: every check prints ✓, nothing prints an error;
- a released lesson (nothing implemented yet): each exercise's visible check prints one "✗ … not implemented yet"
  line, nothing prints a traceback, and Run All reaches the last cell.

The notebooks run in order, lessons 01 → 06 and then the solutions, in a copy of the course: a later lesson loads
the earlier ones next to it (`yours(...)`) and lesson 05 samples from the model lesson 04 saved. A picture of each
notebook after its run goes to tests/browser/screenshots/ (git-ignored).
"""

from __future__ import annotations

import re
from collections import Counter

from pathlib import Path

import nbformat
import pytest
from course import LESSONS
from lab_page import open_notebook, run_all_cells, save_notebook, screenshot_notebook

SCREENSHOTS = Path(__file__).parent / "screenshots"  # git-ignored
NOTEBOOKS = [f"{kind}/{lesson}/{lesson}.ipynb" for kind in ("lessons", "solutions") for lesson in LESSONS]
# tqdm.auto draws its progress bars as widgets (ipywidgets) in JupyterLab, not as text on stderr
PROGRESS_BAR = "solutions/04_training/04_training.ipynb"
RUN_ALL_TIMEOUT = 420  # s per notebook; the slowest, lesson 06's solution, takes about 1 min here (WORKBOOK_QUICK)

CHECK_LINE = re.compile(r"^([✓✗]) (\S+) \((\d+)/(\d+)\): (.*)$", re.M)
CHECK_CALL = re.compile(r"check\(\s*\"([\w.]+)\"")
TRACEBACK = "Traceback (most recent call last)"


def visible_checks(notebook: nbformat.NotebookNode) -> list[str]:
    """The check ids of the exercises' visible graded cells (hidden checks are not in the released lesson)."""
    return [check_id for cell in notebook.cells if cell.metadata.get("nbgrader", {}).get("grade")
            for check_id in CHECK_CALL.findall(cell.source) if not check_id.endswith(".hidden")]  # fmt: skip


def printed(notebook: nbformat.NotebookNode) -> str:
    return "".join(out.get("text", "") for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs
                   if out.output_type == "stream")  # fmt: skip


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


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_run_all_in_jupyterlab(notebook: str, learner) -> None:
    lab, page = learner
    open_notebook(page, lab.page_url(notebook))
    run_all_cells(page, RUN_ALL_TIMEOUT)
    saved = save_notebook(page, lab.root / notebook)
    kind, lesson, _ = notebook.split("/")
    screenshot_notebook(page, SCREENSHOTS / f"{kind}-{lesson}.png")

    if notebook == PROGRESS_BAR:
        assert page.locator(".jp-OutputArea-output .widget-hprogress").count() > 0, "no progress bar widget"
    code_cells = [cell for cell in saved.cells if cell.cell_type == "code"]
    assert errors(saved) == []
    assert code_cells[-1].execution_count is not None, "Run All stopped before the last cell"
    lines = CHECK_LINE.findall(printed(saved))
    expected = visible_checks(saved)
    if notebook.startswith("solutions/"):
        assert [line for line in lines if line[0] != "✓"] == []
        assert set(expected) <= {check_id for _, check_id, *_ in lines}
    else:
        not_implemented = Counter(check_id for mark, check_id, _, _, message in lines
                                  if mark == "✗" and message == "not implemented yet")  # fmt: skip
        assert len(lines) == len(expected) and not_implemented == Counter(expected)

