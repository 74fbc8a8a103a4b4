"""Kinds of value a probe returns, and how the judge words a difference in each.

Probes return tensors only (the sandbox's channel carries nothing else), so a list of token ids, a string or a dict of
pairs travels as a tensor. A check says what each output really is (``Check.kinds``), the probe encodes it with the
encoder of its kind, and the judge decodes it to say what differs in the learner's own terms:

* ``ids``, a list of ints → a 1-D int64 tensor; a difference is the first position that differs, with context;
* ``text``, a str → the 1-D int64 tensor of its code points; the same, as text;
* ``pairs``, a dict ``{(left, right): n}`` → an (N, 3) int64 tensor of rows (left, right, n); a difference is the
  keys whose values differ, the missing keys and the extra ones;
* ``tensor`` (every other output): the position of the largest error and its row.

``difference`` gives the one-line summary, which shows no value; ``values`` the lines that show the learner's and the
expected values, which the judge adds on a visible probe only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch

IDS, TEXT, PAIRS, TENSOR = "ids", "text", "pairs", "tensor"
KINDS = (IDS, TEXT, PAIRS, TENSOR)
CONTEXT = 3  # items shown on each side of the first difference
ROW_ITEMS = 6  # numbers shown of a tensor's row
LISTED = 3  # keys listed of a dict's differences


# ---- encoders, for probes -----------------------------------------------------------------------------------------


def ids_tensor(ids: Iterable[int]) -> torch.Tensor:
    return torch.tensor(list(ids), dtype=torch.int64)


def text_tensor(text: str) -> torch.Tensor:
    return torch.tensor([ord(c) for c in text], dtype=torch.int64)


def pairs_tensor(pairs: Iterable[tuple[int, int, int]]) -> torch.Tensor:
    """Rows (left, right, n) of a dict ``{(left, right): n}``, in the order given."""
    return torch.tensor(list(pairs), dtype=torch.int64).reshape(-1, 3)


# ---- decoders and wording, for the judge --------------------------------------------------------------------------


def _as_list(t: torch.Tensor, kind: str) -> list:
    items = t.reshape(-1).tolist()
    return [chr(i) for i in items] if kind == TEXT else items


def _as_pairs(t: torch.Tensor) -> dict[tuple[int, int], int]:
    return {(a, b): n for a, b, n in t.reshape(-1, 3).tolist()}


def _first_difference(have: list, want: list) -> int:
    return next((i for i, (a, b) in enumerate(zip(have, want)) if a != b), min(len(have), len(want)))


def difference(kind: str, have: torch.Tensor, want: torch.Tensor) -> str | None:
    """What differs between two outputs of a discrete kind, without a value; None when they are equal."""
    if kind == PAIRS:
        mine, theirs = _as_pairs(have), _as_pairs(want)
        if mine == theirs and list(mine) == list(theirs):
            return None
        wrong = sum(1 for key in mine.keys() & theirs.keys() if mine[key] != theirs[key])
        missing, extra = len(theirs.keys() - mine.keys()), len(mine.keys() - theirs.keys())
        if not (wrong or missing or extra):
            return "the same entries, in another order (the order in which they were learned)"
        counts = [f"{_count(wrong, 'key')} with another value"] * bool(wrong) + \
            [f"{missing} missing"] * bool(missing) + [f"{extra} extra"] * bool(extra)
        return f"{', '.join(counts)} (of {_count(len(theirs), 'key')} expected)"
    mine, theirs = _as_list(have, kind), _as_list(want, kind)
    if mine == theirs:
        return None
    at, unit = _first_difference(mine, theirs), "character" if kind == TEXT else "item"
    if len(mine) == len(theirs):
        return f"first difference at position {at} (of {_count(len(theirs), unit)})"
    what = f"a text of {_count(len(mine), unit)}" if kind == TEXT else f"a list of {len(mine)}"
    return f"{what} where {len(theirs)} were expected, first difference at position {at}"


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'s' * (n != 1)}"


def _window(items: list, start: int, kind: str) -> str:
    shown = items[max(0, start - CONTEXT) : start + CONTEXT + 1]
    before = "…" if start > CONTEXT else ""
    after = "…" if start + CONTEXT + 1 < len(items) else ""
    if kind == TEXT:
        return f"{before}{''.join(shown)!r}{after}"
    return "[" + ", ".join([before] * bool(before) + [str(i) for i in shown] + [after] * bool(after)) + "]"


def _number(value: float) -> str:
    return f"{value:.4g}"


def values(kind: str, have: torch.Tensor, want: torch.Tensor, where: tuple[int, ...] | None = None) -> list[str]:
    """Lines showing the learner's value and the expected one where they differ (for a visible probe only).
    ``where`` is a tensor's position of the largest error."""
    if kind == PAIRS:
        mine, theirs = _as_pairs(have), _as_pairs(want)
        lines = [f"{key}: yours {mine[key]}, expected {theirs[key]}" for key in theirs
                 if key in mine and mine[key] != theirs[key]]
        lines += [f"missing {key} (expected {n})" for key, n in theirs.items() if key not in mine]
        lines += [f"extra {key} (yours {n})" for key, n in mine.items() if key not in theirs]
        listed = "; ".join(lines[:LISTED]) + (f"; … and {len(lines) - LISTED} more" if len(lines) > LISTED else "")
        return [listed] if listed else []
    if kind in (IDS, TEXT):
        mine, theirs = _as_list(have, kind), _as_list(want, kind)
        at = _first_difference(mine, theirs)
        return [f"yours:    {_window(mine, at, kind)}", f"expected: {_window(theirs, at, kind)}"]
    if have.shape != want.shape:
        return []
    if have.dim() == 0:
        return [f"yours {_number(have.item()) if have.is_floating_point() else have.item()}, expected "
                f"{_number(want.item()) if want.is_floating_point() else want.item()}"]
    where = where or tuple(int(i) for i in (have != want).nonzero()[0])
    row, column = where[:-1], where[-1]
    start = max(0, min(column - ROW_ITEMS // 2, have.shape[-1] - ROW_ITEMS))
    cut = slice(start, start + ROW_ITEMS)
    more = " …" if start + ROW_ITEMS < have.shape[-1] else ""

    def numbers(t: torch.Tensor) -> str:
        items = t[row][cut].tolist()
        return "…, " * (start > 0) + ", ".join(_number(v) if isinstance(v, float) else str(v) for v in items) + more

    label = "row (" + ", ".join([str(i) for i in row] + [":"]) + ")" if row else "values"
    return [f"{label} yours:    {numbers(have)}", f"{' ' * len(label)} expected: {numbers(want)}"]


def entry(labels: Mapping[str, str], output: str) -> str | None:
    """An output's entry in a check's ``kinds``, ``inputs``, ``cases`` or ``part_hints``: by its name, else by the
    prefix or suffix (before or after an ``_``) that the outputs of one case share."""
    if output in labels:
        return labels[output]
    return next((text for key, text in labels.items()
                 if output.startswith(key + "_") or output.endswith("_" + key)), None)


def kind_of(kinds: Mapping[str, str], output: str) -> str:
    """The kind of an output: its entry in ``kinds``, else the entry ``"*"``, else a tensor."""
    return entry(kinds, output) or kinds.get("*", TENSOR)
