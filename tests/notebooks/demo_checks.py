"""Checks of a lesson that exists only for the autograder's own tests, "99_demo": the learner writes
``double(x)`` and ``triple(x)``. Loaded through ``AUTOGRADER_CHECKS``, so worker processes see them too."""

from __future__ import annotations

import torch

from autograder.core import Check, Mistake, as_tensor, register


def _probe_double(double) -> dict[str, torch.Tensor]:
    return {"out": as_tensor(double(torch.arange(6.0).reshape(2, 3)), "double(x)")}


def _probe_double_hidden(double) -> dict[str, torch.Tensor]:
    return {"out": as_tensor(double(torch.linspace(-3, 3, 7)), "double(x)")}


def _probe_triple(triple) -> dict[str, torch.Tensor]:
    return {"out": as_tensor(triple(torch.arange(4.0)), "triple(x)")}


register(Check(
    id="demo.double", lesson="99_demo", target="double", probe=_probe_double, reference=lambda x: 2 * x, points=2,
    mistakes=(Mistake("squared", "double(x) adds x to itself; it does not multiply x by itself", lambda x: x * x),),
))  # fmt: skip
register(Check(
    id="demo.double.hidden", lesson="99_demo", target="double", probe=_probe_double_hidden,
    reference=lambda x: 2 * x, points=1, hidden=True,
))  # fmt: skip
register(Check(
    id="demo.triple", lesson="99_demo", target="triple", probe=_probe_triple, reference=lambda x: 3 * x, points=1,
))  # fmt: skip
