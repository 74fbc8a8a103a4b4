"""What a learner reads under a check cell, for wrong answers *outside* the mistakes catalogue.

A check cell runs the exercise's visible check and its hidden twin (``core.run_exercise``), so its ✓ is the grade.
Past the catalogue, a failure is worded by the kind of value that is wrong (a dict's keys, a list's or a string's first
difference, a tensor's row), shows the visible probe's small input, stays within 8 lines, and never shows a hidden
probe's input: a hidden case is described in words.

``WRONG_ANSWERS`` are learner-style answers that no catalogued mistake names. Run as a script, this file prints
what each of them shows in a check cell (the before/after table of the feedback work):

    PYTHONPATH=<checkout> python tests/test_feedback.py
"""

from __future__ import annotations

import contextlib
import io
import math

import torch
from test_gpt_block_checks import LearnerGPT, LearnerMLP, NanoGPTBlock, gelu_tanh
from torch import nn

from autograder import check

# ---- wrong answers outside the catalogue -----------------------------------------------------------------------------


def pair_counts_off_by_one(ids):
    counts = {}
    for pair in zip(ids, ids[1:]):
        if pair in counts:
            counts[pair] += 1
        else:
            counts[pair] = 0  # the first occurrence is not counted
    return counts


def encode_stopping_early(text, merges):
    ids = list(text.encode("utf-8"))
    while len(ids) > 2:  # a last pair of two ids is never looked at
        pairs = [p for p in zip(ids, ids[1:]) if p in merges]
        if not pairs:
            break
        pair = min(pairs, key=merges.get)
        out, i = [], 0
        while i < len(ids):
            if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
                out.append(merges[pair])
                i += 2
            else:
                out.append(ids[i])
                i += 1
        ids = out
    return ids


def decode_backslashes(ids, vocab):
    return b"".join(vocab[i] for i in ids).decode("utf-8", errors="backslashreplace")


def softmax_global_max(x, dim=-1):
    e = (x - x.max()).exp()  # one max for the whole tensor: a row far below it underflows to 0/0
    return e / e.sum(dim=dim, keepdim=True)


def softmax_summed_over_everything(x, dim=-1):
    e = (x - x.max(dim=dim, keepdim=True).values).exp()
    return e / e.sum()


class MLPActivatedTwice(LearnerMLP):
    def forward(self, x):
        return self.dropout(gelu_tanh(self.c_proj(gelu_tanh(self.c_fc(x)))))


class BlockWithFinalNorm(NanoGPTBlock):
    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        x = x + self.mlp(self.ln_2(x))
        return self.ln_2(x)  # "normalise the output too"


MASK = torch.tril(torch.ones(16, 16, dtype=torch.bool))  # built once, for a block_size of 16


def causal_mask_precomputed(T):
    return MASK[:T, :T]


def top_k_unclamped(logits, k):
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, -math.inf)


# (what it is, the check cell's id, the answer, what the new feedback must say, the visible input shown or None)
WRONG_ANSWERS = [
    ("dict: get_pair_counts one short", "tokenization.get_pair_counts", pair_counts_off_by_one,
     "(1, 2): yours 1, expected 2", "get_pair_counts([1, 2, 3, 1, 2])"),
    ("list: encode stops one merge early", "tokenization.encode", encode_stopping_early,
     "first difference at position", "encode('abcd', {(97, 98): 256, (256, 99): 257, (257, 100): 258})"),
    ("string: decode with backslashreplace", "tokenization.decode", decode_backslashes,
     "expected: 'hi\ufffd!'", "decode([104, 105, 255, 33], vocab)"),
    ("tensor: softmax with one global max", "attention.softmax", softmax_global_max,
     "NaN/inf values", "softmax(x), x = [[1000., 999., 990., 0.], [-1000., -999., -1000., -1005.]]"),
    ("tensor: softmax normalised over the whole tensor", "attention.softmax", softmax_summed_over_everything,
     "row (3, :) yours:", "softmax(x), x of shape (4, 6) from randn × 3"),
    ("module: MLP with GELU after c_proj too", "gpt_block.mlp", MLPActivatedTwice,
     "expected:", "MLP(n_embd=8) with the reference's weights, x of shape (2, 5, 8) from randn"),
    ("module: Block with a final LayerNorm", "gpt_block.block", BlockWithFinalNorm,
     "also wrong: full", "Block(n_embd=16, 2 heads) with the reference's weights, x of shape (2, 1, 16)"),
    ("hidden only: a causal mask precomputed for T ≤ 16", "attention.causal_mask", causal_mask_precomputed,
     "a hidden case fails — a long mask (T = 33): shape (16, 16), expected (33, 33)", None),
    ("hidden only: top-k without clamping k", "generation.top_k_logits", top_k_unclamped,
     "a hidden case fails — calling `top_k_logits` raised RuntimeError", None),
]


def shown(check_id: str, answer) -> str:
    """What the check cell prints, as a learner's kernel runs it."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        check(check_id, answer)
    return printed.getvalue().rstrip("\n")


if __name__ == "__main__":
    print("| wrong answer | what the check cell shows |\n|---|---|")
    for what, check_id, answer, _, _ in WRONG_ANSWERS:
        print(f"| {what} | <pre>{shown(check_id, answer).replace('|', '&#124;').replace(chr(10), '<br>')}</pre> |")
else:  # the tests; the new modules are imported here, so that the table above also runs on an older checkout
    import pytest

    from autograder.core import CHECKS, MAX_LINES, VERDICT_LINE, _load_all_checks, _reference_outputs, get_check
    from autograder.core import grading, run_exercise
    from autograder.values import KINDS, entry

    def all_checks():
        _load_all_checks()
        return list(CHECKS.values())

    @pytest.mark.parametrize(("what", "check_id", "answer", "says", "input_shown"), WRONG_ANSWERS,
                             ids=[w[0] for w in WRONG_ANSWERS])
    def test_a_wrong_answer_outside_the_catalogue_is_told_what_differs(what, check_id, answer, says, input_shown):
        printed = shown(check_id, answer)
        verdict = VERDICT_LINE.match(printed)
        assert verdict and verdict.group(1) == "✗" and verdict.group(2) == check_id, printed
        lines = printed.splitlines()
        assert len(lines) <= MAX_LINES, printed
        assert all(len(line) <= 125 for line in lines), printed
        assert says in " ".join(printed.split()), printed  # its lines are wrapped
        if input_shown:
            assert f"input: {input_shown}" in " ".join(printed.split()), printed
        else:  # a hidden failure: the visible half's point is kept, and no input is shown
            assert verdict.group(3) == f"{get_check(check_id).points:g}", printed
            assert "input:" not in printed and "yours" not in printed, printed
        assert len(set(line for line in lines if line.startswith("hint:"))) == sum(
            line.startswith("hint:") for line in lines), "a hint repeated"

    def test_a_correct_answer_is_graded_with_its_hidden_cases():
        def softmax(x, dim=-1):
            e = (x - x.max(dim=dim, keepdim=True).values).exp()
            return e / e.sum(dim=dim, keepdim=True)

        printed = shown("attention.softmax", softmax)
        assert printed == "✓ attention.softmax (2/2): correct on the visible probe and 5 hidden cases"

    def test_while_grading_the_cell_judges_the_visible_check_only(monkeypatch):
        monkeypatch.setenv("AUTOGRADER_GRADING", "1")
        assert grading()
        assert shown("attention.causal_mask", causal_mask_precomputed) == "✓ attention.causal_mask (1/1): correct"
        with pytest.raises(AssertionError, match=r"^✗ attention.softmax \(0/1\): "):
            check("attention.softmax", softmax_global_max)

    def test_a_hidden_failure_keeps_the_hidden_input_secret():
        result = run_exercise("attention.causal_mask", causal_mask_precomputed)
        assert (result.points, result.max_points, result.passed) == (1, 2, False)
        assert "33" in result.message and "tril" not in result.message

    def test_hints_are_given_once_and_only_when_plausible():
        class InitialisedAtOne(LearnerGPT):  # every parameter N(0, 1): several parts share a hint, each is said once
            def __init__(self, config):
                super().__init__(config)
                for p in self.parameters():
                    nn.init.normal_(p)

        message = shown("gpt_block.init", InitialisedAtOne)
        hints = [line for line in message.splitlines() if line.startswith("hint:")]
        assert hints and len(hints) == len(set(hints)), message

        def train_bytes_but_reordered_with_cjk(text, vocab_size):  # on bytes, but wrong on the hidden text with 字
            ids, merges = list(text.encode("utf-8")), {}
            while len(merges) < vocab_size - 256 and len(ids) > 1:
                counts = {}
                for pair in zip(ids, ids[1:]):
                    counts[pair] = counts.get(pair, 0) + 1
                pair = min(counts, key=lambda p: (-counts[p], p))
                merges[pair] = new_id = 256 + len(merges)
                out, i = [], 0
                while i < len(ids):
                    merged = i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair
                    out.append(new_id if merged else ids[i])
                    i += 2 if merged else 1
                ids = out
            return dict(reversed(merges.items())) if "字" in text else merges

        message = shown("tokenization.train_bpe", train_bytes_but_reordered_with_cjk)
        assert message.startswith("✗ tokenization.train_bpe (2/4)") and "characters" not in message, message

        # wrong on ordinary logits already: "correct on small logits but not on ±1000" (large_logits' hint) is false
        message = shown("attention.softmax", softmax_summed_over_everything)
        assert "also wrong: large_logits" in message and "correct on small logits" not in message, message

    def test_every_hidden_output_is_described_as_a_case():
        for c in all_checks():
            if c.hidden and not c.id.startswith("demo."):
                outputs = _reference_outputs(c, c.reference)
                assert [key for key in outputs if entry(c.cases, key) is None] == [], c.id

    def test_every_label_names_an_output_and_every_kind_is_known():
        def outputs_of(check_id):
            return set(_reference_outputs(CHECKS[check_id], CHECKS[check_id].reference)) if check_id in CHECKS else set()

        def names_one(key, outputs):
            return key == "*" or any(entry({key: ""}, output) is not None for output in outputs)

        for c in all_checks():
            outputs = outputs_of(c.id)
            both = outputs | outputs_of(c.id.removesuffix(".hidden")) | outputs_of(c.id + ".hidden")
            assert all(names_one(key, outputs) for key in (*c.inputs, *c.cases)), c.id
            assert all(names_one(key, both) for key in c.kinds), c.id  # kinds are shared by the two halves
            assert set(c.kinds.values()) <= set(KINDS), c.id
            assert not (c.hidden and c.inputs), f"{c.id}: a hidden probe's inputs are never shown"
