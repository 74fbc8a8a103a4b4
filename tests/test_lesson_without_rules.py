"""An exercise that forbids a ready-made implementation says so, in the words the checks enforce: "without `X`".

A check's ``forbidden`` names the APIs it flags while it probes the learner's object; the learner must have been told.
The text of an exercise is the markdown between the previous exercise's graded cells and its answer cell; each name its
visible check forbids must appear there inside a "without ..." clause of backticked names (``without `nn.LayerNorm` or
`F.layer_norm```). tests/test_ownwork.py checks the other direction: every "without `X`" of the text is flagged.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from autograder.core import checks_for, get_check

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted(path.name for path in (ROOT / "solutions").iterdir() if path.is_dir())
IN_WORDS = {"nn.Module": "building a model"}  # count_params: no module may be built; the text says it in words
RULES = {check.id: [IN_WORDS.get(name, name) for name in check.forbidden]
         for lesson in LESSONS for check in checks_for(lesson) if check.forbidden and not check.hidden}
NAMES = r"`[^`]+`(?:(?:,| or| and| nor)\s+`[^`]+`)*"
WITHOUT = re.compile(rf"without\s+({NAMES}|building a model)")


def exercise_text(check_id: str) -> str:
    """The markdown that introduces the exercise of ``check_id``: after the last graded cell before its answer cell."""
    check = get_check(check_id)
    cells = nbformat.read(ROOT / "solutions" / check.lesson / f"{check.lesson}.ipynb", as_version=4).cells
    answer = next(index for index, cell in enumerate(cells) if cell.metadata.get("nbgrader", {}).get("solution")
                  and re.search(rf"^(class|def) {check.target}\b", cell.source, re.MULTILINE))
    start = max((index for index in range(answer) if cells[index].metadata.get("nbgrader", {}).get("grade")), default=0)
    return "\n".join(cell.source for cell in cells[start:answer] if cell.cell_type == "markdown")


def without(text: str) -> set[str]:
    """Every name in a "without ..." clause of text."""
    names = set()
    for clause in WITHOUT.findall(" ".join(text.split())):
        names |= set(re.findall(r"`([^`]+)`", clause)) or {clause}
    return names


def test_the_exercises_that_forbid_an_api() -> None:
    assert set(RULES) == {"attention.softmax", "attention.scaled_dot_product_attention", "gpt_block.layer_norm",
                          "gpt_block.gelu", "gpt_block.count_params", "training.cross_entropy", "training.adamw",
                          "training.clip_grad_norm"}


@pytest.mark.parametrize("check_id", RULES)
def test_an_exercise_says_without_each_api_it_forbids(check_id: str) -> None:
    missing = set(RULES[check_id]) - without(exercise_text(check_id))
    assert not missing, f"{check_id}: the exercise text must say 'without `X`' for {sorted(missing)}"


def test_the_clause_reads_lists_and_nothing_after_them() -> None:
    assert without("Write it without `nn.LayerNorm` or `F.layer_norm`. Use `torch.sqrt`.") == {"nn.LayerNorm",
                                                                                               "F.layer_norm"}
    assert without("without `a`, `b` or `c` (the method)") == {"a", "b", "c"}
    assert without("by formula, without building a model.") == {"building a model"}
    assert without("Checked against `F.cross_entropy`.") == set()
