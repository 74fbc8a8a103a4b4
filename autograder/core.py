"""Checks, defined once and run by every caller: notebook check cells (nbgrader's graded cells) and pytest graders.

A check has two halves, kept apart on purpose:

* the **probe** runs the learner's object (a function or a class) on fixed, seeded inputs and returns a dict of
  tensors. It is the only code that touches learner code, so it can run in the learner's kernel or in a sandboxed
  process whose tensors are sent back;
* the **judge** (``judge`` below) never runs learner code. It computes what the reference gives on the same probe,
  compares with tolerances, and diagnoses: a known mistake by name with a hint, or else shape, dtype, the largest
  absolute and relative error and where it is, and which isolation part (one token, first query, …) went wrong.

A mistake is a *variant of the reference* with one plausible error in it (attention without the 1/√d scale, a
mask applied after the softmax, …). The judge runs the probe on each variant too: when the learner's outputs match
a variant's, the learner made that mistake. Messages never print expected values.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import os
import pkgutil
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from . import ownwork

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
        mark = "✓" if self.passed else "✗"
        return f"{mark} {self.id} ({format_points(self.points)}/{format_points(self.max_points)}): {self.message}"


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


def _matches(got: Outputs, expected: Outputs, atol: float, rtol: float) -> bool:
    return not _differences(got, expected, atol, rtol)


def _differences(got: Outputs, expected: Outputs, atol: float, rtol: float) -> list[str]:
    """One message per output that is not within tolerance; expected values are never printed."""
    problems = []
    for key, want in expected.items():
        have = got.get(key)
        label = "" if len(expected) == 1 else f"[{key}] "
        if have is None:
            problems.append(f"{label}no output")
        elif have.shape != want.shape:
            problems.append(f"{label}shape {tuple(have.shape)}, expected {tuple(want.shape)}")
        elif want.dtype == torch.bool or have.dtype == torch.bool:
            if have.dtype != want.dtype:
                problems.append(f"{label}dtype {have.dtype}, expected {want.dtype}")
            elif not torch.equal(have, want):
                wrong = (have != want).nonzero()
                problems.append(f"{label}{len(wrong)} of {want.numel()} entries wrong, first at {_index(wrong[0])}")
        elif have.dtype.is_floating_point != want.dtype.is_floating_point:
            problems.append(f"{label}dtype {have.dtype}, expected {'a floating' if want.dtype.is_floating_point else 'an integer'} dtype")
        else:
            message = _value_difference(have.double(), want.double(), atol, rtol)
            if message:
                problems.append(label + message)
    return problems


def _index(idx: torch.Tensor) -> str:
    return "(" + ", ".join(str(int(i)) for i in idx) + ")"


def _value_difference(have: torch.Tensor, want: torch.Tensor, atol: float, rtol: float) -> str | None:
    if torch.allclose(have, want, atol=atol, rtol=rtol, equal_nan=True):
        return None
    bad_have = ~torch.isfinite(have) & torch.isfinite(want)
    if bad_have.any():
        first = bad_have.nonzero()[0]
        return f"{int(bad_have.sum())} NaN/inf values where finite ones were expected, first at {_index(first)}"
    diff = (have - want).abs().nan_to_num(nan=math.inf)
    flat = int(diff.argmax())
    # the index of the largest error, unravelled by hand: torch.unravel_index's first call costs ~0.3 s
    where = []
    for size in reversed(diff.shape):
        flat, i = divmod(flat, size)
        where.insert(0, i)
    nonzero = want != 0  # a relative error means nothing where the expected value is 0
    relative = ""
    if nonzero.any():
        relative = f", max rel error {(diff[nonzero] / want[nonzero].abs()).max().item():.3g}"
    outside = (diff > atol + rtol * want.abs()).float().mean().item()
    return (
        f"max abs error {diff.max().item():.3g} at ({', '.join(map(str, where))}){relative}; "
        f"{100 * outside:.1f}% of values outside tolerance (atol {atol:g}, rtol {rtol:g})"
    )


def judge(check: Check, outcome: ProbeOutcome) -> Result:
    """The verdict on a probe's outcome: pass, a named mistake with its hint, or a diagnosis."""

    def fail(message: str, mistake: str | None = None) -> Result:
        return Result(check.id, 0.0, check.points, False, mistake, message)

    if outcome.error is not None:
        return fail(outcome.error, outcome.mistake)
    got = outcome.outputs or {}
    expected = _reference_outputs(check, check.reference)
    problems = _differences(got, expected, check.atol, check.rtol)
    if not problems:
        return Result(check.id, check.points, check.points, True, None, "correct")
    for mistake in check.mistakes:
        if _matches(got, _reference_outputs(check, mistake.implementation), check.atol, check.rtol):
            return fail(f"looks like: {mistake.name}. {mistake.hint}", mistake=mistake.name)
    wrong_parts = [key for key in expected if key in check.part_hints and not _matches(
        {key: got[key]} if key in got else {}, {key: expected[key]}, check.atol, check.rtol)]
    right_parts = [key for key in check.part_hints if key not in wrong_parts and key in expected]
    hints = [check.part_hints[key] for key in wrong_parts]
    if right_parts and hints:
        hints.insert(0, f"right on: {', '.join(right_parts)}")
    message = "; ".join(problems)
    if hints:
        message += ". " + ". ".join(hints)
    return fail(message)


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


def check(check_id: str, obj: Any) -> None:
    """A notebook's check cell: prints one line, ✓ with points or ✗ with a diagnosis. Never shows expected values.

    The same cell is nbgrader's graded cell, which scores by whether the cell raises: while the notebook is being
    graded (``grading()``), a failed check raises AssertionError with that line instead of printing it, and no
    traceback of the check's internals (``from None``), so a hidden check's source does not leak into feedback. At
    any other time it only prints, so a learner's Run All goes past an exercise that is not finished yet.
    """
    result = run_check(check_id, obj)
    if grading() and not result.passed:
        raise AssertionError(result.line()) from None
    print(result.line())
