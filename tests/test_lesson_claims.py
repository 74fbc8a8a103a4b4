"""What a lesson's text says a cell prints, or an expression gives, is what the code does.

Two kinds of claim, so that text and code cannot drift apart again:

* a markdown cell that ends with "The cell below prints:" and a fenced ```` ```text ```` block: the next code cell
  runs after the lesson's setup cell, with the answer key's objects under the lesson's names (what a learner who
  finished the exercises has), and must print exactly that block;
* a sentence of the text that states a value (``merge([5, 6, 7, 5, 6], (5, 6), 256)` is `[256, 7, 256]``): listed in
  ``INLINE_CLAIMS`` with the expression that computes it. The sentence must still be in the lesson, word for word
  (whitespace aside), and the expression must give the value.
"""

from __future__ import annotations

import contextlib
import io
import math
import re
from pathlib import Path

import nbformat
import pytest
import regex
import torch

from autograder.answer_key import answer_key
from autograder.loader import GRADING_ENV
from gpt_reference.config import GPTConfig
from gpt_reference.tokenizer import BPETokenizer, build_vocab, render_token

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted(path.name for path in (ROOT / "solutions").iterdir() if path.is_dir())
PRINTS = re.compile(r"The cell below prints:\s*```text\n(.*?)```\s*$", re.DOTALL)


def _notebook(lesson: str) -> nbformat.NotebookNode:
    return nbformat.read(ROOT / "solutions" / lesson / f"{lesson}.ipynb", as_version=4)


def _flat(text: str) -> str:
    return " ".join(text.split())


def _printed_claims() -> list[tuple[str, int]]:
    """(lesson, index of the markdown cell) of every "The cell below prints:" claim."""
    return [(lesson, index) for lesson in LESSONS for index, cell in enumerate(_notebook(lesson).cells)
            if cell.cell_type == "markdown" and PRINTS.search(cell.source)]


def test_the_bpe_example_is_a_pinned_claim() -> None:
    """The claim that drifted once (issue 14): it must stay one of the claims this file runs."""
    nb = _notebook("01_tokenization")
    assert any(lesson == "01_tokenization" and "aaabdaaabac" in nb.cells[index].source
               for lesson, index in _printed_claims())


@pytest.mark.parametrize(("lesson", "index"), _printed_claims())
def test_the_cell_prints_what_the_text_says(lesson: str, index: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(GRADING_ENV, "1")  # the setup cell's `yours(...)` hands over the answer key at once, silently
    cells = _notebook(lesson).cells
    claimed = PRINTS.search(cells[index].source).group(1)
    cell = cells[index + 1]
    assert cell.cell_type == "code", f"{lesson}: the cell after markdown cell {index} is not code"
    setup = next(c for c in cells if c.cell_type == "code")
    namespace: dict = {}
    exec(compile(setup.source, f"{lesson} setup", "exec"), namespace)
    namespace.update(answer_key(lesson))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(cell.source, f"{lesson} cell {index + 1}", "exec"), namespace)
    assert out.getvalue() == claimed


def _shakespeare(path: Path) -> str:
    return path.read_text(encoding="utf-8")


# (lesson, the sentence as the lesson writes it, what computes its value, the value); `key` is the lesson's answer key
INLINE_CLAIMS = [
    ("01_tokenization", "`[1, 2, 3, 1, 2]` gives `{(1, 2): 2, (2, 3): 1, (3, 1): 1}`",
     lambda key, data: dict(key["get_pair_counts"]([1, 2, 3, 1, 2])), {(1, 2): 2, (2, 3): 1, (3, 1): 1}),
    ("01_tokenization", "`[7, 7, 7]` gives `{(7, 7): 2}`",
     lambda key, data: dict(key["get_pair_counts"]([7, 7, 7])), {(7, 7): 2}),
    ("01_tokenization", "`merge([5, 6, 7, 5, 6], (5, 6), 256)` is `[256, 7, 256]`",
     lambda key, data: key["merge"]([5, 6, 7, 5, 6], (5, 6), 256), [256, 7, 256]),
    ("01_tokenization", '`merge([7, 7, 7], (7, 7), 256)` ("aaa" merging "aa") is `[256, 7]`',
     lambda key, data: key["merge"]([7, 7, 7], (7, 7), 256), [256, 7]),
    ("01_tokenization", "With `merges = {(97, 98): 256, (256, 99): 257}`, `\"abc\"` is `[97, 98, 99]`, then "
                        "`[256, 99]`, then `[257]`",
     lambda key, data: key["encode"]("abc", {(97, 98): 256, (256, 99): 257}), [257]),
    ("01_tokenization", "ASCII characters are one byte, `é` is two, `字` three and `🙂` four",
     lambda key, data: [len(c.encode("utf-8")) for c in "aé字🙂"], [1, 2, 3, 4]),
    ("01_tokenization", "# ['a', '<|endoftext|>', 'b']",
     lambda key, data: regex.split("(" + regex.escape("<|endoftext|>") + ")", "a<|endoftext|>b"),
     ["a", "<|endoftext|>", "b"]),
    ("01_tokenization", 'For tiny Shakespeare (65 distinct characters) id 0 is `"\\n"` and id 1 is `" "`',
     lambda key, data: (key["CharTokenizer"](data()).vocab_size, key["CharTokenizer"](data()).decode([0, 1])),
     (65, "\n ")),
    ("01_tokenization", 'without chunks the first three are `"e "`, `"th"`, `"t "`; with chunks `" t"`, `"he"`, '
                        '`"ou"`, and the fifth is already `" the"`',
     lambda key, data: ([render_token(t) for t in list(build_vocab(key["train_bpe"](data()[:10_000], 259)).values())[256:]],
                        [render_token(t) for t in list(build_vocab(key["train_bpe_chunked"](data()[:40_000], 261)).values())[256:]]),
     (["e ", "th", "t "], [" t", "he", "ou", " a", " the"])),
    ("02_attention", "in `float32`, $e^{89}$ is already `inf` and $e^{-104}$ is `0`",
     lambda key, data: (torch.tensor(89.0).exp().item(), torch.tensor(-104.0).exp().item()), (math.inf, 0.0)),
    ("03_gpt_block", "For the `gpt2` preset it is 124,439,808",
     lambda key, data: key["count_params"](GPTConfig.from_preset("gpt2")), 124_439_808),
    ("03_gpt_block", "It saves 38.6M of GPT-2's parameters",
     lambda key, data: round(GPTConfig.from_preset("gpt2").vocab_size * GPTConfig.from_preset("gpt2").n_embd / 1e6, 1),
     38.6),
    ("04_training", r"A character model starts at a loss of $\ln 65 \approx 4.17$",
     lambda key, data: (len(set(data())), round(math.log(65), 2)), (65, 4.17)),
    ("05_generation", "So three tokens stay",  # the worked example: probabilities (0.5, 0.3, 0.15, 0.05), p = 0.9
     lambda key, data: int(torch.isfinite(key["top_p_logits"](torch.tensor([[0.5, 0.3, 0.15, 0.05]]).log(), 0.9)).sum()),
     3),
    ("06_your_gpt", "With `vocab_size = 512`, 255 merges",
     lambda key, data: len(BPETokenizer.train(data()[:50_000], 512).merges), 255),
    ("06_your_gpt", r"would need $\log_2 65 \approx 6.0$ bits per character",
     lambda key, data: round(math.log2(65), 1), 6.0),
]


@pytest.mark.parametrize(("lesson", "sentence", "compute", "value"), INLINE_CLAIMS,
                         ids=[f"{claim[0]}: {claim[1][:40]}" for claim in INLINE_CLAIMS])
def test_a_value_the_text_states_is_what_the_code_gives(lesson, sentence, compute, value, request) -> None:
    text = _flat("\n".join(cell.source for cell in _notebook(lesson).cells if cell.cell_type == "markdown"))
    assert _flat(sentence) in text, f"{lesson} no longer says {sentence!r}: update the claim here with the text"
    data = lambda: _shakespeare(request.getfixturevalue("shakespeare_path"))  # noqa: E731 (only some claims need it)
    assert compute(answer_key(lesson), data) == value
