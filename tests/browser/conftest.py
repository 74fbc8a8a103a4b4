"""The real-browser suite: JupyterLab driven by headless Chromium through Playwright, as a learner or an instructor
uses it. `make test-browser` runs it; a plain `pytest` (`make test`) skips it with the reason, so CI runs it once.

It needs Chromium (Debian's `chromium` package, or any Chrome; CHROMIUM=<path> picks one) and the `playwright`
Python package (`pip install -e '.[browser]'`). Playwright drives the system's Chromium: `playwright install`,
which downloads browsers of its own, is not needed.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from course import ROOT, copy_course
from lab_server import JupyterLab

from autograder.loader import GRADING_ENV

ENABLE = "WORKBOOK_BROWSER_TESTS"  # set to 1 by `make test-browser`
INSTALL = "install Debian's chromium (apt-get install chromium) and pip install -e '.[browser]'"


def find_chromium() -> str | None:
    """The Chromium to drive: $CHROMIUM, else Debian's real binary (/usr/bin/chromium is a shell script that adds
    flags from /etc/chromium.d), else whichever chromium or chrome is on the PATH."""
    candidates = [os.environ.get("CHROMIUM"), "/usr/lib/chromium/chromium"]
    candidates += [shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome")]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


def missing() -> bool:
    return find_chromium() is None or importlib.util.find_spec("playwright") is None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the tests that need a browser, saying why, unless `make test-browser` asked for them (which then fail
    where Chromium or playwright is missing, rather than pass without running)."""
    if os.environ.get(ENABLE) == "1":
        return
    reason = f"no Chromium/playwright: {INSTALL}" if missing() else f"runs in make test-browser ({ENABLE}=1)"
    for item in items:
        if "browser" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium, one for the session (each test opens its own context: fresh cookies and storage)."""
    if missing():
        pytest.fail(f"{ENABLE}=1 but no Chromium/playwright: {INSTALL}")
    from playwright.sync_api import sync_playwright

    args = ["--no-sandbox"] if os.geteuid() == 0 else []  # Chromium's sandbox refuses to run as root
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=find_chromium(), args=args)
        yield chromium
        chromium.close()


def kernel_environment(shakespeare: Path) -> dict[str, str]:
    """What the server and its kernels inherit: this checkout first on the path, the long demos cut short
    (WORKBOOK_QUICK=1, as in tests/test_carry_forward.py), the data, no grading flags, no GPT-2 weights, and
    matplotlib's own choice of backend (the kernel's inline one: CI's MPLBACKEND=Agg would hide every picture)."""
    dropped = ("NBGRADER_EXECUTION", GRADING_ENV, "MPLBACKEND")
    env = {key: value for key, value in os.environ.items() if key not in dropped}
    env.update(
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
        WORKBOOK_QUICK="1",
        GPT_DATA_DIR=str(shakespeare.parent),
        GPT2_WEIGHTS=str(ROOT / "no GPT-2 weights here"),  # lesson 05's GPT-2 demo says so and skips
    )
    return env


def serve(view: str, tmp_path_factory: pytest.TempPathFactory, shakespeare: Path) -> Iterator[JupyterLab]:
    lab = JupyterLab(
        view,
        root=copy_course(tmp_path_factory.mktemp(f"{view}_course")),
        home=tmp_path_factory.mktemp(f"{view}_jupyter"),
        env=kernel_environment(shakespeare),
    )
    try:
        lab.start()
        yield lab
    finally:
        lab.stop()
    assert lab.leftover_processes() == []


@pytest.fixture(scope="session")
def learner_lab(tmp_path_factory: pytest.TempPathFactory, shakespeare_path: Path) -> Iterator[JupyterLab]:
    """The learner's JupyterLab (`make lab`'s view) on a copy of the course."""
    yield from serve("learner", tmp_path_factory, shakespeare_path)


@pytest.fixture(scope="session")
def instructor_lab(tmp_path_factory: pytest.TempPathFactory, shakespeare_path: Path) -> Iterator[JupyterLab]:
    """The instructor's JupyterLab (`make lab-instructor`'s view) on a copy of the course."""
    yield from serve("instructor", tmp_path_factory, shakespeare_path)


@pytest.fixture
def page(browser):
    """A fresh page, 1280×900, in a context of its own."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield context.new_page()
    context.close()


@pytest.fixture
def learner(learner_lab: JupyterLab, page):
    """The learner's lab and a page on it; the kernels the test started are shut down after it."""
    yield learner_lab, page
    learner_lab.shut_down_kernels()


@pytest.fixture
def instructor(instructor_lab: JupyterLab, page):
    """The instructor's lab and a page on it; the kernels the test started are shut down after it."""
    yield instructor_lab, page
    instructor_lab.shut_down_kernels()
