"""The contract every lesson's mistakes catalogue is tested against, written once for all lessons' check tests.

``checks`` are a lesson's registered checks; ``mutants`` maps a target name to ``{mistake name: learner-style
wrong implementation}``, written in the test file independently of the variants in ``autograder/checks``.
``crashes`` names the (check id, mistake) pairs where the mutant raises on that check's probe, as the learner's code
would (a window past the end of short data cannot be stacked): there it must fail with its own error instead.
"""

from __future__ import annotations

import pytest

from autograder import get_check, run_check


def mistake_catalogue_tests(checks, mutants, crashes=frozenset()):
    """The three tests, to assign to ``test_*`` names in a lesson's test module so that pytest collects them."""
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
        would make that name ambiguous."""
        variant = next(m for m in get_check(check_id).mistakes if m.name == mistake)
        assert run_check(check_id, variant.implementation).mistake == mistake

    return (
        test_every_mistake_is_named,
        test_every_mutant_is_in_the_catalogue,
        test_each_catalogued_variant_is_named_as_itself,
    )
