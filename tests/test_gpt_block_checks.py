"""Lesson 03's checks: correct implementations pass, every catalogued mistake is recognised by name when a learner
makes it, other wrong answers fail with a message that helps, and checks leave the global random state alone.

The mutants are written the way a learner would write them, independently of the variants in
``autograder/checks/gpt_block.py``.
"""

from __future__ import annotations

import math
from functools import partial

import pytest
from lesson_contract import mistake_catalogue_tests, solution_notebook_tests
import torch
import torch.nn as nn
from torch.nn import functional as F

from autograder import checks_for, get_check, run_check
from autograder.core import ProbeOutcome, _reference_outputs, judge
from gpt_reference.model import CausalSelfAttention

CHECKS = checks_for("03_gpt_block")
solution, test_solution_notebook_awards_every_check = solution_notebook_tests("03_gpt_block", CHECKS)


def checks_of(target):
    return [c.id for c in CHECKS if c.target == target]


# ---- correct alternatives ----------------------------------------------------------------------------------------


class TorchLayerNorm(nn.Module):
    def __init__(self, ndim, bias):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(ndim))
        self.bias = nn.Parameter(torch.zeros(ndim)) if bias else None

    def forward(self, x):
        var, mean = torch.var_mean(x, dim=-1, keepdim=True, unbiased=False)
        return (x - mean) * torch.rsqrt(var + 1e-5) * self.weight + (0 if self.bias is None else self.bias)


def gelu_sigmoid(x):  # 0.5(1 + tanh(z)) = sigmoid(2z)
    return x * torch.sigmoid(2 * math.sqrt(2 / math.pi) * (x + 0.044715 * torch.pow(x, 3)))


def gelu_tanh(x):
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


class LearnerMLP(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        return self.dropout(self.c_proj(gelu_sigmoid(self.c_fc(x))))


class NanoGPTBlock(nn.Module):
    """On the lesson-02 attention the lesson carries forward (the reference's, as while grading)."""

    def __init__(self, config):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config, impl="manual")
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = LearnerMLP(config)

    def forward(self, x):
        h = x + self.attn(self.ln_1(x))
        return h + self.mlp(self.ln_2(h))


class LearnerGPT(nn.Module):
    """nanoGPT's GPT on the Block above."""

    def __init__(self, config):
        super().__init__()
        self._build(config)
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    def _build(self, config):
        """Exercise 5: the modules, with GPT-2's names and the tied embedding."""
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            wpe=nn.Embedding(config.block_size, config.n_embd),
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([NanoGPTBlock(config) for _ in range(config.n_layer)]),
            ln_f=TorchLayerNorm(config.n_embd, config.bias),
        ))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight

    @staticmethod
    def _init_weights(module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(self, idx, targets=None):
        T = idx.size(1)
        if T > self.config.block_size:
            raise ValueError(f"sequence of length {T} is longer than block_size {self.config.block_size}")
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(torch.arange(T)))
        for block in self.transformer.h:
            x = block(x)
        logits = self.lm_head(self.transformer.ln_f(x))
        loss = None if targets is None else F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-1)
        return logits, loss


def count_by_parts(config):
    C, bias = config.n_embd, config.bias

    def linear(n_in, n_out):
        return n_in * n_out + (n_out if bias else 0)

    layer_norm = 2 * C if bias else C
    block = 2 * layer_norm + linear(C, 3 * C) + linear(C, C) + linear(C, 4 * C) + linear(4 * C, C)
    return config.vocab_size * C + config.block_size * C + config.n_layer * block + layer_norm


def load_with_copy(model, hf_state):
    params = model.state_dict()
    with torch.no_grad():
        for k, v in hf_state.items():
            if k in params:
                params[k].copy_(v.T if k.endswith(("c_attn.weight", "c_proj.weight", "c_fc.weight")) else v)


ALTERNATIVES = {"LayerNorm": [TorchLayerNorm], "gelu": [gelu_sigmoid, gelu_tanh], "MLP": [LearnerMLP],
                "Block": [NanoGPTBlock], "GPT": [LearnerGPT], "count_params": [count_by_parts],
                "load_hf_state_dict": [load_with_copy]}


@pytest.mark.parametrize("check_id", [c.id for c in CHECKS])
def test_correct_alternatives_pass(check_id):
    check = get_check(check_id)
    for implementation in ALTERNATIVES[check.target]:
        result = run_check(check_id, implementation)
        assert result.passed, result.message


@pytest.mark.parametrize("check_id", checks_of("gelu"))
def test_torch_gelu_is_within_tolerance(check_id):
    """torch's tanh GELU gives outputs the checks accept (handed in as an answer it is not the learner's own:
    tests/test_ownwork.py)."""
    check = get_check(check_id)
    outputs = _reference_outputs(check, partial(F.gelu, approximate="tanh"))
    assert judge(check, ProbeOutcome(outputs=outputs)).passed


# ---- mutants, one per catalogued mistake ---------------------------------------------------------------------------


def layer_norm_mutant(normalise):
    class Mutant(TorchLayerNorm):
        def forward(self, x):
            return normalise(self, x)
    return Mutant


def _affine(self, y):
    return y * self.weight + (0 if self.bias is None else self.bias)


def block_mutant(forward):
    return type("MutantBlock", (NanoGPTBlock,), {"forward": lambda self, x: forward(self, x)})


class GPTWithoutPositions(LearnerGPT):
    def forward(self, idx, targets=None):
        if idx.size(1) > self.config.block_size:
            raise ValueError("too long")
        x = self.transformer.wte(idx)
        for block in self.transformer.h:
            x = block(x)
        logits = self.lm_head(self.transformer.ln_f(x))
        return logits, None if targets is None else F.cross_entropy(logits.flatten(0, 1), targets.flatten())


class GPTWithoutLnF(LearnerGPT):
    def forward(self, idx, targets=None):
        if idx.size(1) > self.config.block_size:
            raise ValueError("too long")
        x = self.transformer.wte(idx) + self.transformer.wpe(torch.arange(idx.size(1)))
        for block in self.transformer.h:
            x = block(x)
        logits = self.lm_head(x)
        return logits, None if targets is None else F.cross_entropy(logits.flatten(0, 1), targets.flatten())


class GPTUntied(LearnerGPT):
    def __init__(self, config):
        super().__init__(config)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)


def init_mutant(std):
    class Mutant(LearnerGPT):
        def __init__(self, config):
            super().__init__(config)
            for block in self.transformer.h:
                nn.init.normal_(block.attn.c_proj.weight, std=std(config))
                nn.init.normal_(block.mlp.c_proj.weight, std=std(config))
    return Mutant


class DefaultEmbeddings(LearnerGPT):
    def __init__(self, config):
        super().__init__(config)
        self.transformer.wte.weight.data.normal_()
        self.transformer.wpe.weight.data.normal_()


class WithoutGPT2Init(LearnerGPT):
    """Exercise 5 done, exercise 6 not yet: the modules are built and keep PyTorch's initialisation."""

    def __init__(self, config):
        nn.Module.__init__(self)
        self._build(config)


def counting(**kw):
    def count(c):
        C, V = c.n_embd, c.vocab_size
        b = kw.get("bias", c.bias)
        ln = 2 * C if b else C
        block = 2 * ln + 12 * C * C + (9 * C if b else 0)
        return V * C * (2 if kw.get("untied") else 1) + (0 if kw.get("no_wpe") else c.block_size * C) + c.n_layer * block + (0 if kw.get("no_ln_f") else ln)
    return count


def load_without_transpose(model, hf_state):
    params = dict(model.named_parameters())
    with torch.no_grad():
        for k, v in hf_state.items():
            if k in params:
                params[k].copy_(v.reshape(params[k].shape))


def load_only_misfits(model, hf_state):  # transposes what does not fit: the square attn.c_proj slips through
    state = model.state_dict()
    fixed = {k: (v.t() if k in state and v.shape != state[k].shape else v) for k, v in hf_state.items()
             if not k.endswith((".attn.bias", ".attn.masked_bias"))}
    model.load_state_dict(fixed)


MUTANTS = {
    "LayerNorm": {
        "unbiased variance": layer_norm_mutant(lambda s, x: _affine(s, (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, keepdim=True) + 1e-5))),
        "eps outside the square root": layer_norm_mutant(lambda s, x: _affine(s, (x - x.mean(-1, keepdim=True)) / (x.std(-1, keepdim=True, unbiased=False) + 1e-5))),
        "normalised over the wrong axis": layer_norm_mutant(lambda s, x: _affine(s, (x - x.mean(-2, keepdim=True)) / torch.sqrt(x.var(-2, keepdim=True, unbiased=False) + 1e-5))),
        "missing affine weight and bias": layer_norm_mutant(lambda s, x: (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, keepdim=True, unbiased=False) + 1e-5)),
    },
    "gelu": {
        "exact (erf) GELU": lambda x: 0.5 * x * (1 + torch.erf(x / math.sqrt(2))),
        "ReLU instead of GELU": lambda x: torch.clamp(x, min=0),
        "missing the 0.044715·x³ term": lambda x: 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * x)),
    },
    "MLP": {
        "exact (erf) GELU": type("M", (LearnerMLP,), {"forward": lambda s, x: s.c_proj(nn.GELU()(s.c_fc(x)))}),
        "ReLU instead of GELU": type("M", (LearnerMLP,), {"forward": lambda s, x: s.c_proj(torch.relu(s.c_fc(x)))}),
    },
    "Block": {
        "post-LN block": block_mutant(lambda s, x: s.ln_2((y := s.ln_1(x + s.attn(x)))  + s.mlp(y))),
        "missing residual connections": block_mutant(lambda s, x: s.mlp(s.ln_2(s.attn(s.ln_1(x))))),
        "one LayerNorm shared by both sublayers": block_mutant(lambda s, x: (y := x + s.attn(s.ln_1(x))) + s.mlp(s.ln_1(y))),
    },
    "GPT": {
        "missing position embedding": GPTWithoutPositions,
        "missing ln_f": GPTWithoutLnF,
        "untied lm_head": GPTUntied,
        "no residual-projection scaling": init_mutant(lambda c: 0.02),
        "residual projections scaled by 1/sqrt(n_layer)": init_mutant(lambda c: 0.02 * c.n_layer ** -0.5),
        "embeddings left at PyTorch's default N(0, 1)": DefaultEmbeddings,
        "GPT-2's initialisation not applied (PyTorch's defaults)": WithoutGPT2Init,
    },
    "count_params": {
        "lm_head counted separately (no weight tying)": counting(untied=True),
        "position embeddings left out": counting(no_wpe=True),
        "ln_f left out": counting(no_ln_f=True),
        "biases counted with bias=False": counting(bias=True),
    },
    "load_hf_state_dict": {
        "Conv1D weights not transposed": load_without_transpose,
        "square attn.c_proj weight not transposed": load_only_misfits,
    },
}

(
    test_every_mistake_is_named,
    test_every_mutant_is_in_the_catalogue,
    test_each_catalogued_variant_is_named_as_itself,
    test_no_two_variants_agree,
) = mistake_catalogue_tests(CHECKS, MUTANTS)


# ---- other wrong answers -------------------------------------------------------------------------------------------


class Renamed(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.fc = nn.Linear(config.n_embd, 4 * config.n_embd)


class LogitsOnly(LearnerGPT):
    def forward(self, idx, targets=None):
        return super().forward(idx, targets)[0]


class IndexErrorWhenTooLong(LearnerGPT):
    def forward(self, idx, targets=None):
        x = self.transformer.wte(idx) + self.transformer.wpe(torch.arange(idx.size(1)))
        for block in self.transformer.h:
            x = block(x)
        logits = self.lm_head(self.transformer.ln_f(x))
        return logits, None if targets is None else F.cross_entropy(logits.flatten(0, 1), targets.flatten())


def not_implemented(*args, **kwargs):
    raise NotImplementedError()


@pytest.mark.parametrize(("implementation", "target", "expected"), [
    (Renamed, "MLP", "unexpected keys"), (Renamed, "MLP", "fc.weight"),
    (LogitsOnly, "GPT", "expected a tuple (logits, loss)"),
    (IndexErrorWhenTooLong, "GPT", "longer than block_size must raise ValueError"),
    (lambda c: 1.5, "count_params", "expected an int"),
    (lambda x: (x, x), "gelu", "tuple"),
    (not_implemented, "LayerNorm", "not implemented yet"), (not_implemented, "gelu", "not implemented yet"),
    (not_implemented, "GPT", "not implemented yet"), (not_implemented, "load_hf_state_dict", "not implemented yet"),
    (not_implemented, "count_params", "not implemented yet"), (not_implemented, "Block", "not implemented yet"),
])
def test_wrong_answers_fail_with_a_useful_message(implementation, target, expected):
    for check_id in checks_of(target)[:2]:
        result = run_check(check_id, implementation)
        assert not result.passed
        assert expected in result.message, result.message


def test_checks_leave_the_global_random_state_alone(solution):
    torch.manual_seed(123)
    before = torch.get_rng_state()
    for c in CHECKS:
        run_check(c.id, getattr(solution, c.target))
    assert torch.equal(torch.get_rng_state(), before)
