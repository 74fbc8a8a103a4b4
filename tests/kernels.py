"""Notebooks executed the way a learner runs them: a real kernel (nbclient), every cell in order, in the notebook's
own folder. nbclient stops at the first cell whose reply is an error, as JupyterLab's Run All does."""

from __future__ import annotations

import os
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from autograder.core import VERDICT_LINE
from autograder.loader import GRADING_ENV

ROOT = Path(__file__).resolve().parents[1]
# one check cell's verdict: mark, check id, points, maximum, message


@pytest.fixture
def kernel_environment(monkeypatch: pytest.MonkeyPatch, shakespeare_path: Path) -> None:
    """What the kernels inherit: this checkout first on the path, few steps, no grading flags, no GPT-2 weights."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("WORKBOOK_QUICK", "1")
    monkeypatch.setenv("GPT2_WEIGHTS", str(ROOT / "no GPT-2 weights here"))  # lesson 05's GPT-2 demo says so, skips
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.delenv(GRADING_ENV, raising=False)


def execute(notebook: Path) -> nbformat.NotebookNode:
    """Run every cell of the notebook in a fresh kernel, in its folder; the notebook with its outputs."""
    nb = nbformat.read(notebook, as_version=4)
    resources = {"metadata": {"path": str(notebook.parent)}}
    NotebookClient(nb, timeout=300, kernel_name="python3", resources=resources).execute()
    return nb


def printed(cell: nbformat.NotebookNode) -> str:
    """What a code cell printed."""
    return "".join(output.get("text", "") for output in cell.outputs if output.output_type == "stream")


def code_cells(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def graded_cells(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    """nbgrader's graded test cells: each exercise's check cell and its hidden one."""
    return [cell for cell in nb.cells if cell.metadata.get("nbgrader", {}).get("grade")
            and not cell.metadata["nbgrader"].get("solution")]  # fmt: skip


def assert_every_check_passes(nb: nbformat.NotebookNode) -> None:
    """Each graded cell, visible and hidden, printed one ✓ for its check with full points; nothing else did."""
    for cell in graded_cells(nb):
        verdicts = VERDICT_LINE.findall(printed(cell))
        check_id = re.search(r'\bcheck\("([\w.]+)"', cell.source).group(1)
        assert len(verdicts) == 1, (cell.metadata.nbgrader.grade_id, printed(cell))
        mark, printed_id, points, max_points, _ = verdicts[0]
        assert (mark, printed_id, points) == ("✓", check_id, max_points), verdicts[0]
    others = [cell for cell in code_cells(nb) if cell not in graded_cells(nb)]
    assert not any(VERDICT_LINE.search(printed(cell)) for cell in others)
