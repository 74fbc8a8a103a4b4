"""The reference is the lessons' answer key: every object a lesson grades is importable from ``gpt_reference`` by
the name the lesson gives it (or is the PyTorch operation the reference calls), and the checks judge against that
object, never against a second copy written in ``autograder/checks``."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import pytest

from autograder.answer_key import ANSWER_KEY, answer_key, resolve
from autograder.core import checks_for

CHECK_MODULES = Path(__file__).parents[1] / "autograder" / "checks"
LESSONS = sorted(ANSWER_KEY)
# Checks whose judge uses a stand-in for the reference, and why. The stand-in must be built on the reference.
JUDGING_STAND_INS = {
    # random draws: the stand-in replaces only torch.multinomial by exact quantile draws, so the expected token
    # frequencies carry no sampling noise; the reference's own sample_next passes (tests/test_generation_checks.py)
    "sample_next": "autograder.checks.generation.sample_next_by_quantiles",
}


def _graded_targets(lesson: str) -> set[str]:
    return {check.target for check in checks_for(lesson)}


def test_every_lesson_with_checks_has_an_answer_key():
    lessons_with_checks = {check.lesson for check in _all_checks()}
    assert lessons_with_checks == set(ANSWER_KEY)


def _all_checks():
    """The course's checks: those of autograder/checks/, not the test-only 99_demo lesson's, which other tests in the
    same run register through AUTOGRADER_CHECKS."""
    from autograder.core import CHECKS, _load_all_checks

    _load_all_checks()
    return [check for check in CHECKS.values() if check.probe.__module__.startswith("autograder.checks.")]


@pytest.mark.parametrize("lesson", LESSONS)
def test_the_key_lists_exactly_the_graded_objects(lesson):
    assert set(ANSWER_KEY[lesson]) == _graded_targets(lesson)


@pytest.mark.parametrize(("lesson", "name"), [(lesson, name) for lesson in LESSONS for name in ANSWER_KEY[lesson]])
def test_each_graded_object_is_importable_from_the_reference_by_its_lesson_name(lesson, name):
    path = ANSWER_KEY[lesson][name]
    obj = resolve(path)
    module = getattr(obj, "__module__", "") or ""
    if path.startswith("gpt_reference."):
        assert path.rsplit(".", 1)[1] == name, "the reference's object has the lesson's name"
        assert module.startswith("gpt_reference"), f"{path} is defined in {module}, not in gpt_reference"
    else:  # a PyTorch operation the reference itself calls
        assert path.startswith("torch."), path
        reference_sources = "\n".join(p.read_text() for p in (Path(__file__).parents[1] / "gpt_reference").rglob("*.py"))
        short = path.rsplit(".", 1)[1]
        assert re.search(rf"\b{re.escape(short)}\b", reference_sources), f"gpt_reference never calls {path}"


@pytest.mark.parametrize("lesson", LESSONS)
def test_visible_checks_judge_against_the_answer_key(lesson):
    key = answer_key(lesson)
    for check in checks_for(lesson):
        if check.target in JUDGING_STAND_INS:
            assert check.reference is resolve(JUDGING_STAND_INS[check.target])
        elif not check.hidden:
            reference = check.reference
            if isinstance(reference, functools.partial):  # a default argument the torch op lacks (softmax's dim)
                reference = reference.func
            assert reference is key[check.target], f"{check.id} judges against a copy, not {ANSWER_KEY[lesson][check.target]}"


def test_no_reference_implementation_is_written_again_in_the_checks():
    pattern = re.compile(r"^def (\w*_reference)\(", re.MULTILINE)
    copies = [f"{path.name}: {name}" for path in sorted(CHECK_MODULES.glob("*.py")) for name in pattern.findall(path.read_text())]
    assert not copies, copies
