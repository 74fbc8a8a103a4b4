"""``hint(check_id)``: every exercise has hints that lead to the answer without giving it, and each call shows the
next level, remembered per notebook folder, counted by ``status``, and never a reason for a cell to fail."""

from __future__ import annotations

import ast
import io
import json
import os
import re
import subprocess
import sys
import tokenize
from pathlib import Path

import nbformat
import pytest
from notebooks.build import DEMO_GRADERS, code, demo_notebook, use_demo_checks, write

from autograder import hint
from autograder import hints as hints_module
from autograder.core import GRADING_ENV, checks_for
from autograder.grading import progress
from autograder.hints import HINTS, HINTS_FILE, hints_used

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted(path.name for path in (ROOT / "solutions").glob("*/") if path.is_dir())
SOLUTION = re.compile(r"^[ \t]*### BEGIN SOLUTION\n(.*?)^[ \t]*### END SOLUTION", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"`([^`]+)`")
SHORTEST_LEAK = 12  # characters without spaces: shorter lines (`return x`, `else:`) are not an answer
MOST_CHARACTERS = 400  # one level stays short enough to read in a cell's output


# ---- what a hint may not contain: the answer's code ---------------------------------------------------------------


def _solution_regions() -> list[str]:
    regions = []
    for lesson in LESSONS:
        notebook = nbformat.read(ROOT / "solutions" / lesson / f"{lesson}.ipynb", as_version=4)
        for cell in notebook.cells:
            if cell.cell_type == "code":
                regions += [_dedent(region) for region in SOLUTION.findall(cell.source)]
    return regions


def _dedent(region: str) -> str:
    lines = region.splitlines()
    indent = min(len(line) - len(line.lstrip()) for line in lines if line.strip())
    return "\n".join(line[indent:] for line in lines) + "\n"


def _squeezed(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _without_comments(region: str) -> str:
    comments = [token for token in tokenize.generate_tokens(io.StringIO(region).readline)
                if token.type == tokenize.COMMENT]  # fmt: skip
    lines = region.splitlines()
    for comment in reversed(comments):
        row, column = comment.start
        lines[row - 1] = lines[row - 1][:column]
    return "\n".join(lines)


def _answer_code(regions: list[str]) -> set[str]:
    """The pieces of the solutions a hint must not hold, spaces squeezed out: every line, and every value computed
    and assigned or returned (so a hint cannot give `min(counts, key=...)` without the `pair = ` before it)."""
    pieces = set()
    for region in regions:
        code = _without_comments(region)
        pieces |= {_squeezed(line) for line in code.splitlines()}
        for node in ast.walk(ast.parse(code)):
            value = getattr(node, "value", None) if isinstance(node, (ast.Assign, ast.AnnAssign, ast.Return)) else None
            if value is not None and not isinstance(value, (ast.Name, ast.Attribute)):  # naming a thing is fine
                pieces.add(_squeezed(ast.get_source_segment(code, value)))
    return {piece for piece in pieces if len(piece) >= SHORTEST_LEAK}


def _leaks(text: str, answer_code: set[str]) -> list[str]:
    """What in a hint gives code away: a piece of a solution, or a code span that is a statement."""
    found = [piece for piece in answer_code if piece in _squeezed(text)]
    for span in CODE_SPAN.findall(text):
        if _is_statement(span) or "lambda" in span:
            found.append(f"`{span}` is code to copy")
    return found


def _is_statement(span: str) -> bool:
    """True for a span of Python that only parses as statements (`x = f(y)`, `return x`): a hint may name things
    (`torch.tril`, `self.state`), not say what to write."""
    try:
        ast.parse(span, mode="eval")
        return False
    except SyntaxError:
        pass
    try:
        ast.parse(span)
        return True
    except SyntaxError:
        return False


@pytest.fixture(scope="module")
def answer_code() -> set[str]:
    return _answer_code(_solution_regions())


def test_the_answer_code_is_found_in_every_lesson(answer_code) -> None:
    assert len(LESSONS) == 7
    assert len(answer_code) > 200
    assert _squeezed("shifted = x - x.max(dim=dim, keepdim=True).values") in answer_code  # lesson 02's softmax


@pytest.mark.parametrize("hint_text", [
    "Subtract the max: shifted = x - x.max(dim=dim,  keepdim=True).values, then exponentiate.",  # a line, spaced
    "The tie-break is min(counts, key=lambda p: (-counts[p], p)).",  # the value of an assignment, alone
    "Write `return e / e.sum(dim=dim, keepdim=True)` at the end.",  # a line in a code span
    "Then `probs = torch.softmax(scores, dim=-1)` and weigh the values.",  # a statement, not from a solution
    "Sort the pairs with `key=lambda p: counts[p]`.",  # a lambda
])  # fmt: skip
def test_the_criterion_catches_hints_that_give_code_away(hint_text, answer_code) -> None:
    assert _leaks(hint_text, answer_code)


def test_the_criterion_lets_a_hint_name_things(answer_code) -> None:
    text = "Keep the lower triangle (`torch.tril`), divide by the sum along `dim`, and return a (B, T, C) tensor."
    assert not _leaks(text, answer_code)


def test_every_exercise_has_hints_and_only_exercises_do() -> None:
    exercises = {check.id for lesson in LESSONS for check in checks_for(lesson) if not check.hidden}
    assert exercises and set(HINTS) == exercises


@pytest.mark.parametrize("exercise", sorted(HINTS))
def test_hints_lead_without_giving_the_answer(exercise, answer_code) -> None:
    levels = HINTS[exercise]
    assert len(levels) >= 2, "a nudge, then the key idea"
    assert len(set(levels)) == len(levels), "two levels say the same"
    for level, text in enumerate(levels, 1):
        assert text.strip() == text and text, f"level {level} is empty or padded"
        assert len(text) <= MOST_CHARACTERS, f"level {level} is {len(text)} characters long"
        assert not _leaks(text, answer_code), f"level {level} gives code away: {_leaks(text, answer_code)}"


# ---- hint(): levels, memory, and nothing that fails a cell ----------------------------------------------------------


@pytest.fixture
def notebook_folder(tmp_path, monkeypatch) -> Path:
    """A fresh kernel (nothing remembered) whose working directory is an empty notebook folder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(hints_module, "_seen_in_kernel", {})
    for variable in ("NBGRADER_EXECUTION", GRADING_ENV):
        monkeypatch.delenv(variable, raising=False)
    return tmp_path


def _hint(capsys, check_id) -> list[str]:
    hint(check_id)
    return capsys.readouterr().out.splitlines()


def test_each_call_shows_the_next_level_then_says_there_are_no_more(notebook_folder, capsys) -> None:
    levels = HINTS["attention.causal_mask"]
    assert len(levels) == 2
    assert _hint(capsys, "attention.causal_mask") == [f"hint 1 of 2 · attention.causal_mask: {levels[0]}"]
    assert _hint(capsys, "attention.causal_mask") == [f"hint 2 of 2 · attention.causal_mask: {levels[1]}"]
    after = _hint(capsys, "attention.causal_mask")
    assert after[0].startswith("no more hints for attention.causal_mask") and "lesson text" in after[0]
    assert after[1:] == [f"hint 2 of 2 · attention.causal_mask: {levels[1]}"]
    assert json.loads((notebook_folder / HINTS_FILE).read_text()) == {"attention.causal_mask": 2}


def test_exercises_count_their_levels_apart(notebook_folder, capsys) -> None:
    _hint(capsys, "attention.softmax")
    assert _hint(capsys, "tokenization.merge")[0].startswith("hint 1 of ")
    assert _hint(capsys, "attention.softmax")[0].startswith("hint 2 of ")
    assert hints_used(notebook_folder) == 3


def test_a_hidden_check_id_gives_its_exercise_hints(notebook_folder, capsys) -> None:
    first = HINTS["attention.softmax"][0]
    assert _hint(capsys, "attention.softmax.hidden") == [f"hint 1 of 3 · attention.softmax: {first}"]


@pytest.mark.parametrize("check_id, says", [
    ("attention.sofmax", "no hints for 'attention.sofmax': did you mean attention.softmax"),
    ("gpt", "no hints for 'gpt': did you mean gpt_block.gpt or your_gpt.gpt?"),
    ("xyz", "no hints for 'xyz': its check cell has the id, e.g. attention.softmax"),
    (len, 'hint takes the check id of an exercise, in quotes, as in its check cell: hint("attention.softmax"), '
          "not a builtin_function_or_method"),
])  # fmt: skip
def test_an_unknown_id_gets_a_suggestion_not_a_traceback(notebook_folder, capsys, check_id, says) -> None:
    out = _hint(capsys, check_id)
    assert len(out) == 1 and out[0].startswith(says)
    assert not (notebook_folder / HINTS_FILE).exists()


def test_the_levels_seen_outlive_the_kernel(notebook_folder, capsys) -> None:
    _hint(capsys, "training.get_lr")
    fresh_kernel = subprocess.run(
        [sys.executable, "-c", "from autograder import hint; hint('training.get_lr')"], cwd=notebook_folder,
        env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert fresh_kernel.stdout.startswith("hint 2 of 3 · training.get_lr: "), fresh_kernel.stderr
    assert json.loads((notebook_folder / HINTS_FILE).read_text()) == {"training.get_lr": 2}


def test_a_folder_that_cannot_be_written_still_gets_its_hints(notebook_folder, capsys) -> None:
    (notebook_folder / HINTS_FILE).mkdir()  # reading and writing the file both raise OSError
    assert _hint(capsys, "gpt_block.gelu")[0].startswith("hint 1 of 2 · gpt_block.gelu: ")
    assert _hint(capsys, "gpt_block.gelu")[0].startswith("hint 2 of 2 · gpt_block.gelu: ")  # this kernel remembers
    assert hints_used(notebook_folder) == 0


def test_a_damaged_hints_file_starts_over(notebook_folder, capsys) -> None:
    (notebook_folder / HINTS_FILE).write_text('{"attention.softmax": ')
    assert _hint(capsys, "attention.softmax")[0].startswith("hint 1 of 3 · ")
    (notebook_folder / HINTS_FILE).write_text('{"attention.softmax": "2", "no.such": 5, "tokenization.merge": 1}')
    assert hints_used(notebook_folder) == 1


@pytest.mark.parametrize("variable", ["NBGRADER_EXECUTION", GRADING_ENV])
def test_a_graded_run_shows_and_records_nothing(notebook_folder, capsys, monkeypatch, variable) -> None:
    monkeypatch.setenv(variable, "1")
    assert _hint(capsys, "attention.softmax") == []
    assert not (notebook_folder / HINTS_FILE).exists()


def test_status_counts_the_hints_used_next_to_each_notebook(tmp_path) -> None:
    use_demo_checks()
    lessons = tmp_path / "lessons"
    write(lessons / "99_demo" / "99_demo.ipynb", demo_notebook())
    (lessons / "99_demo" / HINTS_FILE).write_text(json.dumps({"attention.softmax": 2, "tokenization.merge": 1}))
    line, = [line for line in progress(lessons, DEMO_GRADERS) if line.startswith("99_demo")]
    assert line.endswith("3 of 3 checks pass; 3 hints used")
    (lessons / "99_demo" / HINTS_FILE).write_text(json.dumps({"tokenization.merge": 1}))
    line, = [line for line in progress(lessons, DEMO_GRADERS) if line.startswith("99_demo")]
    assert line.endswith("3 of 3 checks pass; 1 hint used")
    (lessons / "99_demo" / HINTS_FILE).unlink()
    line, = [line for line in progress(lessons, DEMO_GRADERS) if line.startswith("99_demo")]
    assert line.endswith("3 of 3 checks pass")


def test_status_counts_them_for_a_notebook_it_cannot_grade_too(tmp_path) -> None:
    write(tmp_path / "00_intro" / "00_intro.ipynb", [code("x = 1")])
    (tmp_path / "00_intro" / HINTS_FILE).write_text(json.dumps({"attention.softmax": 1}))
    line, = progress(tmp_path, DEMO_GRADERS)
    assert line.startswith("00_intro") and "not graded: " in line and line.endswith("; 1 hint used")
