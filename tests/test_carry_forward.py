"""The course runs as a chain: a lesson runs top to bottom in Jupyter on the learner's earlier objects, or on the
reference's with one-line notes where the learner's are not finished.

A throwaway course folder holds the lessons side by side, as a learner's does; each notebook is executed by a real
kernel (nbclient) in its own folder, with WORKBOOK_QUICK=1 so that the long demo cells run a few steps only. The
solutions of lessons 04-06 run here, so their check cells are checked here too (tests/test_run_all.py runs the others).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from kernels import assert_every_check_passes, code_cells, execute, kernel_environment, printed  # noqa: F401

from autograder.answer_key import ANSWER_KEY

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


def printed_by_each_cell(notebook: Path) -> list[str]:
    """Run the solution notebook; what each code cell printed. Every check cell, visible and hidden, passes."""
    nb = execute(notebook)
    assert_every_check_passes(nb)
    return [printed(cell) for cell in code_cells(nb)]


def test_lesson_04_runs_on_the_references_parts_next_to_a_blank_lesson_03(tmp_path: Path, kernel_environment) -> None:
    shutil.copytree(ROOT / "lessons" / "03_gpt_block", tmp_path / "03_gpt_block")
    shutil.copytree(ROOT / "solutions" / "04_training", tmp_path / "04_training")
    texts = printed_by_each_cell(tmp_path / "04_training" / "04_training.ipynb")
    setup = texts[0]
    assert setup.splitlines() == [f"{name}: the reference's — yours is not implemented yet"
                                  for name in ANSWER_KEY["03_gpt_block"]]  # fmt: skip
    assert "saved shakespeare_char.pt" in texts[-1]
    assert (tmp_path / "04_training" / "shakespeare_char.pt").exists()


def test_lesson_05_samples_from_the_learners_gpt_trained_on_the_spot_when_lesson_04s_model_is_missing(
    tmp_path: Path, kernel_environment
) -> None:
    for lesson in ("02_attention", "03_gpt_block", "05_generation"):
        shutil.copytree(ROOT / "solutions" / lesson, tmp_path / lesson)
    texts = printed_by_each_cell(tmp_path / "05_generation" / "05_generation.ipynb")
    assert texts[0] == "03_gpt_block: using yours for 7 of 7 objects (they pass their checks)\n"
    shakespeare = next(text for text in texts if "shakespeare_char.pt" in text)
    assert "shakespeare_char.pt not found: trained a small model for 20 steps instead" in shakespeare
    assert "skipped: GPT2_WEIGHTS=" in texts[-1]


def test_lesson_06_runs_on_the_references_parts_next_to_blank_lessons_01_to_05(
    tmp_path: Path, kernel_environment
) -> None:
    earlier = [lesson for lesson in ANSWER_KEY if lesson < "06_your_gpt"]
    for lesson in earlier:
        shutil.copytree(ROOT / "lessons" / lesson, tmp_path / lesson)
    shutil.copytree(ROOT / "solutions" / "06_your_gpt", tmp_path / "06_your_gpt")
    texts = printed_by_each_cell(tmp_path / "06_your_gpt" / "06_your_gpt.ipynb")
    assert texts[0].splitlines() == [f"{name}: the reference's — yours is not implemented yet"
                                       for lesson in earlier for name in ANSWER_KEY[lesson]]  # fmt: skip
    output = "".join(texts)
    assert "round trip of the whole corpus: True" in output
    assert "largest difference over 20 steps" in output and "✓ (atol 1e-4)" in output
    assert "step 20: train" in output and "bits/char" in output
    assert "identical tokens: True" in texts[-1]
