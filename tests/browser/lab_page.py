"""What a learner does to a notebook in JupyterLab, through a real browser page: open it, wait for the kernel, Run
All Cells from the menu, save, and a picture of the whole notebook.

Pitfalls these functions handle (each seen when this was first tried):

- the kernel reports idle before it is ready: wait for the status bar's "<kernel> | Idle", not for the first idle
  message, before running anything;
- "no cell is running" is also true in the instant after Run All, before the first cell is queued: wait for the first
  code cell's execution count too;
- JupyterLab 4 renders only the cells on screen by default; the server's settings (lab_server.TEST_SETTINGS) render
  them all, and what the learner sees is read from the saved file, which holds the notebook model as JupyterLab has
  it (outputs, widget views, execution counts).
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import TYPE_CHECKING

import nbformat
from PIL import Image

if TYPE_CHECKING:  # only for the hints: plain `make test` collects this suite where playwright is not installed
    from playwright.sync_api import Page

KERNEL_READY = 180_000  # ms: a cold start of the kernel (torch, the course's packages) on a loaded 2-core machine

# every code cell has run or was never reached (no "[*]"), and the first one has an execution count; the status bar
# says the kernel is idle
RUN_FINISHED = """() => {
    const prompts = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')].map(p => p.textContent);
    const status = document.querySelector('#jp-main-statusbar')?.textContent ?? '';
    return prompts.length > 0 && /\\[\\d+\\]/.test(prompts[0]) && !prompts.some(p => p.includes('*'))
        && /\\| Idle/.test(status);
}"""


def open_notebook(page: Page, url: str) -> None:
    """Open the notebook at `url` and wait until its kernel is ready to run cells."""
    page.goto(url)
    page.locator(".jp-NotebookPanel").wait_for(timeout=KERNEL_READY)
    page.locator("#jp-main-statusbar").get_by_text("| Idle").wait_for(timeout=KERNEL_READY)


def menu(page: Page, top: str, item: str) -> None:
    """Click an item of the main menu by the labels a learner reads, e.g. menu(page, "Run", "Run All Cells")."""
    page.locator(".lm-MenuBar-itemLabel", has_text=exactly(top)).click()
    page.locator(".lm-Menu .lm-Menu-itemLabel", has_text=exactly(item)).click()


def exactly(text: str) -> re.Pattern:
    return re.compile(f"^{re.escape(text)}$")


def run_all_cells(page: Page, timeout_s: float) -> None:
    """Run → Run All Cells, and wait until the kernel has finished (or stopped at an error)."""
    menu(page, "Run", "Run All Cells")
    page.wait_for_function(RUN_FINISHED, timeout=timeout_s * 1000, polling=500)


def save_notebook(page: Page, path: Path) -> nbformat.NotebookNode:
    """File → Save Notebook; the notebook as saved, read back from `path` once the tab is no longer dirty."""
    menu(page, "File", "Save Notebook")
    page.locator(".lm-DockPanel-tabBar .lm-mod-current.jp-mod-dirty").wait_for(state="detached")
    return nbformat.read(path, as_version=4)


def screenshot_notebook(page: Page, path: Path) -> None:
    """A picture of the whole notebook, top to bottom: the notebook's scrolling area shot one screenful at a time and
    stitched (a single tall shot would hit the browser's texture limit on long lessons)."""
    page.add_style_tag(content=".jp-NotebookPanel-toolbar { box-shadow: none !important; }")  # no seams between shots
    scroller = page.locator(".jp-NotebookPanel .jp-WindowedPanel-outer")
    box = scroller.bounding_box()
    total, visible = scroller.evaluate("el => [el.scrollHeight, el.clientHeight]")
    picture = Image.new("RGB", (round(box["width"]), total), "white")
    top = 0
    while True:
        top = scroller.evaluate("(el, y) => { el.scrollTop = y; return el.scrollTop; }", top)
        page.wait_for_timeout(100)  # let the images and widgets of the new screenful paint
        shot = Image.open(io.BytesIO(page.screenshot(clip={**box, "height": visible})))
        picture.paste(shot, (0, top))
        if top + visible >= total:
            break
        top += visible
    path.parent.mkdir(parents=True, exist_ok=True)
    picture.save(path)
