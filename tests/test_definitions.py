"""Definitions only (autograder/definitions.py): what the hardened grader runs of a notebook. The lessons' own
cells are kept whole; anything that would run the notebook's code, or reach the interpreter, while being defined is
left out, and a left-out statement that defines names says why."""

from __future__ import annotations

import ast
import glob

import pytest

from autograder.definitions import definitions
from autograder.loader import is_skipped, load_notebook, python_source, read_cells

KEPT = """
import torch
import torch.nn as nn
from torch.nn import functional as F
from autograder import check
from autograder.yours import yours
N_EMBD = 32
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
mine = yours("02_attention")
CausalSelfAttention = yours("02_attention").CausalSelfAttention
try:
    import tiktoken
except ImportError:
    tiktoken = None
@torch.no_grad()
def generate(model, idx: torch.Tensor, n: int = N_EMBD, stop=frozenset()) -> "torch.Tensor":
    return idx
class Block(nn.Module):
    "Pre-LN transformer block."
    scale = 1 / N_EMBD
    def __init__(self, config):
        super().__init__()
        self.attn = CausalSelfAttention(config)
    @staticmethod
    def helper(x):
        return x
class Bigger(Block):
    pass
"""


def _kept_and_problems(source: str) -> tuple[str, list[str]]:
    kept, problems = definitions({1: ast.parse(source)}, "notebook_x")
    return ast.unparse(kept[1]), [problem for _, problem in problems]


def test_imports_definitions_constants_and_the_carry_forward_are_kept_whole():
    kept, problems = _kept_and_problems(KEPT)
    assert kept == ast.unparse(ast.parse(KEPT)) and problems == []


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("import autograder.core as core\ncore.run_probe = None", None),  # scratch: dropped silently
        ("torch.manual_seed(0)", None),
        ("x = open('/etc/passwd').read()", "it uses `open`"),
        ("import os\nx = os.getcwd()", "it uses `os` (from os)"),
        ("import autograder.core as c\nx = c.CHECKS", "it uses `c` (from autograder)"),
        ("def f():\n    pass\nx = f()", "it calls `f`, defined in the notebook"),
        ("def f():\n    pass\ndef g(x=f()):\n    pass", "it calls `f`, defined in the notebook"),
        ("import functools\ndef g():\n    pass\nh = functools.partial(g)", "it passes `g`, defined in the notebook"),
        ("class A:\n    def __init_subclass__(cls):\n        pass", "it defines __init_subclass__"),
        ("class M(type):\n    pass\nclass A(metaclass=M):\n    pass", "it calls `M`, defined in the notebook"),
        ("class A:\n    __init_subclass__ = print", "it defines __init_subclass__"),
        ("class A:\n    pass\nclass B(A[int]):\n    pass", "it subscripts `A`"),
        ("x = (lambda: 1)()", "it calls the result of an expression"),
        ("x = [lambda: 1]", "it evaluates a Lambda"),
        ("x = print.__self__", "the private attribute `.__self__`"),
        ("x = exec('1')", "it uses `exec`"),
        ("from notebook_x import double", "it imports the notebook's own module"),
        ("stoi = {}\nstoi['a'] = 1", None),
        ("for i in range(3):\n    table = i", "a For statement is not a definition"),
    ],
)
def test_what_could_run_the_notebooks_code_while_defining_is_left_out(source, reason):
    _, problems = _kept_and_problems(source)
    if reason is None:  # scratch that defines nothing: left out without a word
        assert problems == []
    else:
        assert len(problems) == 1 and reason in problems[0], problems
        assert problems[0].startswith("cell 1 (line ") and "not defined when grading" in problems[0]


def test_a_decorator_defined_in_the_notebook_is_not_applied():
    kept, problems = _kept_and_problems("def d(f):\n    return f\n@d\ndef g():\n    pass")
    assert kept == "def d(f):\n    return f" and len(problems) == 1 and "`g`" in problems[0]


@pytest.mark.parametrize("notebook", sorted(glob.glob("solutions/*/*.ipynb") + glob.glob("lessons/*/*.ipynb")))
def test_every_lesson_notebook_loads_whole_as_definitions(notebook):
    """Nothing a lesson needs is left out: the graded cells' statements are definitions (a seed is scratch)."""
    cells = [python_source("".join(c["source"])) for c in read_cells(notebook)
             if c.get("cell_type") == "code" and not is_skipped(c)]  # fmt: skip
    trees = {i: ast.parse(code) for i, code in enumerate(cells) if code}
    kept, problems = definitions(trees, "notebook_x")
    assert problems == []
    dropped = [ast.unparse(s) for i, t in trees.items() for s in t.body if ast.unparse(s) not in ast.unparse(kept[i])]
    assert set(dropped) <= {"torch.manual_seed(0)"}
    assert load_notebook(notebook, definitions_only=True).problems == []
