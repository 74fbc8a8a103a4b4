"""Building blocks shared by the lessons' check modules (``autograder/checks/<topic>.py``).

* ``register_pair`` registers a visible check and its hidden twin, which share everything but probe, points, the
  visible probe's inputs and the hidden probe's case descriptions.
* ``seeded_randn`` makes probe inputs from a private generator, so probing never moves the learner's random state.
* ``flag`` turns a yes/no property of the learner's code into an output (booleans are compared exactly).
* ``build_module`` and ``load_reference_weights`` instantiate a learner's ``nn.Module`` and load the reference's
  weights into it (GPT-2's names, strict), turning every mismatch into a message that names the keys.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
import torch.nn as nn

from .core import Check, Mistake, Outputs, ProbeError, register


def register_pair(
    topic: str,
    lesson: str,
    name: str,
    target: str,
    reference: object,
    probes: tuple[Callable[[object], Outputs], Callable[[object], Outputs]],
    points: tuple[float, float],
    description: str,
    mistakes: tuple[Mistake, ...] = (),
    part_hints: Mapping[str, str] | None = None,
    *,
    tolerance: Mapping[str, float],
    cases: Mapping[str, str],
    inputs: Mapping[str, str] | None = None,
    kinds: Mapping[str, str] | None = None,
    forbidden: tuple[str, ...] = (),
) -> None:
    """Register ``<topic>.<name>`` (the first probe) and ``<topic>.<name>.hidden`` (the second).

    ``cases`` describes the hidden probe's cases in words, ``inputs`` shows the visible probe's (small) inputs, and
    ``kinds`` says what the outputs of both are (see ``Check``). ``forbidden``: the APIs the lesson says to write the
    object without (``"F.layer_norm"``), flagged by both checks."""
    for probe, pts, hidden in zip(probes, points, (False, True)):
        register(Check(
            id=f"{topic}.{name}" + (".hidden" if hidden else ""), lesson=lesson, target=target, probe=probe,
            reference=reference, points=pts, hidden=hidden, description=description, mistakes=mistakes,
            part_hints=part_hints or {}, kinds=kinds or {}, inputs={} if hidden else inputs or {},
            cases=cases if hidden else {}, forbidden=forbidden, **tolerance,
        ))  # fmt: skip


def seeded_randn(*shape: int, seed: int, scale: float = 1.0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=generator) * scale


def flag(value: bool) -> torch.Tensor:
    return torch.tensor(bool(value))


def build_module(cls: Callable[..., object], what: str, *args: object) -> nn.Module:
    """``cls(*args)``, checked to be an ``nn.Module``; its initialisation does not move the learner's random state."""
    with torch.random.fork_rng(devices=[]):
        module = cls(*args)
    if not isinstance(module, nn.Module):
        raise ProbeError(f"{what} gave a {type(module).__name__}; expected an nn.Module")
    return module


def load_reference_weights(module: nn.Module, weights: Mapping[str, torch.Tensor], names: str) -> None:
    """Load the reference's weights; the learner's own buffers (a stored causal mask) may stay out of them.
    ``names`` tells the learner which GPT-2 names to use when keys do not match."""
    try:
        missing, unexpected = module.load_state_dict(dict(weights), strict=False)
    except RuntimeError as e:  # shapes that do not match
        details = [line.strip() for line in str(e).splitlines()[1:] if line.strip()]  # line 0 names the class
        raise ProbeError("the reference's weights do not load: " + "; ".join(details)) from None
    parameters = dict(module.named_parameters(remove_duplicate=False))
    missing = [key for key in missing if key in parameters]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing keys (parameters of yours GPT-2 does not have): {', '.join(missing)}")
        if unexpected:
            parts.append(f"unexpected keys (GPT-2's parameters your module lacks): {', '.join(unexpected)}")
        raise ProbeError(f"the reference's state dict does not load: {'; '.join(parts)}. Use GPT-2's names: {names}")
