"""A lesson's cells in a kernel: a check cell prints its verdict and raises only while the notebook is graded, and a
cell that runs into an unfinished function prints one line instead of failing (``autograder.notebook``), so that Run
All goes on. Cells run in an IPython shell in this process, as a kernel runs them (tests/test_run_all.py runs the
lessons in real kernels)."""

from __future__ import annotations

import pytest
from IPython.core.interactiveshell import ExecutionResult, InteractiveShell

from autograder import check
from autograder.core import GRADING_ENV
from autograder.notebook import FinishFirst, install

STUB = "def softmax(x, dim=-1):\n    # YOUR CODE HERE\n    raise NotImplementedError()"
SOFTMAX = "def softmax(x, dim=-1):\n    return x.softmax(dim)"


def own_softmax(x, dim=-1):  # without torch's softmax, as the lesson asks
    e = (x - x.max(dim=dim, keepdim=True).values).exp()
    return e / e.sum(dim=dim, keepdim=True)


def unfinished_softmax(x, dim=-1):
    raise NotImplementedError()


@pytest.fixture
def not_grading(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.delenv(GRADING_ENV, raising=False)


@pytest.fixture
def shell(not_grading) -> InteractiveShell:
    """A fresh shell, with ``autograder`` imported in its first cell as a lesson's setup cell does."""
    InteractiveShell.clear_instance()
    shell = InteractiveShell.instance()
    assert run(shell, "import torch\nfrom autograder import check").success
    install()  # what that import does in a kernel; here autograder was imported before the shell existed
    yield shell
    InteractiveShell.clear_instance()


def run(shell: InteractiveShell, source: str) -> ExecutionResult:
    """Run a cell as a kernel does (stored in the history, which is where IPython looks for a closing `;`)."""
    return shell.run_cell(source, store_history=True)


# ---- the check cell ------------------------------------------------------------------------------------------------


def test_a_check_cell_prints_its_verdict_and_never_fails_the_notebook(not_grading, capsys) -> None:
    check("attention.softmax", unfinished_softmax)
    check("attention.softmax", lambda x, dim=-1: x)
    check("attention.softmax", own_softmax)
    verdicts = [line for line in capsys.readouterr().out.splitlines() if line[:1] in "✓✗"]  # one per check, first
    assert verdicts[0] == "✗ attention.softmax (0/2): not implemented yet"  # the visible and the hidden check
    assert verdicts[1].startswith("✗ attention.softmax (0/2): ")
    assert verdicts[2] == "✓ attention.softmax (2/2): correct on the visible probe and 5 hidden cases"


@pytest.mark.parametrize(("variable", "value"), [("NBGRADER_EXECUTION", "autograde"),
                                                 ("NBGRADER_EXECUTION", "validate"), (GRADING_ENV, "1")])  # fmt: skip
def test_while_grading_a_failed_check_raises_with_its_verdict_and_a_passed_one_prints(
    not_grading, monkeypatch, capsys, variable, value
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(AssertionError, match=r"^✗ attention.softmax \(0/1\): not implemented yet$") as raised:
        check("attention.softmax", unfinished_softmax)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__  # no traceback of the check's inside
    with pytest.raises(AssertionError, match=r"^✗ attention.softmax.hidden \(0/1\): "):
        check("attention.softmax.hidden", lambda x, dim=-1: x)
    assert capsys.readouterr().out == ""
    check("attention.softmax", own_softmax)
    assert capsys.readouterr().out == "✓ attention.softmax (1/1): correct\n"


# ---- cells that run into an unfinished function ----------------------------------------------------------------------


def test_a_cell_that_calls_a_stub_prints_one_line_and_succeeds(shell, capsys) -> None:
    run(shell, STUB)
    result = run(shell, "x = torch.randn(3)\nprobabilities = softmax(x)\nprobabilities.sum()")
    assert result.success and result.result is None  # nothing displayed
    assert capsys.readouterr().out == "finish `softmax` above to see this\n"


def test_a_method_is_named_with_its_class(shell, capsys) -> None:
    run(shell, "class Attention(torch.nn.Module):\n    def forward(self, x):\n        raise NotImplementedError()")
    assert run(shell, "Attention()(torch.zeros(1))").success  # nn.Module.__call__ in between
    assert capsys.readouterr().out == "finish `Attention.forward` above to see this\n"


def test_the_last_expression_is_still_displayed(shell) -> None:
    run(shell, SOFTMAX)
    assert run(shell, "x = torch.zeros(2)\nsoftmax(x).tolist()").result == [0.5, 0.5]
    assert run(shell, "softmax(x).tolist();").result is None  # a closing `;` still hides it
    assert run(shell, "%%time\nsoftmax(x).tolist()").result == [0.5, 0.5]


def test_magics_comments_futures_and_async_cells_run_as_before(shell, capsys) -> None:
    run(shell, STUB)
    assert run(shell, "# only a comment").success
    assert run(shell, "%%time\nsoftmax(1)").success
    assert "finish `softmax` above to see this" in capsys.readouterr().out
    assert run(shell, "%%capture captured\nsoftmax(1)").success
    assert run(shell, "captured.stdout").result == "finish `softmax` above to see this\n"
    assert run(shell, "from __future__ import annotations\nn: UndefinedAnnotation = 1\nn").result == 1
    assert run(shell, "import asyncio\nawait asyncio.sleep(0)\n7").result == 7


def test_a_not_implemented_error_from_elsewhere_is_a_real_error(shell) -> None:
    """From a library (torch's nn.Module without a forward), or raised by a cell itself: an ordinary error."""
    result = run(shell, "torch.nn.Module()(torch.zeros(1))")
    assert not result.success and isinstance(result.error_in_exec, NotImplementedError)
    run(shell, "def uses_a_bare_module(x):\n    return torch.nn.Module()(x)")
    assert not run(shell, "uses_a_bare_module(torch.zeros(1))").success
    assert not run(shell, "raise NotImplementedError('not a stub')").success


def test_other_errors_keep_their_line(shell) -> None:
    result = run(shell, "a = 1\nb = 1 / 0\nc = 3")
    assert not result.success and isinstance(result.error_in_exec, ZeroDivisionError)
    traceback = result.error_in_exec.__traceback__
    while traceback.tb_next is not None:
        traceback = traceback.tb_next
    assert traceback.tb_lineno == 2


def test_a_cell_that_needs_what_a_stopped_cell_did_not_finish_says_which_stub(shell, capsys) -> None:
    run(shell, STUB)
    run(shell, "weights = {}\nfor name in ['a', 'b']:\n    weights[name] = softmax(torch.zeros(2))\nscale = 2")
    assert run(shell, "print(scale)").success  # a NameError for what the stopped cell was to assign
    assert run(shell, "weights['a'] * scale").success  # a KeyError from a dict it was filling
    assert run(shell, "both = weights['b']").success
    assert run(shell, "print(both)").success  # and so on down the chain
    assert capsys.readouterr().out.splitlines() == ["finish `softmax` above to see this"] * 5


def test_the_learners_own_mistakes_still_fail(shell, capsys) -> None:
    run(shell, STUB)
    run(shell, "weights = softmax(torch.zeros(2))")
    assert not run(shell, "print(wieghts)").success  # a typo: not a name the stopped cell was to assign
    assert not run(shell, "torch.zeros(2) @ torch.zeros(3)").success  # reads nothing the stub left unfinished


def test_a_cell_that_runs_through_clears_what_it_assigns(shell, capsys) -> None:
    run(shell, STUB)
    run(shell, "weights = softmax(torch.zeros(2))")
    run(shell, SOFTMAX)
    assert run(shell, "weights = softmax(torch.zeros(2))").success
    result = run(shell, "weights[5]")  # an IndexError of the learner's own now
    assert isinstance(result.error_in_exec, IndexError)
    assert capsys.readouterr().out.count("finish `softmax` above to see this") == 1


def test_the_shell_replies_ok_so_run_all_goes_on(shell) -> None:
    """What ipykernel sends back for a cell is an error exactly when run_cell reports ``error_in_exec``."""
    run(shell, STUB)
    result = run(shell, "softmax(1)")
    assert result.error_in_exec is None and result.error_before_exec is None


def test_it_is_installed_once_and_never_while_grading(shell, monkeypatch) -> None:
    install()
    assert sum(isinstance(t, FinishFirst) for t in shell.ast_transformers) == 1
    InteractiveShell.clear_instance()
    graded = InteractiveShell.instance()
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    run(graded, "import autograder")
    install()
    assert not any(isinstance(t, FinishFirst) for t in graded.ast_transformers)
    run(graded, STUB)
    assert isinstance(run(graded, "softmax(1)").error_in_exec, NotImplementedError)
