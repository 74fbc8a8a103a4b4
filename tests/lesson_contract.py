"""The contract every lesson's checks are tested against, written once for all lessons' check tests.

``mistake_catalogue_tests``: ``checks`` are a lesson's registered checks; ``mutants`` maps a target name to
``{mistake name: learner-style wrong implementation}``, written in the test file independently of the variants in
``autograder/checks``. ``crashes`` names the (check id, mistake) pairs where the mutant raises on that check's probe,
as the learner's code would (a window past the end of short data cannot be stacked): there it must fail with its own
error instead.

``solution_notebook_tests``: the lesson's source notebook passes every check, and its graded cells award each
check's points.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from autograder import get_check, run_check
from autograder.core import ProbeOutcome, _matches, _reference_outputs, judge
from autograder.loader import load_notebook

SOLUTIONS = Path(__file__).parents[1] / "solutions"


def mistake_catalogue_tests(checks, mutants, crashes=frozenset()):
    """The four tests, to assign to ``test_*`` names in a lesson's test module so that pytest collects them."""
    cases = [(c.id, m.name) for c in checks for m in c.mistakes]

    @pytest.mark.parametrize(("check_id", "mistake"), cases)
    def test_every_mistake_is_named(check_id, mistake):
        result = run_check(check_id, mutants[get_check(check_id).target][mistake])
        assert not result.passed and result.points == 0
        if (check_id, mistake) in crashes:
            assert result.mistake is None and " raised " in result.message, result.message
            return
        assert result.mistake == mistake, result.message
        assert result.message.startswith(f"looks like: {mistake}.")

    def test_every_mutant_is_in_the_catalogue():
        catalogue = {(c.target, m.name) for c in checks for m in c.mistakes}
        written = {(target, name) for target, by_name in mutants.items() for name in by_name}
        assert written == catalogue

    @pytest.mark.parametrize(("check_id", "mistake"), cases)
    def test_each_catalogued_variant_is_named_as_itself(check_id, mistake):
        """The judge names the first mistake whose outputs match, so a variant named as another (or passing)
        would make that name ambiguous. The variant's outputs are judged as they are: handed in as an answer, the
        checks' own code is not the learner's (``autograder.ownwork``)."""
        check = get_check(check_id)
        variant = next(m for m in check.mistakes if m.name == mistake)
        outputs = _reference_outputs(check, variant.implementation)
        assert judge(check, ProbeOutcome(outputs=outputs)).mistake == mistake

    @pytest.mark.parametrize("check_id", [c.id for c in checks])
    def test_no_two_variants_agree(check_id):
        """On each probe the reference and every mistake give outputs that the check's tolerance tells apart."""
        check = get_check(check_id)
        outputs = [("reference", _reference_outputs(check, check.reference))]
        outputs += [(m.name, _reference_outputs(check, m.implementation)) for m in check.mistakes]
        for i, (a, out_a) in enumerate(outputs):
            for b, out_b in outputs[i + 1 :]:
                assert not _matches(out_a, out_b, check.atol, check.rtol), f"{a} and {b} agree on {check_id}'s probe"

    return (
        test_every_mistake_is_named,
        test_every_mutant_is_in_the_catalogue,
        test_each_catalogued_variant_is_named_as_itself,
        test_no_two_variants_agree,
    )


def solution_notebook_tests(lesson, checks):
    """The module-scoped ``solution`` fixture (the source notebook's objects, loaded as the graders load them) and
    the test that it passes every check for the points its graded cells award."""
    path = SOLUTIONS / lesson / f"{lesson}.ipynb"

    @pytest.fixture(scope="module")
    def solution():
        notebook = load_notebook(path)
        assert not notebook.problems
        return notebook.module

    def test_solution_notebook_awards_every_check(solution):
        graded = {}
        for cell in json.loads(path.read_text())["cells"]:
            meta = cell["metadata"].get("nbgrader", {})
            if meta.get("grade") and not meta.get("solution"):
                graded[re.search(r'\bcheck\("([^"]+)"', "".join(cell["source"])).group(1)] = meta["points"]
        assert graded == {c.id: c.points for c in checks}
        for c in checks:
            result = run_check(c.id, getattr(solution, c.target))
            assert result.passed, result.line()

    return solution, test_solution_notebook_awards_every_check
