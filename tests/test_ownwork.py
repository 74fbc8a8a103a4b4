"""Your own work only (``autograder/ownwork.py``): an object that is, wraps or subclasses the reference's answer,
torch's ready-made one or the checks' code fails its checks by name, and so does one that uses an API its exercise
forbids; the solutions, which build on earlier lessons' objects as the lessons say, keep full marks.

Every check of every lesson is covered: the answer key's object imported the way a scratch cell imports it, a
learner-style mutant for each forbidden API of the contract (its outputs are right: the flag is what fails it), and
each exercise's "without `X`" in the solution notebooks is a forbidden API of its check.
"""

from __future__ import annotations

import functools
import json
import re
import sys
from pathlib import Path

import nbformat
import pytest
import torch
import torch.nn as nn
from torch.nn import functional as F

from autograder import checks_for, get_check, run_check
from autograder.answer_key import ANSWER_KEY
from autograder.channel import decode_outcome, encode_outcome
from autograder.core import CHECKS, ProbeOutcome, _load_all_checks, _reference_outputs, judge
from autograder.grading import grade, progress
from autograder.ownwork import BORROWED, FORBIDDEN, NAMESPACES, RULE_WORDS, resolve_api
from gpt_reference.config import GPTConfig
from gpt_reference.model import GPT as ReferenceGPT
from gpt_reference.model import Block as ReferenceBlock
from gpt_reference.model import CausalSelfAttention as ReferenceAttention
from gpt_reference.model import LayerNorm as ReferenceLayerNorm
from gpt_reference.trainer import train_step as reference_train_step

SOLUTIONS = Path(__file__).resolve().parents[1] / "solutions"
GRADED_OBJECTS = [(lesson, name) for lesson, names in ANSWER_KEY.items() for name in names]


def checks_of(lesson: str, target: str) -> list[str]:
    return [c.id for c in checks_for(lesson) if c.target == target]


def right_but_for_the_flag(check_id: str, implementation) -> bool:
    """The implementation's outputs, unwatched, pass the judge: only the flag fails it."""
    check = get_check(check_id)
    return judge(check, ProbeOutcome(outputs=_reference_outputs(check, implementation))).passed


# ---- the answer key's objects, imported -----------------------------------------------------------------------------


@pytest.mark.parametrize(("lesson", "name"), GRADED_OBJECTS)
def test_the_answer_keys_object_imported_is_not_yours(lesson, name):
    """``from gpt_reference.model import Block`` (or torch's, where the key names torch) in a scratch cell."""
    path = ANSWER_KEY[lesson][name]
    module, attribute = path.rsplit(".", 1)
    namespace: dict = {}
    exec(f"from {module} import {attribute} as {name}", namespace)
    for check_id in checks_of(lesson, name):
        result = run_check(check_id, namespace[name])
        assert not result.passed and result.points == 0, result.line()
        assert result.mistake in (BORROWED, FORBIDDEN), result.line()
        owner = f"torch's `{path}`" if path.startswith("torch.") else f"the reference's `{name}`"
        assert result.message == f"this is {owner}, not yours", result.line()


# ---- wrappers and subclasses ----------------------------------------------------------------------------------------


class BlockHoldingTheReferences(nn.Module):
    """Takes the reference Block's parts under GPT-2's names, and runs its forward."""

    def __init__(self, config):
        super().__init__()
        reference = ReferenceBlock(config)
        self.ln_1, self.attn, self.ln_2, self.mlp = reference.ln_1, reference.attn, reference.ln_2, reference.mlp

    def forward(self, x):
        return ReferenceBlock.forward(self, x)


def block_factory(config):
    return ReferenceBlock(config)


class BlockSubclass(ReferenceBlock):
    def forward(self, x, cache=None):
        return super().forward(x, cache)


class LayerNormCallingTheReferences(nn.Module):
    def __init__(self, ndim, bias):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(ndim))
        self.bias = nn.Parameter(torch.zeros(ndim)) if bias else None

    def forward(self, x):
        return ReferenceLayerNorm.forward(self, x)


class LayerNormSubclass(ReferenceLayerNorm):
    pass


def softmax_calling_torch(x, dim=-1):
    return torch.softmax(x, dim=dim)


def train_step_calling_the_reference(model, optimizer, batches, grad_clip):
    return reference_train_step(model, optimizer, batches, grad_clip)


@functools.wraps(reference_train_step)
def train_step_decorated(*args, **kwargs):
    return reference_train_step(*args, **kwargs)


BORROWED_ANSWERS = [
    ("gpt_block.block", BlockHoldingTheReferences, "this calls the reference's `Block`, so it is not yours"),
    ("gpt_block.block", block_factory, "this calls the reference's `Block`, so it is not yours"),
    ("gpt_block.block", BlockSubclass, "this is a subclass of the reference's `Block`, not yours"),
    ("gpt_block.layer_norm", LayerNormCallingTheReferences, "this calls the reference's `LayerNorm`, so it is not yours"),
    ("gpt_block.layer_norm", LayerNormSubclass, "this is a subclass of the reference's `LayerNorm`, not yours"),
    ("gpt_block.layer_norm", functools.partial(ReferenceLayerNorm), "this is the reference's `LayerNorm`, not yours"),
    ("attention.softmax", softmax_calling_torch, "without `torch.softmax`: your `softmax` calls it"),
    ("attention.softmax", functools.partial(F.softmax, dim=-1), "this is torch's `F.softmax`, not yours"),
    ("training.train_step", train_step_calling_the_reference, "this calls the reference's `train_step`, so it is not yours"),
    ("training.train_step", train_step_decorated, "this is the reference's `train_step`, not yours"),
    ("training.train_step", functools.partial(reference_train_step), "this is the reference's `train_step`, not yours"),
]  # fmt: skip


@pytest.mark.parametrize(("check_id", "implementation", "message"), BORROWED_ANSWERS)
def test_wrappers_and_subclasses_are_not_yours(check_id, implementation, message):
    for each in (check_id, check_id + ".hidden"):
        result = run_check(each, implementation)
        assert not result.passed and result.mistake in (BORROWED, FORBIDDEN), result.line()
        assert result.message == message, result.line()
    assert right_but_for_the_flag(check_id, implementation)


def test_the_checks_own_code_is_not_yours():
    check = get_check("attention.softmax")
    variant = check.mistakes[0].implementation
    result = run_check(check.id, variant)
    assert result.mistake == BORROWED and result.message == f"this is the checks' `{variant.__name__}`, not yours"
    result = run_check(check.id, lambda x, dim=-1: variant(x, dim))
    assert result.mistake == BORROWED
    assert result.message == f"this calls the checks' `{variant.__name__}`, so it is not yours"


# ---- what the lessons build on is allowed ---------------------------------------------------------------------------


class BlockOnTheCarriedAttention(nn.Module):
    """Lesson 03's Block on lesson 02's attention, which ``yours()`` hands over as the reference's while grading: it
    calls F.scaled_dot_product_attention, which only lesson 02's exercise forbids."""

    def __init__(self, config):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = ReferenceAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = nn.ModuleDict(dict(c_fc=nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias),
                                      c_proj=nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)))

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp.c_proj(F.gelu(self.mlp.c_fc(self.ln_2(x)), approximate="tanh"))


def test_building_on_an_earlier_lessons_reference_is_allowed():
    for check_id in checks_of("03_gpt_block", "Block"):
        assert run_check(check_id, BlockOnTheCarriedAttention).passed


def test_lesson_06_may_extend_the_carried_gpt_but_must_add_to_it():
    """Lesson 06's GPT extends lesson 03's (the reference's while grading); extending it with nothing is not yours."""
    empty = type("GPT", (ReferenceGPT,), {})
    result = run_check("your_gpt.gpt", empty)
    assert result.mistake == BORROWED and result.message == "this is the reference's `GPT` with no code of yours added"


# ---- forbidden APIs -------------------------------------------------------------------------------------------------


class LayerNormWithTorchsModule(nn.Module):
    def __init__(self, ndim, bias):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(ndim))
        self.bias = nn.Parameter(torch.zeros(ndim)) if bias else None

    def forward(self, x):
        normalise = nn.LayerNorm(x.size(-1), elementwise_affine=False)
        return normalise(x) * self.weight + (0 if self.bias is None else self.bias)


class LayerNormWithTorchsFunction(LayerNormWithTorchsModule):
    def forward(self, x):
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, 1e-5)


def count_by_building_on_meta(config):  # no memory spent, but a model built all the same
    with torch.device("meta"):
        return sum(p.numel() for p in ReferenceGPT(config).parameters())


def cross_entropy_by_nll(logits, targets, ignore_index=-1):
    flat = logits.reshape(-1, logits.size(-1))
    return F.nll_loss(F.log_softmax(flat, dim=-1), targets.reshape(-1), ignore_index=ignore_index)


class AdamWOnTorchs(torch.optim.Optimizer):
    """Keeps torch's optimizer inside, over the same groups, and steps it."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))
        self.inner = self.make_inner([{"params": group["params"]} for group in self.param_groups])

    def make_inner(self, groups):
        return torch.optim.AdamW(groups)

    def step(self, closure=None):
        for mine, theirs in zip(self.param_groups, self.inner.param_groups):
            theirs.update(lr=mine["lr"], betas=mine["betas"], eps=mine["eps"], weight_decay=mine["weight_decay"])
        self.inner.step()


class AdamWOnAdam(AdamWOnTorchs):
    """torch's Adam, with the decoupled decay done by hand first."""

    def make_inner(self, groups):
        return torch.optim.Adam(groups)

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.mul_(1 - group["lr"] * group["weight_decay"])
        for mine, theirs in zip(self.param_groups, self.inner.param_groups):
            theirs.update(lr=mine["lr"], betas=mine["betas"], eps=mine["eps"], weight_decay=0.0)
        self.inner.step()


FORBIDDEN_MUTANTS = {
    ("softmax", "torch.softmax"): lambda x, dim=-1: torch.softmax(x, dim),
    ("softmax", "F.softmax"): lambda x, dim=-1: F.softmax(x, dim=dim),
    ("softmax", "Tensor.softmax"): lambda x, dim=-1: x.softmax(dim),
    ("scaled_dot_product_attention", "F.scaled_dot_product_attention"):
        lambda q, k, v, mask=None: F.scaled_dot_product_attention(q, k, v, attn_mask=mask),
    ("LayerNorm", "nn.LayerNorm"): LayerNormWithTorchsModule,
    ("LayerNorm", "F.layer_norm"): LayerNormWithTorchsFunction,
    ("gelu", "F.gelu"): lambda x: F.gelu(x, approximate="tanh"),
    ("gelu", "nn.GELU"): lambda x: nn.GELU(approximate="tanh")(x),
    ("count_params", "nn.Module"): count_by_building_on_meta,
    ("cross_entropy", "F.cross_entropy"): lambda logits, targets, ignore_index=-1: F.cross_entropy(
        logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=ignore_index),
    ("cross_entropy", "F.nll_loss"): cross_entropy_by_nll,
    ("AdamW", "torch.optim.AdamW"): AdamWOnTorchs,
    ("AdamW", "torch.optim.Adam"): AdamWOnAdam,
    ("clip_grad_norm", "torch.nn.utils.clip_grad_norm_"):
        lambda parameters, max_norm: torch.nn.utils.clip_grad_norm_(parameters, max_norm),
}  # fmt: skip


def test_every_forbidden_api_has_a_mutant():
    _load_all_checks()
    registered = {(c.target, name) for c in CHECKS.values() for name in c.forbidden}
    assert registered == set(FORBIDDEN_MUTANTS)


@pytest.mark.parametrize(("target", "name"), list(FORBIDDEN_MUTANTS))
def test_each_forbidden_api_is_flagged_by_name(target, name):
    mutant = FORBIDDEN_MUTANTS[target, name]
    check_ids = [c.id for c in CHECKS.values() if c.target == target and name in c.forbidden]
    assert len(check_ids) == 2  # the visible check and its hidden twin
    rule, breach = RULE_WORDS.get(name, (f"`{name}`", "uses it" if isinstance(resolve_api(name), type) else "calls it"))
    for check_id in check_ids:
        result = run_check(check_id, mutant)
        assert not result.passed and result.mistake == FORBIDDEN, result.line()
        assert result.message == f"without {rule}: your `{target}` {breach}", result.line()
        assert right_but_for_the_flag(check_id, mutant), check_id


# ---- the lessons' text and the checks agree -------------------------------------------------------------------------

WITHOUT = re.compile(r"without ((?:`[^`]+`)(?:(?:,\s*|,?\s+(?:or|and|nor)\s+)`[^`]+`)*)")
CHECK_CALL = re.compile(r'\bcheck\("([^"]+)"')


def exercise_rules() -> list[tuple[str, str, str]]:
    """(notebook, check id, forbidden name) for every "without `X`" in an exercise's markdown, X a torch API, and
    every "without building a model"; the exercise is the next graded check cell."""
    found = []
    for notebook in sorted(SOLUTIONS.glob("*/*.ipynb")):
        cells = json.loads(notebook.read_text())["cells"]
        for i, cell in enumerate(cells):
            if cell["cell_type"] != "markdown":
                continue
            text = "".join(cell["source"])
            names = [name for phrase in WITHOUT.findall(text) for name in re.findall(r"`([^`]+)`", phrase)
                     if name.split(".")[0] in NAMESPACES]
            names += [api for api, (words, _) in RULE_WORDS.items() if f"without {words}" in text]
            if not names:
                continue
            sources = ("".join(c["source"]) for c in cells[i + 1 :] if c["metadata"].get("nbgrader", {}).get("grade"))
            check_id = next(CHECK_CALL.search(source).group(1) for source in sources if CHECK_CALL.search(source))
            found += [(notebook.name, check_id, name) for name in names]
    return found


def test_every_without_in_the_lessons_is_a_forbidden_api_of_its_check():
    rules = exercise_rules()
    assert len(rules) >= 7  # softmax's two, LayerNorm's two, gelu's two, count_params' model, and what is added
    for notebook, check_id, name in rules:
        forbidden = [resolve_api(f) for f in get_check(check_id).forbidden]
        assert any(resolve_api(name) is api for api in forbidden), f"{notebook}: {check_id} does not flag {name}"


# ---- grade, --sandbox and status ------------------------------------------------------------------------------------

SCRATCH = "from gpt_reference.model import Block, LayerNorm"


@pytest.fixture(scope="module")
def borrowing_notebook(tmp_path_factory) -> Path:
    """Lesson 03's solutions with a scratch cell at the end that replaces the learner's Block and LayerNorm."""
    notebook = nbformat.read(SOLUTIONS / "03_gpt_block" / "03_gpt_block.ipynb", as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(SCRATCH))
    path = tmp_path_factory.mktemp("lessons") / "03_gpt_block" / "03_gpt_block.ipynb"
    path.parent.mkdir()
    nbformat.write(notebook, path)
    return path


@pytest.mark.parametrize("sandbox", [False, True], ids=["in-process", "sandbox"])
def test_grade_fails_the_borrowed_objects_and_only_them(borrowing_notebook, sandbox):
    report = grade(borrowing_notebook, sandbox=sandbox)
    assert report.problems == []
    for result in report.checks:
        target = get_check(result.id).target
        if target in ("Block", "LayerNorm"):
            assert (result.passed, result.mistake) == (False, BORROWED), result.line()
            assert result.message == f"this is the reference's `{target}`, not yours"
        else:
            assert result.passed, result.line()


def test_status_shows_the_borrowed_objects_failing(borrowing_notebook):
    (line,) = progress(borrowing_notebook.parents[1])
    total = len(checks_for("03_gpt_block"))
    assert f"{total - 4} of {total} checks pass; next: gpt_block.layer_norm" in line


# ---- the machinery --------------------------------------------------------------------------------------------------


def test_the_flag_crosses_the_jails_channel():
    outcome = ProbeOutcome(error="this is the reference's `Block`, not yours", mistake=BORROWED)
    assert decode_outcome(encode_outcome(outcome)) == outcome


def test_the_watch_leaves_profiler_and_torch_function_modes_as_it_found_them():
    def profiler(frame, event, arg):
        pass

    sys.setprofile(profiler)
    try:
        for check_id, implementation in [("attention.softmax", FORBIDDEN_MUTANTS["softmax", "F.softmax"]),
                                         ("gpt_block.block", BlockHoldingTheReferences),
                                         ("gpt_block.block", BlockOnTheCarriedAttention)]:
            run_check(check_id, implementation)
            assert sys.getprofile() is profiler
            assert torch._C._len_torch_function_stack() == 0
    finally:
        sys.setprofile(None)


@pytest.mark.parametrize(("check_id", "implementation", "message"), [
    ("attention.softmax", lambda x, dim=-1: torch.special.softmax(x, dim), "without `torch.softmax`: your `softmax` calls it"),
    ("attention.softmax", lambda x, dim=-1: nn.Softmax(dim)(x), "without `F.softmax`: your `softmax` calls it"),
    ("training.cross_entropy", lambda logits, targets, ignore_index=-1: nn.CrossEntropyLoss(ignore_index=ignore_index)(
        logits.flatten(0, -2), targets.flatten()), "without `F.cross_entropy`: your `cross_entropy` calls it"),
    ("gpt_block.layer_norm", type("LayerNorm", (LayerNormWithTorchsModule,), {"forward": lambda self, x: torch.layer_norm(
        x, self.weight.shape, self.weight, self.bias)}), "without `F.layer_norm`: your `LayerNorm` calls it"),
])  # fmt: skip
def test_other_spellings_of_a_forbidden_api_are_flagged_under_its_name(check_id, implementation, message):
    result = run_check(check_id, implementation)
    assert (result.mistake, result.message) == (FORBIDDEN, message)


def test_a_learner_who_swallows_the_stop_is_still_flagged():
    def softmax(x, dim=-1):
        try:
            return torch.softmax(x, dim)
        except BaseException:  # noqa: BLE001 - what a learner might write
            e = (x - x.max(dim, keepdim=True).values).exp()
            return e / e.sum(dim, keepdim=True)

    result = run_check("attention.softmax", softmax)
    assert result.mistake == FORBIDDEN and result.message == "without `torch.softmax`: your `softmax` calls it"
