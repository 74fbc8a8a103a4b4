"""The course runs as a chain: a lesson runs top to bottom in Jupyter on the learner's earlier objects, or on the
reference's with one-line notes where the learner's are not finished.

A throwaway course folder holds the lessons side by side, as a learner's does; each notebook is executed by a real
kernel (nbclient) in its own folder, with WORKBOOK_QUICK=1 so that the long demo cells run a few steps only.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from autograder.answer_key import ANSWER_KEY
from autograder.loader import GRADING_ENV

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def kernel_environment(monkeypatch: pytest.MonkeyPatch, shakespeare_path: Path) -> None:
    """What the kernels inherit: this checkout first on the path, few steps, no grading flags, no GPT-2 weights."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("WORKBOOK_QUICK", "1")
    monkeypatch.setenv("GPT2_WEIGHTS", str(ROOT / "no GPT-2 weights here"))  # lesson 05's GPT-2 demo says so, skips
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.delenv(GRADING_ENV, raising=False)


def execute(notebook: Path) -> list[str]:
    """Run every cell of the notebook in a fresh kernel, in its folder; each code cell's printed text."""
    nb = nbformat.read(notebook, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(notebook.parent)}}).execute()
    return ["".join(out.get("text", "") for out in cell.outputs if out.output_type == "stream")
            for cell in nb.cells if cell.cell_type == "code"]  # fmt: skip


def test_lesson_04_runs_on_the_references_parts_next_to_a_blank_lesson_03(tmp_path: Path, kernel_environment) -> None:
    shutil.copytree(ROOT / "lessons" / "03_gpt_block", tmp_path / "03_gpt_block")
    shutil.copytree(ROOT / "solutions" / "04_training", tmp_path / "04_training")
    printed = execute(tmp_path / "04_training" / "04_training.ipynb")
    setup = printed[0]
    assert setup.splitlines() == [f"{name}: the reference's — yours is not implemented yet"
                                  for name in ANSWER_KEY["03_gpt_block"]]  # fmt: skip
    assert "saved shakespeare_char.pt" in printed[-1]
    assert (tmp_path / "04_training" / "shakespeare_char.pt").exists()


def test_lesson_05_samples_from_the_learners_gpt_trained_on_the_spot_when_lesson_04s_model_is_missing(
    tmp_path: Path, kernel_environment
) -> None:
    for lesson in ("02_attention", "03_gpt_block", "05_generation"):
        shutil.copytree(ROOT / "solutions" / lesson, tmp_path / lesson)
    printed = execute(tmp_path / "05_generation" / "05_generation.ipynb")
    assert printed[0] == "03_gpt_block: using yours for 7 of 7 objects (they pass their checks)\n"
    shakespeare = next(text for text in printed if "shakespeare_char.pt" in text)
    assert "shakespeare_char.pt not found: trained a small model for 20 steps instead" in shakespeare
    assert "skipped: GPT2_WEIGHTS=" in printed[-1]


def test_lesson_06_runs_on_the_references_parts_next_to_blank_lessons_01_to_05(
    tmp_path: Path, kernel_environment
) -> None:
    earlier = [lesson for lesson in ANSWER_KEY if lesson < "06_your_gpt"]
    for lesson in earlier:
        shutil.copytree(ROOT / "lessons" / lesson, tmp_path / lesson)
    shutil.copytree(ROOT / "solutions" / "06_your_gpt", tmp_path / "06_your_gpt")
    printed = execute(tmp_path / "06_your_gpt" / "06_your_gpt.ipynb")
    assert printed[0].splitlines() == [f"{name}: the reference's — yours is not implemented yet"
                                       for lesson in earlier for name in ANSWER_KEY[lesson]]  # fmt: skip
    output = "".join(printed)
    assert "round trip of the whole corpus: True" in output
    assert "largest difference over 20 steps" in output and "✓ (atol 1e-4)" in output
    assert "step 20: train" in output and "bits/char" in output
    assert "identical tokens: True" in printed[-1]
