"""The grading spine: loads a learner's notebook, runs checks against gpt_reference, and reports points and a
diagnosis. One registry of checks (``autograder.checks``) serves notebook self-checks, the pytest graders
(``autograder/graders``) and nbgrader's graded cells.

In a notebook::

    from autograder import check, assert_check
    check("attention.softmax", softmax)          # a self-check: one line, ✓ or ✗ with a diagnosis
    assert_check("attention.softmax", softmax)   # in a graded cell: raises AssertionError when wrong

    from autograder import yours
    CausalSelfAttention = yours("02_attention").CausalSelfAttention   # your earlier lesson's object, or the reference's
"""

from .core import Check, Mistake, ProbeError, Result, assert_check, check, checks_for, get_check, run_check
from .yours import yours

__all__ = [
    "Check", "Mistake", "ProbeError", "Result", "assert_check", "check", "checks_for", "get_check", "run_check",
    "yours",
]  # fmt: skip
