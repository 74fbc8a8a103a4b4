"""Checks, defined once and run by every caller: notebook check cells (nbgrader's graded cells) and pytest graders.

A check has two halves, kept apart on purpose:

* the **probe** runs the learner's object (a function or a class) on fixed, seeded inputs and returns a dict of
  tensors. It is the only code that touches learner code, so it can run in the learner's kernel or in a sandboxed
  process whose tensors are sent back;
* the **judge** (``judge`` below) never runs learner code. It computes what the reference gives on the same probe,
  compares with tolerances, and diagnoses: a known mistake by name with a hint, or else what differs, worded by the
  kind of value (``autograder.values``: a dict's keys, a list's or a string's first difference, a tensor's largest
  error and its row), and which isolation part (one token, first query, …) went wrong.

A mistake is a *variant of the reference* with one plausible error in it (attention without the 1/√d scale, a
mask applied after the softmax, …). The judge runs the probe on each variant too: when the learner's outputs match
a variant's, the learner made that mistake. A hidden check's message never shows an input or a value (its case is
described in words); a visible check's may show its small input, and the learner's value beside the expected one.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import os
import pkgutil
import re
import sys
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from . import ownwork, values

Outputs = dict[str, torch.Tensor]


class ProbeError(Exception):
    """The learner's object could not be probed (wrong return type, wrong shape of call, …); the message is for
    the learner."""


@dataclass(frozen=True)
class Mistake:
    """A named, plausible error, implemented as a variant of the reference with the same interface."""

    name: str
    hint: str
    implementation: Any


@dataclass(frozen=True)
class Check:
    """One graded property of one learner object.

    ``target`` is the name the learner defines (``"causal_mask"``). ``probe(obj)`` returns named output tensors;
    ``reference`` and every mistake's ``implementation`` are fed to the same probe. ``part_hints`` maps an output
    name (an isolation part such as ``"one_token"``) to what a wrong value there points at. ``atol``/``rtol`` are
    chosen per check (dtype and depth) and stated in the lesson. ``forbidden`` names the APIs the exercise is to be
    written without, as the lesson writes them (``"F.layer_norm"``, ``"nn.LayerNorm"``; see ``autograder.ownwork``).

    How a failure is worded: ``kinds`` says what an output really is (``autograder.values``: ``"ids"``, ``"text"``,
    ``"pairs"``; the key ``"*"`` for every other output; a tensor otherwise). A visible check's ``inputs`` gives, per
    output, the (small) call that made it, shown with a difference; a hidden check's ``cases`` describes, per output,
    its case in words (``"huge logits (|x| ≈ 1e4)"``), shown instead of its input, which stays secret. A key of
    ``kinds``, ``inputs``, ``cases`` or ``part_hints`` names an output, or the prefix or suffix (before or after an
    ``_``) that several outputs of one case share (``values.entry``).
    """

    id: str
    lesson: str
    target: str
    probe: Callable[[Any], Outputs]
    reference: Any
    points: float = 1.0
    hidden: bool = False
    description: str = ""
    mistakes: tuple[Mistake, ...] = ()
    part_hints: Mapping[str, str] = field(default_factory=dict)
    atol: float = 1e-5
    rtol: float = 1e-4
    forbidden: tuple[str, ...] = ()
    kinds: Mapping[str, str] = field(default_factory=dict)
    inputs: Mapping[str, str] = field(default_factory=dict)
    cases: Mapping[str, str] = field(default_factory=dict)


@dataclass
class ProbeOutcome:
    """What came back from running a probe: outputs, or a reason for the learner why there are none, with the
    mistake it names when it is one (``ownwork.BORROWED``, ``ownwork.FORBIDDEN``)."""

    outputs: Outputs | None = None
    error: str | None = None
    mistake: str | None = None


@dataclass
class Result:
    """A verdict, as every caller reports it (and as ``grade --json`` writes it)."""

    id: str
    points: float
    max_points: float
    passed: bool
    mistake: str | None
    message: str

    def line(self) -> str:
        """The verdict as the check cell shows it: the message's lines wrapped to LINE_WIDTH, the first one after
        the verdict (with a named mistake's name whole on it), at most MAX_LINES."""
        mark = "✓" if self.passed else "✗"
        prefix = f"{mark} {self.id} ({format_points(self.points)}/{format_points(self.max_points)}): "
        named = f"looks like: {self.mistake}."
        name_end = self.message.find(named) + len(named) if self.mistake and named in self.message else 0
        first_width = max(LINE_WIDTH - len(prefix), name_end)
        return prefix + "\n".join(wrap(self.message, first_width)[:MAX_LINES])


MAX_LINES = 8  # of a verdict, as the learner reads it under the check cell
LINE_WIDTH = 110


def wrap(message: str, first_width: int) -> list[str]:
    """A message's lines (``\\n``-separated) in lines of at most LINE_WIDTH characters, the first at most
    ``first_width``; a line's continuations are indented two spaces more than it."""
    lines = []
    for paragraph in message.split("\n"):
        indent = " " * (len(paragraph) - len(paragraph.lstrip(" ")) + 2)
        options = dict(break_long_words=False, break_on_hyphens=False)
        head, *rest = textwrap.wrap(paragraph, LINE_WIDTH if lines else first_width, **options) or [""]
        lines += [head, *textwrap.wrap(" ".join(rest), LINE_WIDTH, initial_indent=indent, subsequent_indent=indent,
                                       **options)]
    return lines


def format_points(points: float) -> str:
    """Points as every report writes them: 1, 0.5, 2 (not 1.0)."""
    return f"{points:g}"


# A verdict line as ``Result.line`` writes it, found in a notebook's output: groups ✓/✗, check id, points, max points,
# message. While grading, the check raises it, so nbgrader shows it after "AssertionError: ".
VERDICT_LINE = re.compile(r"^(?:AssertionError: )?([✓✗]) (\S+) \(([\d.]+)/([\d.]+)\): (.*)$", re.MULTILINE)


# ---- the registry --------------------------------------------------------------------------------------------------

CHECKS: dict[str, Check] = {}


def register(check: Check) -> Check:
    if check.id in CHECKS:
        raise ValueError(f"check {check.id!r} is defined twice")
    CHECKS[check.id] = check
    return check


EXTRA_CHECKS_ENV = "AUTOGRADER_CHECKS"  # more check files (os.pathsep-separated paths): drafts, the autograder's tests


def _load_all_checks() -> None:
    from . import checks

    for module in pkgutil.iter_modules(checks.__path__):
        importlib.import_module(f"{checks.__name__}.{module.name}")
    for path in filter(None, os.environ.get(EXTRA_CHECKS_ENV, "").split(os.pathsep)):
        name = "autograder_extra_checks." + os.path.abspath(path)  # the environment is inherited by subprocesses
        if name not in sys.modules:
            spec = importlib.util.spec_from_file_location(name, path)
            sys.modules[name] = module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)


def get_check(check_id: str) -> Check:
    _load_all_checks()
    if check_id not in CHECKS:
        raise KeyError(f"no check {check_id!r}; known: {', '.join(sorted(CHECKS))}")
    return CHECKS[check_id]


def checks_for(lesson: str) -> list[Check]:
    """The checks of a lesson (``"02_attention"``), in the order they were defined."""
    _load_all_checks()
    return [c for c in CHECKS.values() if c.lesson == lesson]


# ---- probing (the only part that runs learner code) -----------------------------------------------------------------


def run_probe(check: Check, obj: Any) -> ProbeOutcome:
    """Run the probe on the learner's object, turning every failure into a reason the learner can act on. An
    object that is not the learner's own work (the reference's, the checks' or torch's, or one that calls a forbidden
    API while probed: ``autograder.ownwork``) fails whatever its outputs."""
    if obj is None:
        return ProbeOutcome(error=f"`{check.target}` is not defined: run its cell, or check the name")
    finding = ownwork.borrowed(check, obj)
    if finding is None:
        outcome = None  # stays None when the watch stopped the probe: then there is a finding
        with ownwork.watching(check) as watch:
            outcome = _probe(check, obj)
        finding = watch.finding()
    if finding is not None:
        return ProbeOutcome(error=finding.message, mistake=finding.mistake)
    return outcome


def _probe(check: Check, obj: Any) -> ProbeOutcome:
    try:
        outputs = check.probe(obj)
    except NotImplementedError:
        return ProbeOutcome(error="not implemented yet")
    except ProbeError as e:
        return ProbeOutcome(error=str(e))
    except Exception as e:  # learner code may raise anything; report its type and message, not a traceback
        return ProbeOutcome(error=f"calling `{check.target}` raised {type(e).__name__}: {e}")
    try:
        return ProbeOutcome(outputs={name: _plain(value, check.target) for name, value in outputs.items()})
    except ProbeError as e:
        return ProbeOutcome(error=str(e))


def _plain(value: Any, target: str) -> torch.Tensor:
    """A probe's output as a plain dense CPU tensor: the only kind the judge compares (and the sandbox sends)."""
    if not isinstance(value, torch.Tensor):
        raise ProbeError(f"`{target}` gave a {type(value).__name__} where a torch.Tensor was expected")
    if value.layout != torch.strided or value.is_nested or value.is_quantized:
        kind = "nested" if value.is_nested else "quantized" if value.is_quantized else str(value.layout)
        raise ProbeError(f"`{target}` gave a {kind} tensor; expected a plain dense tensor")
    if value.is_meta:
        raise ProbeError(f"`{target}` gave a meta tensor, which holds no values; expected a plain dense tensor")
    return value.detach().cpu().as_subclass(torch.Tensor)


def as_tensor(value: Any, what: str) -> torch.Tensor:
    """For probes: the learner's return value must be a tensor."""
    if isinstance(value, tuple) and len(value) > 0 and isinstance(value[0], torch.Tensor):
        raise ProbeError(f"{what} returned a tuple of {len(value)} values; expected one torch.Tensor")
    if not isinstance(value, torch.Tensor):
        raise ProbeError(f"{what} returned {type(value).__name__}; expected a torch.Tensor")
    return value


# ---- judging (never runs learner code) ------------------------------------------------------------------------------

_expected_cache: dict[tuple[str, int], Outputs] = {}


def _reference_outputs(check: Check, implementation: Any) -> Outputs:
    key = (check.id, id(implementation))
    if key not in _expected_cache:
        with torch.no_grad():
            _expected_cache[key] = {k: v.detach().cpu() for k, v in check.probe(implementation).items()}
    return _expected_cache[key]


def _matches(got: Outputs, expected: Outputs, atol: float, rtol: float, kinds: Mapping[str, str] | None = None) -> bool:
    return not _differences(got, expected, atol, rtol, kinds or {})


def _differences(got: Outputs, expected: Outputs, atol: float, rtol: float, kinds: Mapping[str, str]) -> dict[str, str]:
    """For each output that is not within tolerance, one line that says what is wrong, without a value."""
    problems = {}
    for key, want in expected.items():
        have = got.get(key)
        kind = values.kind_of(kinds, key)
        if have is None:
            problems[key] = "no output"
        elif kind != values.TENSOR and have.dtype == want.dtype:
            if (message := values.difference(kind, have, want)) is not None:
                problems[key] = message
        elif have.shape != want.shape:
            problems[key] = f"shape {tuple(have.shape)}, expected {tuple(want.shape)}"
        elif want.dtype == torch.bool or have.dtype == torch.bool:
            if have.dtype != want.dtype:
                problems[key] = f"dtype {have.dtype}, expected {want.dtype}"
            elif not torch.equal(have, want):
                problems[key] = _entries_wrong(have, want)
        elif not (have.dtype.is_floating_point or want.dtype.is_floating_point) and atol == rtol == 0:
            if not torch.equal(have, want):  # ids, counts, lengths: how many are wrong, not by how much
                problems[key] = _entries_wrong(have, want)
        elif have.dtype.is_floating_point != want.dtype.is_floating_point:
            problems[key] = (f"dtype {have.dtype}, expected "
                             f"{'a floating' if want.dtype.is_floating_point else 'an integer'} dtype")
        elif (message := _value_difference(have.double(), want.double(), atol, rtol)) is not None:
            problems[key] = message
    return problems


def _index(idx: torch.Tensor | tuple[int, ...]) -> str:
    return "(" + ", ".join(str(int(i)) for i in idx) + ")"


def _at(idx: torch.Tensor | tuple[int, ...]) -> str:
    return f" at {_index(idx)}" if len(idx) else ""  # a 0-d output has one value: no position to give


def _first(idx: torch.Tensor) -> str:
    return f", first{_at(idx)}" if len(idx) else ""


def _entries_wrong(have: torch.Tensor, want: torch.Tensor) -> str:
    wrong = (have != want).nonzero()
    return f"{len(wrong)} of {want.numel()} entries wrong{_first(wrong[0])}"


def _largest_error(have: torch.Tensor, want: torch.Tensor) -> tuple[int, ...]:
    """Where |have - want| is largest (NaN counts as infinite), unravelled by hand: torch.unravel_index's first call
    costs ~0.3 s."""
    flat = int((have.double() - want.double()).abs().nan_to_num(nan=math.inf).argmax())
    where = []
    for size in reversed(have.shape):
        flat, i = divmod(flat, size)
        where.insert(0, i)
    return tuple(where)


def _value_difference(have: torch.Tensor, want: torch.Tensor, atol: float, rtol: float) -> str | None:
    if torch.allclose(have, want, atol=atol, rtol=rtol, equal_nan=True):
        return None
    bad_have = ~torch.isfinite(have) & torch.isfinite(want)
    if bad_have.any():
        first = bad_have.nonzero()[0]
        return f"{int(bad_have.sum())} NaN/inf values where finite ones were expected{_first(first)}"
    diff = (have - want).abs().nan_to_num(nan=math.inf)
    nonzero = want != 0  # a relative error means nothing where the expected value is 0
    relative = ""
    if nonzero.any():
        relative = f" (max rel error {(diff[nonzero] / want[nonzero].abs()).max().item():.3g})"
    outside = (diff > atol + rtol * want.abs()).float().mean().item()
    return (f"max abs error {diff.max().item():.3g}{_at(_largest_error(have, want))}{relative}; "
            f"{100 * outside:.3g}% outside atol {atol:g}, rtol {rtol:g}")


LISTED_PARTS = 4


def _verdict_room(check: Check) -> int:
    """The width left to a message's first line, which follows "✗ <check id> (0/10): " (the visible id: the check
    cell shows a hidden failure under it)."""
    return LINE_WIDTH - len(check.id.removesuffix(".hidden")) - 12


def _diagnosis(check: Check, got: Outputs, expected: Outputs, problems: dict[str, str], lead: str) -> str:
    """A failure past the catalogue, in at most MAX_LINES lines: the first wrong output and what differs there, by
    kind of value; on a visible probe its input and values (the learner's and the expected), on a hidden one its case
    in words instead; the first wrong output's hint; which other outputs are wrong and which are right.
    Blocks (a message line each, but the values' two) that would not fit once wrapped are left out, the least useful
    first."""
    first = next(iter(problems))
    several = len(expected) > 1

    def named(key: str) -> str:  # a hidden output by its case, a visible one by its name
        return (values.entry(check.cases, key) if check.hidden else None) or key

    case = values.entry(check.cases, first) if check.hidden else None
    label = f"{case}: " if case else f"[{first}] " if several else ""
    headline = [lead + label + problems[first]]
    shown_input, shown_values = [], []
    if not check.hidden:
        if text := values.entry(check.inputs, first):
            shown_input = [f"  input: {text}"]
        have, want = got.get(first), expected[first]
        if have is not None and have.dtype == want.dtype:
            kind = values.kind_of(check.kinds, first)
            where = _largest_error(have, want) if kind == values.TENSOR and have.shape == want.shape \
                and have.dim() > 0 and have.is_floating_point() else None
            shown_values = ["  " + line for line in values.values(kind, have, want, where)]
    others = list(dict.fromkeys(named(key) for key in list(problems)[1:]))
    also_wrong = _listed("also wrong: ", others, "; ")
    right = [key for key in check.part_hints if key in expected] + list(expected)  # the hinted parts first
    right = list(dict.fromkeys(named(key) for key in right if key not in problems))
    right_on = _listed("right on: ", right, ", ") if several else []
    # The hint of the first wrong output only: the others' hints are written for a learner who got the first one
    # right ("correct on small logits but not on ±1000"), and would mislead one who did not.
    hint = values.entry(check.part_hints, first)
    hint_block = ["hint: " + hint] if hint else []
    order = [headline, shown_input, shown_values, also_wrong, right_on, hint_block]
    priority = [headline, shown_values, hint_block, shown_input, right_on, also_wrong]
    kept, used = set(), 0
    for block in priority:
        height = len(wrap("\n".join(block), _verdict_room(check) if block is headline else LINE_WIDTH))
        if block and used + height <= MAX_LINES:
            kept.add(id(block))
            used += height
    return "\n".join(line for block in order if id(block) in kept for line in block)


def _listed(label: str, names: list[str], separator: str) -> list[str]:
    if not names:
        return []
    more = f" and {len(names) - LISTED_PARTS} more" if len(names) > LISTED_PARTS else ""
    return [label + separator.join(names[:LISTED_PARTS]) + more]


def judge(check: Check, outcome: ProbeOutcome, lead: str = "") -> Result:
    """The verdict on a probe's outcome: pass, a named mistake with its hint, or a diagnosis; a failure's message
    starts with ``lead``."""

    def fail(message: str, mistake: str | None = None) -> Result:
        return Result(check.id, 0.0, check.points, False, mistake, message)

    if outcome.error is not None:
        return fail(lead + outcome.error, outcome.mistake)
    got = outcome.outputs or {}
    expected = _reference_outputs(check, check.reference)
    problems = _differences(got, expected, check.atol, check.rtol, check.kinds)
    if not problems:
        return Result(check.id, check.points, check.points, True, None, "correct")
    for mistake in check.mistakes:
        if _matches(got, _reference_outputs(check, mistake.implementation), check.atol, check.rtol, check.kinds):
            return fail(f"{lead}looks like: {mistake.name}. {mistake.hint}", mistake=mistake.name)
    return fail(_diagnosis(check, got, expected, problems, lead))


# ---- the callers' entry points ------------------------------------------------------------------------------------

GRADING_ENV = "AUTOGRADER_GRADING"  # "1" while the autograder's loader runs a notebook's cells
GRADING_VARIABLES = ("NBGRADER_EXECUTION", GRADING_ENV)  # nbgrader sets NBGRADER_EXECUTION in autograde, validate


def grading() -> bool:
    """True while a grader runs the notebook: nbgrader's autograde or validate, or the autograder's loader."""
    return any(os.environ.get(variable) for variable in GRADING_VARIABLES)


def run_check(check_id: str, obj: Any) -> Result:
    """Probe and judge in this process (notebook check cells and in-process grading)."""
    check = get_check(check_id)
    return judge(check, run_probe(check, obj))


def run_exercise(check_id: str, obj: Any) -> Result:
    """The visible check and its hidden twin (when there is one) as one verdict, for the exercise's points: what the
    learner's check cell shows, so that its ✓ means the exercise is graded full marks. A hidden failure is told by its
    case and diagnosis, never its input."""
    visible = run_check(check_id, obj)  # loads the checks
    hidden_id = check_id + ".hidden"
    if check_id.endswith(".hidden") or hidden_id not in CHECKS:
        return visible
    hidden_check = CHECKS[hidden_id]
    lead = "the visible probe passes, but a hidden case fails — "
    hidden = judge(hidden_check, run_probe(hidden_check, obj), lead)
    points, max_points = visible.points + hidden.points, visible.max_points + hidden.max_points
    if not visible.passed:
        return Result(check_id, points, max_points, False, visible.mistake, visible.message)
    if not hidden.passed:
        return Result(check_id, points, max_points, False, hidden.mistake, hidden.message)
    cases = len(_hidden_cases(hidden_check))
    return Result(check_id, points, max_points, True, None,
                  f"correct on the visible probe and {cases} hidden case{'s' * (cases != 1)}")


def _hidden_cases(check: Check) -> set[str]:
    """The hidden check's cases, by their descriptions (outputs without one count one each)."""
    outputs = _reference_outputs(check, check.reference)
    return {values.entry(check.cases, key) or key for key in outputs}


def check(check_id: str, obj: Any) -> None:
    """A notebook's check cell: prints the verdict, ✓ with points or ✗ with a diagnosis (its first line is the
    verdict line, ``VERDICT_LINE``). Never shows a hidden probe's inputs.

    In the learner's kernel it runs the exercise's visible check and its hidden twin (``run_exercise``), so that the
    ✓ a learner sees is the grade the exercise will get. The same cell is nbgrader's graded cell, which scores by
    whether the cell raises: while the notebook is being graded (``grading()``), the cell judges the visible check
    only (the hidden twin has its own graded cell), and a failure raises AssertionError with the verdict instead of
    printing it, and no traceback of the check's internals (``from None``), so a hidden check's source does not leak
    into feedback. At any other time it only prints, so a learner's Run All goes past an exercise that is not
    finished yet.
    """
    if grading():
        result = run_check(check_id, obj)
        if not result.passed:
            raise AssertionError(result.line()) from None
    else:
        result = run_exercise(check_id, obj)
    print(result.line())
