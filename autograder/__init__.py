"""The grading spine: loads a learner's notebook, runs checks against gpt_reference, and reports points and a
diagnosis. One registry of checks (``autograder.checks``) serves notebook check cells, the pytest graders
(``autograder/graders``) and nbgrader's graded cells.

In a notebook::

    from autograder import check, hint
    check("attention.softmax", softmax)   # one line, ✓ or ✗ with a diagnosis; raises while the notebook is graded
    hint("attention.softmax")             # stuck? the next hint for that exercise (autograder.hints)

    from autograder import yours
    CausalSelfAttention = yours("02_attention").CausalSelfAttention   # your earlier lesson's object, or the reference's

Imported in a notebook's kernel, it also lets Run All go past exercises that are not finished yet
(``autograder.notebook``).
"""

from . import notebook
from .core import Check, Mistake, ProbeError, Result, check, checks_for, get_check, run_check
from .hints import hint
from .yours import yours

__all__ = ["Check", "Mistake", "ProbeError", "Result", "check", "checks_for", "get_check", "hint", "run_check", "yours"]

notebook.install()
