"""The two JupyterLabs of the course: `make lab` for learners, `make lab-instructor` for instructors, one environment.

The learner's has none of nbgrader's instructor tools (the Create Assignment sidebar, the Formgrader, the Nbgrader
menu) and keeps Validate, which runs the lesson's graded cells and lists the ones that fail; the instructor's has the
tools, and its Formgrader opens on the course and lists the lessons. The views are the config folders jupyter/learner
and jupyter/instructor (see jupyter/README.md), read here as the Makefile has JupyterLab read them.
"""

from __future__ import annotations

from course import LESSONS
from lab_page import exactly, open_notebook

NOTEBOOK = "02_attention/02_attention.ipynb"
VALIDATE_TIMEOUT = 180_000  # ms: Validate starts a kernel and runs every graded cell


def menu_bar(page) -> list[str]:
    return page.locator(".lm-MenuBar-itemLabel").all_inner_texts()


def validate(page) -> str:
    """Click the notebook's Validate button; the text of the dialog with the result."""
    page.locator(".jp-NotebookPanel-toolbar").get_by_text("Validate", exact=True).click()
    dialog = page.locator(".jp-Dialog")
    dialog.get_by_text("Validation Results").wait_for(timeout=VALIDATE_TIMEOUT)
    text = dialog.inner_text()
    dialog.get_by_role("button", name="Ok").click()
    return text


def test_the_learners_lab_has_no_instructor_tools(learner) -> None:
    lab, page = learner
    open_notebook(page, lab.page_url(f"lessons/{NOTEBOOK}"))
    # Validate is nbgrader's too: once it shows, nbgrader's plugins have been activated, or left out
    page.locator(".jp-NotebookPanel-toolbar").get_by_text("Validate", exact=True).wait_for()
    assert "Nbgrader" not in menu_bar(page)
    assert page.locator(".jp-SideBar .lm-TabBar-tab", has_text="Create Assignment").count() == 0
    assert lab.status_of("formgrader") == 404


def test_validate_in_the_learners_lab_lists_the_unfinished_exercises(learner) -> None:
    lab, page = learner
    open_notebook(page, lab.page_url(f"lessons/{NOTEBOOK}"))
    result = validate(page)
    assert "The following cell failed" in result and "not implemented yet" in result
    open_notebook(page, lab.page_url(f"solutions/{NOTEBOOK}"))
    assert "Success! Your notebook passes all the tests." in validate(page)


def test_the_instructors_lab_has_formgrader_and_create_assignment(instructor) -> None:
    lab, page = instructor
    open_notebook(page, lab.page_url(f"solutions/{NOTEBOOK}"))
    assert "Nbgrader" in menu_bar(page)
    page.locator(".lm-MenuBar-itemLabel", has_text=exactly("Nbgrader")).click()
    items = page.locator(".lm-Menu .lm-Menu-itemLabel").all_inner_texts()
    assert {"Formgrader", "Create assignment"} <= set(items)
    page.keyboard.press("Escape")
    assert page.locator(".jp-SideBar .lm-TabBar-tab", has_text="Create Assignment").count() == 1

    page.goto(lab.page_url(query="formgrader=true"))
    assignments = page.frame_locator("iframe").locator("#main-table td.name")
    assignments.first.wait_for(timeout=60_000)
    assert assignments.all_inner_texts() == LESSONS
