"""Your own work only: a graded object must be the learner's code, not the reference's, the checks' or torch's.

``core.run_probe``, which every caller goes through (the notebook's check cell, ``yours``, ``grade`` in-process and
``--sandbox``, ``status``), asks two questions of the learner's object:

* ``borrowed(check, obj)``, before the probe: is it the exercise's own answer? The answer key's object for the
  exercise (``autograder.answer_key``; after unwrapping ``functools.partial``, ``functools.wraps`` and bound methods),
  a subclass of it, an API the exercise forbids (``Check.forbidden``) or a subclass of one, or code defined in
  ``autograder/checks``;
* ``watching(check)``, while the probe runs: does the learner's code call one? A profiler sees every Python call into
  the code of the answer key's object, of a forbidden API written in Python (``nn.LayerNorm``'s methods,
  ``torch.optim.AdamW``'s, ``clip_grad_norm_``) and of the checks' functions; a ``TorchFunctionMode`` sees the
  forbidden torch functions (``torch.softmax``, ``Tensor.softmax``, ``F.gelu``, ``F.layer_norm`` …).

A call counts against the learner when it is made on the learner's behalf: going up the stack from it, past library
frames (the standard library, site-packages) and the reference's own frames, the first frame is the learner's rather
than the autograder's. So the probe's own use of the reference, and the reference's use of torch, are nobody's fault,
while a learner's ``Block`` that calls the reference's ``Block`` (directly, or through another reference function)
is not the learner's; nor is a ``count_params`` that builds the reference's ``GPT`` to count it.

An exercise whose answer is also an earlier lesson's graded object (lesson 06's ``GPT`` extends lesson 03's, which
``yours()`` hands over as the reference's while a notebook is graded) may subclass and call that object, but must add
code of its own, and may not be it.
"""

from __future__ import annotations

import functools
import os
import sys
import sysconfig
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch.overrides import TorchFunctionMode

import gpt_reference

from .answer_key import ANSWER_KEY, resolve

if TYPE_CHECKING:
    from .core import Check

BORROWED = "not your own code"  # Result.mistake of an object that is (or wraps) the reference's, the checks' or torch's
FORBIDDEN = "forbidden API"  # Result.mistake of an object that uses an API its exercise forbids

# How a forbidden name is read: `F.gelu` is torch.nn.functional.gelu, `nn.GELU` torch.nn.GELU, `Tensor.softmax` the
# method. The lessons write the names this way ("without `F.layer_norm`").
NAMESPACES = {"torch": torch, "F": torch.nn.functional, "nn": torch.nn, "Tensor": torch.Tensor}
RULE_WORDS = {"nn.Module": ("building a model", "builds one")}  # a rule the lesson says in words, and its breach
ALIASES = {"torch.softmax": ("torch.special.softmax",), "F.layer_norm": ("torch.layer_norm",)}  # other spellings
GENERIC_BASES = (torch.nn.Module, torch.optim.Optimizer, object)  # a forbidden class's bases that are no answer

# Whose a frame is, by its file: the autograder's or the reference's package, a library's, or else the learner's
_PACKAGES = {os.path.dirname(os.path.abspath(package.__file__)) + os.sep: package.__name__
             for package in (sys.modules[__package__], gpt_reference)}  # fmt: skip
_LIBRARIES = tuple({os.path.abspath(path) + os.sep for key in ("stdlib", "platstdlib", "purelib", "platlib")
                    if (path := sysconfig.get_paths().get(key))}
                   | {os.path.dirname(os.path.dirname(os.path.abspath(torch.__file__))) + os.sep})  # fmt: skip
_OWN_FILE = os.path.abspath(__file__)


def resolve_api(name: str) -> Any:
    """The object a forbidden name stands for: ``"F.layer_norm"`` → ``torch.nn.functional.layer_norm``."""
    head, *rest = name.split(".")
    if head not in NAMESPACES:
        raise ValueError(f"forbidden name {name!r} must start with one of {', '.join(NAMESPACES)}")
    obj = NAMESPACES[head]
    for part in rest:
        obj = getattr(obj, part)
    return obj


@dataclass(frozen=True)
class Finding:
    """Why the object is not the learner's own work: ``mistake`` is BORROWED or FORBIDDEN, ``message`` for the
    learner."""

    mistake: str
    message: str


# ---- what each check watches for ------------------------------------------------------------------------------------


@dataclass
class _Rules:
    """A check's rules, worked out once: the answer (the key's object), the forbidden APIs, and what to watch."""

    answer: Any  # the answer key's object for the exercise, or None
    answer_name: str  # "the reference's `Block`", "torch's `torch.softmax`"
    carried: bool  # the answer is also an earlier lesson's graded object, which the learner may build on
    forbidden: dict[str, Any]  # name as the lesson writes it → object
    codes: dict[types.CodeType, tuple[str, str, bool]] = field(default_factory=dict)  # code → (mistake, name, class)
    functions: dict[Any, str] = field(default_factory=dict)  # torch function → forbidden name (TorchFunctionMode)


_rules: dict[str, _Rules] = {}


def _rules_for(check: Check) -> _Rules:
    if check.id not in _rules:
        _rules[check.id] = _work_out(check)
    return _rules[check.id]


def _work_out(check: Check) -> _Rules:
    path = ANSWER_KEY.get(check.lesson, {}).get(check.target, "")
    answer = resolve(path) if path else None
    earlier = list(ANSWER_KEY)[: list(ANSWER_KEY).index(check.lesson)] if check.lesson in ANSWER_KEY else []
    carried = answer is not None and any(resolve(p) is answer for e in earlier for p in ANSWER_KEY[e].values())
    rules = _Rules(answer, _answer_name(check.target, path), carried,
                   {name: resolve_api(name) for name in check.forbidden})
    for name, obj in rules.forbidden.items():
        if isinstance(obj, type):
            for code in _class_codes(obj, lambda c, top=obj: c is top or c not in GENERIC_BASES):
                rules.codes[code] = (FORBIDDEN, name, True)
        elif isinstance(_innermost(obj), types.FunctionType) and not _dispatches_torch_function(obj):
            rules.codes[_innermost(obj).__code__] = (FORBIDDEN, name, False)
        else:
            rules.functions[obj] = name
        for alias in ALIASES.get(name, ()):
            rules.functions[resolve_api(alias)] = name
    if answer is not None and not rules.carried:
        for code in _answer_codes(answer):
            rules.codes.setdefault(code, (BORROWED, rules.answer_name, False))
    for code, name in _checks_codes().items():
        rules.codes.setdefault(code, (BORROWED, name, False))
    return rules


def _answer_name(name: str, path: str) -> str:
    return f"torch's `{path}`" if path.startswith("torch.") else f"the reference's `{name}`"


def _answer_codes(answer: Any) -> list[types.CodeType]:
    """The code that runs when an answer is used: a function's own, or a class's methods (those the reference
    defines; for torch's, those of the class and its bases short of ``GENERIC_BASES``)."""
    if isinstance(answer, type):
        if answer.__module__.startswith("gpt_reference"):
            return _class_codes(answer, lambda c: c.__module__.startswith("gpt_reference"))
        return _class_codes(answer, lambda c, top=answer: c is top or c not in GENERIC_BASES)
    inner = _innermost(answer)
    return [inner.__code__] if isinstance(inner, types.FunctionType) else []


def _innermost(obj: Any) -> Any:
    """``obj`` without its wrappers: ``functools.partial``, ``functools.wraps``' ``__wrapped__``, bound methods,
    static and class methods."""
    for _ in range(20):
        if isinstance(obj, functools.partial):
            obj = obj.func
        elif isinstance(obj, (types.MethodType, staticmethod, classmethod)):
            obj = obj.__func__
        elif isinstance(obj, types.FunctionType) and hasattr(obj, "__wrapped__"):
            obj = obj.__wrapped__
        else:
            return obj
    return obj


def _dispatches_torch_function(fn: Any) -> bool:
    """True for a torch function that a TorchFunctionMode sees (``F.softmax`` does; ``clip_grad_norm_`` does not)."""
    return fn in _overridable()


@functools.cache
def _overridable() -> frozenset:
    functions = set()
    for namespace_functions in torch.overrides.get_overridable_functions().values():
        functions.update(namespace_functions)
    return frozenset(functions)


def _class_codes(cls: type, include: Any) -> list[types.CodeType]:
    """The code of every function, static, class method and property defined in the classes of ``cls``'s MRO that
    ``include`` accepts."""
    codes = []
    for klass in cls.__mro__:
        if not include(klass):
            continue
        for value in vars(klass).values():
            if isinstance(value, property):
                candidates = [value.fget, value.fset, value.fdel]
            else:
                candidates = [value]
            for candidate in candidates:
                inner = _innermost(candidate)
                if isinstance(inner, types.FunctionType):
                    codes.append(inner.__code__)
    return codes


@functools.cache
def _checks_codes() -> dict[types.CodeType, str]:
    """The code of the checks' own answers, right and wrong (a judge's stand-in reference, the mistake variants), by
    name. Not the rest of ``autograder/checks``: probes hand the learner's code models and callbacks of their own."""
    from .core import CHECKS

    codes: dict[types.CodeType, str] = {}
    for check in CHECKS.values():
        for implementation in (check.reference, *(mistake.implementation for mistake in check.mistakes)):
            inner = _innermost(implementation)
            if not (getattr(inner, "__module__", None) or "").startswith(__package__ + ".checks."):
                continue
            label = f"the checks' `{getattr(inner, '__name__', check.target)}`"
            if isinstance(inner, type):
                for code in _class_codes(inner, lambda c: c.__module__.startswith(__package__ + ".checks.")):
                    codes.setdefault(code, label)
            elif isinstance(inner, types.FunctionType):
                codes.setdefault(inner.__code__, label)
    return codes


# ---- before the probe: is the object itself borrowed? ---------------------------------------------------------------


def borrowed(check: Check, obj: Any) -> Finding | None:
    """A finding when ``obj`` is, or subclasses, the exercise's answer, a forbidden API or the checks' code."""
    rules = _rules_for(check)
    inner = _innermost(obj)
    for name, api in rules.forbidden.items():
        if inner is _innermost(api) or (isinstance(inner, type) and isinstance(api, type) and issubclass(inner, api)):
            how = "is" if inner is _innermost(api) else "is a subclass of"
            return Finding(FORBIDDEN, f"this {how} torch's `{name}`, not yours")
    if rules.answer is not None and inner is _innermost(rules.answer):
        return Finding(BORROWED, f"this is {rules.answer_name}, not yours")
    if isinstance(inner, type) and isinstance(rules.answer, type) and issubclass(inner, rules.answer):
        if not rules.carried:
            return Finding(BORROWED, f"this is a subclass of {rules.answer_name}, not yours")
        own = inner.__mro__[: inner.__mro__.index(rules.answer)]
        if not any(_class_codes(klass, lambda c, this=klass: c is this) for klass in own):
            return Finding(BORROWED, f"this is {rules.answer_name} with no code of yours added")
    module = getattr(inner, "__module__", None)
    if isinstance(module, str) and module.startswith(__package__ + ".checks."):
        return Finding(BORROWED, f"this is the checks' `{getattr(inner, '__name__', check.target)}`, not yours")
    return None


# ---- while the probe runs: does the learner's code call one? --------------------------------------------------------


class _Seen(BaseException):
    """Raised into the learner's code at the first borrowed call: the verdict is known, and the rest of the probe
    (building GPT-2 xl to count its parameters, say) need not run. A BaseException, so that ``except Exception``
    in learner code lets it through."""


class Watch:
    """What a probe's run called on the learner's behalf; ``finding()`` says it in words."""

    def __init__(self, check: Check) -> None:
        self.check = check
        self.rules = _rules_for(check)
        self.seen: tuple[str, str, bool] | None = None  # (mistake, name, whether a class) of the first such call

    def finding(self) -> Finding | None:
        if self.seen is None:
            return None
        mistake, name, is_class = self.seen
        if mistake == FORBIDDEN:
            rule, breach = RULE_WORDS.get(name, (f"`{name}`", "uses it" if is_class else "calls it"))
            return Finding(FORBIDDEN, f"without {rule}: your `{self.check.target}` {breach}")
        return Finding(BORROWED, f"this calls {name}, so it is not yours")

    def saw(self, mistake: str, name: str, is_class: bool) -> None:
        self.seen = self.seen or (mistake, name, is_class)
        raise _Seen()

    def on_learners_behalf(self, frame: types.FrameType | None) -> bool:
        """True when the first frame from ``frame`` up that is neither a library's nor the reference's is the
        learner's (not the autograder's), and no watched call encloses it (the learner's code would have been stopped
        there)."""
        while frame is not None:
            code = frame.f_code
            if code in self.rules.codes:
                return False
            whose = _whose(code.co_filename)
            if whose == "learner":
                return True
            if whose == "autograder":
                return False
            frame = frame.f_back
        return False

    def profiler(self) -> Callable[[types.FrameType, str, Any], None]:
        """The function for ``sys.setprofile``: it runs on every call and return, so it does the least it can."""
        codes, on_learners_behalf, saw = self.rules.codes, self.on_learners_behalf, self.saw

        def profile(frame: types.FrameType, event: str, arg: Any) -> None:
            if event == "call" and frame.f_code in codes and on_learners_behalf(frame.f_back):
                saw(*codes[frame.f_code])

        return profile


class _ForbiddenFunctions(TorchFunctionMode):
    """Sees every torch function call during the probe and notes the forbidden ones made on the learner's behalf."""

    def __init__(self, watch: Watch) -> None:
        super().__init__()
        self.watch = watch

    def __torch_function__(self, func, arg_types, args=(), kwargs=None):
        name = self.watch.rules.functions.get(func)
        if name is not None and self.watch.on_learners_behalf(sys._getframe(1)):
            self.watch.saw(FORBIDDEN, name, is_class=False)
        return func(*args, **(kwargs or {}))


@functools.cache
def _whose(filename: str) -> str:
    """"autograder", "gpt_reference", "library" (the standard library, site-packages, this file) or "learner"."""
    if filename.startswith("<frozen ") or filename == _OWN_FILE:
        return "library"
    path = os.path.abspath(filename) if os.path.isabs(filename) else filename  # "<cell 3>" stays as it is
    for folder, package in _PACKAGES.items():
        if path.startswith(folder):
            return package
    return "library" if path.startswith(_LIBRARIES) else "learner"


_current: Watch | None = None  # the watch of the probe now running (a process the probe forks inherits it)


def seen_in_this_process() -> tuple[str, str, bool] | None:
    """In a process a probe forked to run the learner's code (lesson 07's data parallelism): what the watch it
    inherited saw, for the probe to hand back to its own process."""
    return _current.seen if _current is not None else None


def seen_in_another_process(seen: tuple[str, str, bool]) -> None:
    """In the probe's process: what a process it forked saw (``seen_in_this_process``) stops the probe, as the call
    would have stopped it here."""
    if _current is not None:
        _current.saw(*seen)


@contextmanager
def watching(check: Check) -> Iterator[Watch]:
    """Watch the probe's run of the learner's object; the profiler and the mode are off again afterwards."""
    global _current
    watch = Watch(check)
    outer, _current = _current, watch
    rules = watch.rules
    previous = sys.getprofile()
    mode = _ForbiddenFunctions(watch) if rules.functions else None
    try:
        if mode is not None:
            mode.__enter__()
        if rules.codes:
            sys.setprofile(watch.profiler())
        yield watch
    except _Seen:  # the probe stopped at the first borrowed call; ``watch.finding()`` says which
        pass
    finally:
        _current = outer
        sys.setprofile(previous)
        if mode is not None:
            mode.__exit__(None, None, None)
