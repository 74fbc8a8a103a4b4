"""Lesson 02's checks: correct implementations pass, every catalogued mistake is recognised by name when a learner
makes it, other wrong answers fail with a message that helps, and a message shows expected values only on a visible
probe, beside the learner's own.

The mutants below are written the way a learner would write them, independently of the mistake variants in
``autograder/checks/attention.py``: a mutant that is not named means the catalogue misses how the mistake looks.
"""

from __future__ import annotations

import math
import re
from functools import partial

import numpy as np
import pytest
from lesson_contract import mistake_catalogue_tests, solution_notebook_tests
import torch
import torch.nn as nn
from torch.nn import functional as F

from autograder import checks_for, get_check, run_check
from autograder.core import ProbeOutcome, _reference_outputs, judge, run_probe
from gpt_reference.model import CausalSelfAttention as ReferenceSelfAttention

CHECKS = checks_for("02_attention")
solution, test_solution_notebook_awards_every_check = solution_notebook_tests("02_attention", CHECKS)


def checks_of(target: str) -> list[str]:
    return [c.id for c in CHECKS if c.target == target]


# ---- correct implementations, as a learner would write them ---------------------------------------------------------


def average_past(x):
    T = x.size(1)
    wei = torch.tril(torch.ones(T, T))
    wei = wei / wei.sum(1, keepdim=True)
    return wei @ x


def softmax(x, dim=-1):
    e = torch.exp(x - x.max(dim=dim, keepdim=True).values)
    return e / e.sum(dim=dim, keepdim=True)


def causal_mask(T):
    return torch.tril(torch.ones(T, T)).bool()


def scaled_dot_product_attention(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) * k.shape[-1] ** -0.5
    if mask is not None:
        scores = scores.masked_fill(mask == 0, float("-inf"))
    return softmax(scores) @ v


def torch_sdpa(q, k, v, mask=None):
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


def softmax_by_logsumexp(x, dim=-1):
    return torch.exp(x - torch.logsumexp(x, dim=dim, keepdim=True))


def attention_with_where(q, k, v, mask=None):
    scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(q.size(-1))
    if mask is not None:
        scores = torch.where(mask, scores, torch.tensor(float("-inf")))
    return softmax_by_logsumexp(scores) @ v


class NanoGPTAttention(nn.Module):
    """nanoGPT's slow path, with its float causal mask kept as a (persistent) buffer called ``bias``."""

    def __init__(self, config):
        super().__init__()
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.n_head, self.n_embd = config.n_head, config.n_embd
        size = config.block_size
        self.register_buffer("bias", torch.tril(torch.ones(size, size)).view(1, 1, size, size))

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        att = att.masked_fill(self.bias[:, :, :T, :T] == 0, float("-inf"))
        y = F.softmax(att, dim=-1) @ v
        return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))


CORRECT = {
    "average_past": [average_past],
    "softmax": [softmax, softmax_by_logsumexp],
    "causal_mask": [causal_mask],
    "scaled_dot_product_attention": [scaled_dot_product_attention, attention_with_where],
    "CausalSelfAttention": [NanoGPTAttention],  # and LearnerAttention, below
}


@pytest.mark.parametrize("check_id", [c.id for c in CHECKS])
def test_correct_implementations_pass(check_id):
    target = next(c.target for c in CHECKS if c.id == check_id)
    for implementation in CORRECT[target]:
        result = run_check(check_id, implementation)
        assert result.passed, result.message
        assert result.points == result.max_points


THEIRS = {"softmax": partial(F.softmax, dim=-1), "scaled_dot_product_attention": torch_sdpa,
          "CausalSelfAttention": partial(ReferenceSelfAttention, impl="manual")}


@pytest.mark.parametrize("check_id", [c.id for c in CHECKS if c.target in THEIRS])
def test_torch_and_the_reference_are_within_tolerance(check_id):
    """Torch's kernels and the reference's other path give outputs the checks accept: the tolerances leave room
    for every correct formulation. (Handed in as answers they are not the learner's own: tests/test_ownwork.py.)"""
    check = get_check(check_id)
    outputs = _reference_outputs(check, THEIRS[check.target])
    assert judge(check, ProbeOutcome(outputs=outputs)).passed


def test_lesson_has_visible_and_hidden_checks_for_every_object():
    ids = {c.id for c in CHECKS}
    for name in ("average_past", "softmax", "causal_mask", "scaled_dot_product_attention", "causal_self_attention"):
        assert {f"attention.{name}", f"attention.{name}.hidden"} <= ids


# ---- mutants: one per catalogued mistake ----------------------------------------------------------------------------


def average_includes_future(x):
    T = x.shape[1]
    return torch.ones(T, T) / T @ x


def average_divides_by_T(x):
    T = x.shape[1]
    return torch.tril(torch.ones(T, T)) / T @ x


def average_sum_without_keepdim(x):
    wei = torch.tril(torch.ones(x.shape[1], x.shape[1]))
    wei = wei / wei.sum(1)
    return wei @ x


def softmax_naive(x, dim=-1):
    return torch.exp(x) / torch.sum(torch.exp(x), dim=dim, keepdim=True)


def softmax_ignores_dim(x, dim=-1):
    shifted = x - x.max(dim=-1, keepdim=True).values
    return shifted.exp() / shifted.exp().sum(dim=-1, keepdim=True)


def mask_upper(T):
    return torch.triu(torch.ones(T, T)).bool()


def mask_strictly_lower(T):
    return torch.tril(torch.ones(T, T, dtype=torch.bool), diagonal=-1)


def mask_blocked_is_true(T):
    return torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)


def sdpa_unscaled(q, k, v, mask=None):
    att = q @ k.transpose(-2, -1)
    if mask is not None:
        att = att.masked_fill(~mask, float("-inf"))
    return torch.softmax(att, dim=-1) @ v


def sdpa_scaled_by_d(q, k, v, mask=None):
    att = q @ k.transpose(-2, -1) / q.shape[-1]
    if mask is not None:
        att = att.masked_fill(~mask, float("-inf"))
    return torch.softmax(att, dim=-1) @ v


def sdpa_mask_after_softmax(q, k, v, mask=None):
    att = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)
    if mask is not None:
        att = att * mask
    return att @ v


def sdpa_inf_after_softmax(q, k, v, mask=None):
    att = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)
    if mask is not None:
        att = att.masked_fill(mask == 0, float("-inf"))
    return att @ v


def sdpa_fill_zero(q, k, v, mask=None):
    att = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        att = att.masked_fill(~mask, 0.0)
    return torch.softmax(att, dim=-1) @ v


def sdpa_inverted(q, k, v, mask=None):
    att = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        att = att.masked_fill(mask, float("-inf"))
    return torch.softmax(att, dim=-1) @ v


def sdpa_softmax_over_queries(q, k, v, mask=None):
    att = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        att = att.masked_fill(~mask, float("-inf"))
    return torch.softmax(att, dim=2) @ v


def sdpa_causal_by_default(q, k, v, mask=None):
    if mask is None:  # "attention in a GPT is causal anyway"
        T = q.size(-2)
        mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
    att = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    return torch.softmax(att.masked_fill(~mask, float("-inf")), dim=-1) @ v


class LearnerAttention(nn.Module):
    """A correct learner module, written in steps so that each mutant below rewrites one step its own way."""

    def __init__(self, config):
        super().__init__()
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.n_head = config.n_head
        self.n_embd = config.n_embd

    def split(self, t, B, T, C):
        return t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)

    def mask(self, T):
        return torch.tril(torch.ones(T, T, dtype=torch.bool))

    def attend(self, q, k, v, mask):
        att = q @ k.transpose(-2, -1) / math.sqrt(k.size(-1))
        att = att.masked_fill(~mask, float("-inf"))
        return att.softmax(dim=-1) @ v

    def merge(self, y, B, T, C):
        return y.transpose(1, 2).contiguous().view(B, T, C)

    def project(self, y):
        return self.c_proj(y)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = (self.split(t, B, T, C) for t in self.c_attn(x).split(self.n_embd, dim=2))
        return self.project(self.merge(self.attend(q, k, v, self.mask(T)), B, T, C))


class AlwaysBiased(LearnerAttention):
    def __init__(self, config):
        super().__init__(config)
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd)  # bias=True, PyTorch's default
        self.c_proj = nn.Linear(config.n_embd, config.n_embd)


def module_with(**steps):
    """A LearnerAttention with some steps rewritten; each step is given as a plain function of (self, …)."""
    return type("MutantAttention", (LearnerAttention,), steps)


MUTANTS = {
    "average_past": {
        "includes the future": average_includes_future,
        "divides by T instead of t+1": average_divides_by_T,
        "row sums broadcast along the wrong axis": average_sum_without_keepdim,
    },
    "softmax": {"no max subtraction": softmax_naive, "wrong dim": softmax_ignores_dim},
    "causal_mask": {
        "inverted (upper triangle)": mask_upper,
        "strictly lower (diagonal excluded)": mask_strictly_lower,
        "True marks blocked positions": mask_blocked_is_true,
    },
    "scaled_dot_product_attention": {
        "no 1/sqrt(d) scale": sdpa_unscaled,
        "scaled by d instead of sqrt(d)": sdpa_scaled_by_d,
        "mask applied after softmax": sdpa_mask_after_softmax,
        "-inf filled in after softmax": sdpa_inf_after_softmax,
        "mask filled with 0 instead of -inf": sdpa_fill_zero,
        "inverted mask": sdpa_inverted,
        "softmax over the wrong axis": sdpa_softmax_over_queries,
        "mask applied when none is given": sdpa_causal_by_default,
    },
    "CausalSelfAttention": {
        "no 1/sqrt(d) scale": module_with(attend=lambda self, q, k, v, m: sdpa_unscaled(q, k, v, m)),
        "scaled by d instead of sqrt(d)": module_with(attend=lambda self, q, k, v, m: sdpa_scaled_by_d(q, k, v, m)),
        "mask applied after softmax": module_with(attend=lambda self, q, k, v, m: sdpa_mask_after_softmax(q, k, v, m)),
        "-inf filled in after softmax": module_with(attend=lambda self, q, k, v, m: sdpa_inf_after_softmax(q, k, v, m)),
        "mask filled with 0 instead of -inf": module_with(attend=lambda self, q, k, v, m: sdpa_fill_zero(q, k, v, m)),
        "inverted mask (upper triangle)": module_with(mask=lambda self, T: mask_upper(T)),
        "strictly-lower mask (diagonal excluded)": module_with(mask=lambda self, T: mask_strictly_lower(T)),
        "softmax over the wrong axis": module_with(
            attend=lambda self, q, k, v, m: sdpa_softmax_over_queries(q, k, v, m)),
        "heads split without transposing": module_with(
            split=lambda self, t, B, T, C: t.reshape(B, self.n_head, T, C // self.n_head)),
        "heads merged without transposing back": module_with(merge=lambda self, y, B, T, C: y.reshape(B, T, C)),
        "missing output projection": module_with(project=lambda self, y: y),
        "Linear layers built with bias=True whatever config.bias": AlwaysBiased,
    },
}

(
    test_every_mistake_is_named,
    test_every_mutant_is_in_the_catalogue,
    test_each_catalogued_variant_is_named_as_itself,
    test_no_two_variants_agree,
) = mistake_catalogue_tests(CHECKS, MUTANTS)


# ---- other wrong answers: a useful message, never a crash -----------------------------------------------------------


def raises_value_error(*args, **kwargs):
    raise ValueError("oops")


def not_implemented(*args, **kwargs):
    raise NotImplementedError()


def first_argument_as(transform):
    return lambda x, *args, **kwargs: transform(x)


WRONG_FUNCTIONS = {
    "zeros": (first_argument_as(torch.zeros_like), "max abs error"),
    "noise": (first_argument_as(lambda x: torch.randn(x.shape, generator=torch.Generator().manual_seed(0))),
              "max abs error"),
    "wrong shape": (first_argument_as(lambda x: x.sum(-1)), "shape"),
    "tuple": (first_argument_as(lambda x: (x, x)), "returned a tuple of 2 values"),
    "numpy": (first_argument_as(lambda x: np.zeros(3)), "returned ndarray; expected a torch.Tensor"),
    "exception": (raises_value_error, "raised ValueError: oops"),
    "not implemented": (not_implemented, "not implemented yet"),
    "undefined": (None, "is not defined"),
}

FUNCTION_TARGETS = ["average_past", "softmax", "scaled_dot_product_attention"]


@pytest.mark.parametrize("target", FUNCTION_TARGETS)
@pytest.mark.parametrize("wrong", list(WRONG_FUNCTIONS))
def test_wrong_functions_fail_with_a_useful_message(target, wrong):
    implementation, expected_message = WRONG_FUNCTIONS[wrong]
    for check_id in checks_of(target):
        result = run_check(check_id, implementation)
        assert not result.passed and result.mistake is None
        assert expected_message in result.message, result.message


@pytest.mark.parametrize(("implementation", "expected_message"), [
    (lambda T: torch.tril(torch.ones(T, T)), "mask of 0s and 1s; expected dtype torch.bool"),
    (lambda T: torch.zeros(T, T).masked_fill(torch.ones(T, T).triu(1) == 1, float("-inf")), "additive"),
    (lambda T: torch.ones(T, T, dtype=torch.bool), "entries wrong"),
    (lambda T: torch.ones(T, dtype=torch.bool), "shape"),
    (lambda T: [[True]], "returned list; expected a torch.Tensor"),
    (not_implemented, "not implemented yet"),
])
def test_wrong_masks_fail_with_a_useful_message(implementation, expected_message):
    for check_id in checks_of("causal_mask"):
        result = run_check(check_id, implementation)
        assert not result.passed
        assert expected_message in result.message, result.message


class RenamedAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.qkv = nn.Linear(config.n_embd, 3 * config.n_embd)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd)


class ReturnsWeightsToo(LearnerAttention):
    def forward(self, x):
        return super().forward(x), None


class TransposedWeights(LearnerAttention):
    def __init__(self, config):
        super().__init__(config)
        self.c_attn = nn.Linear(3 * config.n_embd, config.n_embd)


class WrongShape(LearnerAttention):
    def forward(self, x):
        return super().forward(x)[:, -1]


class Unfinished(nn.Module):
    def __init__(self, config):
        super().__init__()
        raise NotImplementedError()


def not_a_module(config):
    return torch.zeros(3)


@pytest.mark.parametrize(("implementation", "check_ids", "expected_message"), [
    (RenamedAttention, checks_of("CausalSelfAttention"), "unexpected keys (GPT-2's parameters your module lacks)"),
    (RenamedAttention, checks_of("CausalSelfAttention"), "qkv.weight"),
    (ReturnsWeightsToo, checks_of("CausalSelfAttention"), "returned a tuple of 2 values"),
    (TransposedWeights, checks_of("CausalSelfAttention"), "size mismatch for c_attn.weight"),
    (WrongShape, checks_of("CausalSelfAttention"), "expected the input's shape (B, T, C)"),
    (Unfinished, checks_of("CausalSelfAttention"), "not implemented yet"),
    (not_a_module, checks_of("CausalSelfAttention"), "expected an nn.Module"),
    (raises_value_error, checks_of("CausalSelfAttention"), "raised ValueError: oops"),
])
def test_wrong_modules_fail_with_a_useful_message(implementation, check_ids, expected_message):
    for check_id in check_ids:
        result = run_check(check_id, implementation)
        assert not result.passed
        assert expected_message in result.message, result.message


def test_an_unnamed_module_error_points_at_the_isolation_parts():
    class DoubledBias(LearnerAttention):  # adds c_proj's bias a second time
        def project(self, y):
            return self.c_proj(y) + (0 if self.c_proj.bias is None else self.c_proj.bias)

    result = run_check("attention.causal_self_attention", DoubledBias)
    assert result.mistake is None
    assert "right on: no_bias" in result.message


# ---- what messages must never do, and what checks must never touch --------------------------------------------------

NUMBER_LIST = re.compile(r"(-?\d+\.\d+(e-?\d+)?[,\s]+){4,}")


def wrong_answers():
    for target, mutants in MUTANTS.items():
        yield from ((target, m) for m in mutants.values())
    for target in FUNCTION_TARGETS:
        yield from ((target, impl) for impl, _ in WRONG_FUNCTIONS.values())


def without_visible_values(check_id: str, message: str) -> str:
    """A message less what a visible probe may show: its input, and the values beside the learner's own."""
    if get_check(check_id).hidden:
        return message
    return "\n".join(line for line in message.splitlines()
                     if not line.lstrip().startswith(("input:", "expected:")) and " yours" not in line)


def test_messages_show_expected_values_only_beside_the_learners_on_a_visible_probe():
    for target, implementation in wrong_answers():
        for check_id in checks_of(target):
            message = without_visible_values(check_id, run_check(check_id, implementation).message)
            assert "tensor(" not in message and not re.search(r"\[\s*-?\d", message), message
            assert not NUMBER_LIST.search(message), message
            expected = run_probe(get_check(check_id), CORRECT[target][0]).outputs
            values = next(iter(expected.values())).double().flatten()[:8].tolist()
            for value in (v for v in values if 0.01 < abs(v) < 1e3):
                assert f"{value:.4f}" not in message, message


def test_checks_leave_the_global_random_state_alone():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    for check_id in checks_of("CausalSelfAttention"):
        run_check(check_id, LearnerAttention)
    assert torch.equal(torch.get_rng_state(), before)
