"""Every lesson, released and solved, run in JupyterLab the way a learner runs it: open it, Run → Run All Cells,
save, and judge what came out (learner_view.py): a solution shows every check ✓ and no error; a released lesson one
"✗ … not implemented yet" line per exercise, no traceback anywhere, and Run All reaches the last cell.

The notebooks run in order, lessons 01 → 06 and then the solutions, in a copy of the course: a later lesson loads
the earlier ones next to it (`yours(...)`) and lesson 05 samples from the model lesson 04 saved. A picture of each
notebook after its run goes to tests/browser/screenshots/ (git-ignored).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from course import LESSONS
from lab_page import open_notebook, run_all_cells, save_notebook, screenshot_notebook
from learner_view import problems

SCREENSHOTS = Path(__file__).parent / "screenshots"
NOTEBOOKS = [f"{kind}/{lesson}/{lesson}.ipynb" for kind in ("lessons", "solutions") for lesson in LESSONS]
# tqdm.auto draws its progress bars as widgets (ipywidgets) in JupyterLab, not as text on stderr
PROGRESS_BAR = "solutions/04_training/04_training.ipynb"
RUN_ALL_TIMEOUT = 420  # s per notebook; the slowest takes under 40 s on 2 cores (WORKBOOK_QUICK)


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_run_all_in_jupyterlab(notebook: str, learner) -> None:
    lab, page = learner
    open_notebook(page, lab.page_url(notebook))
    run_all_cells(page, RUN_ALL_TIMEOUT)
    saved = save_notebook(page, lab.root / notebook)
    kind, lesson, _ = notebook.split("/")
    screenshot_notebook(page, SCREENSHOTS / f"{kind}-{lesson}.png")

    assert problems(saved, released=kind == "lessons") == []
    if notebook == PROGRESS_BAR:
        assert page.locator(".jp-OutputArea-output .widget-hprogress").count() > 0, "no progress bar widget"
