"""Checks for lesson 02, attention: averaging the past, softmax, the causal mask, scaled dot-product attention and
GPT-2's ``CausalSelfAttention`` module.

Every check has a visible half (what the notebook's check cell runs) and a hidden half with other shapes and edge
cases. The references are ``gpt_reference.model``'s objects of the lesson's names (for softmax, ``torch.softmax``,
the op the reference calls). Each mistake in a catalogue is the reference with one plausible error in it; the tests
make sure that on each probe no two mistakes, and no mistake and the reference, give the same outputs, so a name is
never ambiguous.

Probes draw their inputs from private ``torch.Generator``s and build modules inside ``fork_rng``, so running a check
never moves the learner's global random state. Inputs are cloned for every call: a learner's in-place edit of an
argument cannot leak into the next call.

Tolerances (float32, stated in the lesson): atol 1e-5 and rtol 1e-4 for the single operations; atol 1e-4 and
rtol 1e-3 for the module, whose outputs pass through two Linear layers more. The closest named mistake is orders of
magnitude further away than either.
"""

from __future__ import annotations

import math
from dataclasses import replace
from functools import partial

import torch
from torch import nn

from gpt_reference.config import GPTConfig
from gpt_reference.model import CausalSelfAttention as ReferenceSelfAttention
from gpt_reference.model import average_past, causal_mask, scaled_dot_product_attention

from ..core import Mistake, Outputs, ProbeError, as_tensor
from ..probes import build_module, flag, load_reference_weights, register_pair, seeded_randn

LESSON = "02_attention"
OPS_TOLERANCE = dict(atol=1e-5, rtol=1e-4)
MODULE_TOLERANCE = dict(atol=1e-4, rtol=1e-3)


_pair = partial(register_pair, "attention", LESSON, tolerance=OPS_TOLERANCE)


# ---- average_past: the mean of positions 0..t, as one matmul --------------------------------------------------------


def _average_all(x: torch.Tensor) -> torch.Tensor:
    T = x.size(1)
    return torch.ones(T, T) / T @ x


def _average_divided_by_T(x: torch.Tensor) -> torch.Tensor:
    T = x.size(1)
    return torch.ones(T, T).tril() / T @ x


def _average_sum_without_keepdim(x: torch.Tensor) -> torch.Tensor:
    weights = torch.ones(x.size(1), x.size(1)).tril()
    return weights / weights.sum(dim=1) @ x  # (T,) broadcasts as a row: column s is divided by s + 1


AVERAGE_MISTAKES = (
    Mistake("includes the future",
            "every position gets the same mean, so the future leaks into the past: the weight matrix must be zero "
            "above the diagonal", _average_all),
    Mistake("divides by T instead of t+1",
            "the early positions come out too small: row t of the weights should sum to 1, so divide each row by "
            "its own count of ones", _average_divided_by_T),
    Mistake("row sums broadcast along the wrong axis",
            "weights.sum(dim=1) has shape (T,), and dividing a (T, T) matrix by it divides the columns, not the "
            "rows: keep the summed dimension", _average_sum_without_keepdim),
)


def _average(fn, x: torch.Tensor) -> torch.Tensor:
    return as_tensor(fn(x.clone()), "average_past(x)")


def _probe_average(fn) -> Outputs:
    return {"mean": _average(fn, seeded_randn(2, 5, 3, seed=20))}


def _probe_average_hidden(fn) -> Outputs:
    return {
        "longer": _average(fn, seeded_randn(3, 9, 4, seed=21)),
        "one_position": _average(fn, seeded_randn(2, 1, 6, seed=22)),
        "large_values": _average(fn, seeded_randn(1, 6, 2, seed=23, scale=1e3)),
    }


_pair("average_past", "average_past", average_past, (_probe_average, _probe_average_hidden), (1, 1),
      "x (B, T, C) → position t holds the mean of positions 0..t", AVERAGE_MISTAKES,
      inputs={"mean": "average_past(x), x of shape (2, 5, 3) from randn"},
      cases={"longer": "a longer sequence (T = 9)", "one_position": "a single position (T = 1)",
             "large_values": "values around ±1000"})


# ---- softmax ------------------------------------------------------------------------------------------------------


def _softmax_without_max(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    e = x.exp()
    return e / e.sum(dim=dim, keepdim=True)


def _softmax_last_dim_always(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    return torch.softmax(x, dim=-1)


SOFTMAX_MISTAKES = (
    Mistake("no max subtraction",
            "exp(1000) is inf in float32 and exp(-1000) is 0, so large logits give inf/inf or 0/0 = NaN. Softmax "
            "is unchanged when one number is subtracted from every entry along `dim`: choose it so that exp never "
            "sees a positive input", _softmax_without_max),
    Mistake("wrong dim",
            "your softmax normalises along the last axis whatever `dim` says: use `dim` for every reduction "
            "(with keepdim=True so the result broadcasts)", _softmax_last_dim_always),
)


def _softmax(fn, x: torch.Tensor, **kwargs) -> torch.Tensor:
    call = "softmax(x" + "".join(f", {k}={v}" for k, v in kwargs.items()) + ")"
    return as_tensor(fn(x.clone(), **kwargs), call)


def _probe_softmax(fn) -> Outputs:
    large = torch.tensor([[1000.0, 999.0, 990.0, 0.0], [-1000.0, -999.0, -1000.0, -1005.0]])
    return {
        "last_dim": _softmax(fn, seeded_randn(4, 6, seed=0, scale=3.0)),
        "large_logits": _softmax(fn, large),
        "dim0": _softmax(fn, seeded_randn(3, 4, 5, seed=1), dim=0),
    }


def _probe_softmax_hidden(fn) -> Outputs:
    inf = float("inf")
    masked = torch.tensor([[0.5, -inf, 1.5, -inf, 0.0], [2.0, 2.0, 2.0, 2.0, 2.0], [-inf, -inf, -inf, 3.0, -inf]])
    return {
        "dim1": _softmax(fn, seeded_randn(2, 5, 7, seed=2, scale=4.0), dim=1),
        "dim_minus2": _softmax(fn, seeded_randn(3, 6, 4, seed=3), dim=-2),
        "huge_logits": _softmax(fn, seeded_randn(3, 8, seed=4, scale=1e4)),
        "minus_inf_entries": _softmax(fn, masked),
        "single_entry": _softmax(fn, seeded_randn(5, 1, seed=5)),
    }


# the reference is the op gpt_reference calls, with the lesson's default dim
_pair("softmax", "softmax", partial(torch.softmax, dim=-1), (_probe_softmax, _probe_softmax_hidden), (1, 1),
      "numerically stable softmax along `dim`", SOFTMAX_MISTAKES,
      {"large_logits": "correct on small logits but not on ±1000: make it numerically stable",
       "dim0": "right along the last axis but not along dim=0: honour the `dim` argument",
       "dim1": "wrong along dim=1: honour the `dim` argument",
       "dim_minus2": "wrong along dim=-2: honour the `dim` argument",
       "huge_logits": "wrong on logits of size 1e4: make it numerically stable",
       "minus_inf_entries": "a -inf logit must get weight exactly 0, and the others must still sum to 1"},
      inputs={"last_dim": "softmax(x), x of shape (4, 6) from randn × 3",
              "large_logits": "softmax(x), x = [[1000., 999., 990., 0.], [-1000., -999., -1000., -1005.]]",
              "dim0": "softmax(x, dim=0), x of shape (3, 4, 5) from randn"},
      cases={"dim1": "softmax along dim=1 of a 3-D tensor", "dim_minus2": "softmax along dim=-2",
             "huge_logits": "huge logits (|x| ≈ 1e4)", "minus_inf_entries": "rows with -inf entries",
             "single_entry": "rows of a single entry"},
      forbidden=("torch.softmax", "F.softmax", "Tensor.softmax"))


# ---- causal_mask: True where query t may attend to key s, i.e. s ≤ t -----------------------------------------------


CAUSAL_MASK_MISTAKES = (
    Mistake("inverted (upper triangle)",
            "your mask lets each position see the positions after it: row t is the query, column s the key, and "
            "t may attend to s only when s ≤ t", lambda T: causal_mask(T).T),
    Mistake("strictly lower (diagonal excluded)",
            "a position must be allowed to attend to itself (otherwise position 0 could attend to nothing): keep "
            "the diagonal", lambda T: causal_mask(T).tril(diagonal=-1)),
    Mistake("True marks blocked positions",
            "this is the opposite convention (nn.MultiheadAttention's bool masks mark what is blocked); in this "
            "course, as in F.scaled_dot_product_attention, True means 'may attend'",
            lambda T: ~causal_mask(T)),
)


def _mask(fn, T: int) -> torch.Tensor:
    """The learner's mask for length T; a float or integer mask is refused with a message that says what it is."""
    what = f"causal_mask({T})"
    mask = as_tensor(fn(T), what)
    if mask.dtype != torch.bool and mask.numel() > 0:
        values = set(mask.detach().cpu().unique().tolist())
        if values <= {0.0, float("-inf")} and float("-inf") in values:
            raise ProbeError(f"{what} returned an additive {mask.dtype} mask (0 and -inf); this lesson's masks are "
                             "bool, True where attending is allowed: return a torch.bool tensor")
        if values <= {0, 1}:
            raise ProbeError(f"{what} returned a {mask.dtype} mask of 0s and 1s; expected dtype torch.bool "
                             "(True = may attend): create it as bool, or convert it with .bool()")
    return mask


def _probe_mask(fn) -> Outputs:
    return {"T5": _mask(fn, 5), "T1": _mask(fn, 1)}


def _probe_mask_hidden(fn) -> Outputs:
    return {"T2": _mask(fn, 2), "T8": _mask(fn, 8), "T33": _mask(fn, 33)}


_pair("causal_mask", "causal_mask", causal_mask, (_probe_mask, _probe_mask_hidden), (1, 1),
      "(T, T) bool mask, True where query t may attend to key s (s ≤ t)", CAUSAL_MASK_MISTAKES,
      inputs={"T5": "causal_mask(5)", "T1": "causal_mask(1)"},
      cases={"T2": "T = 2", "T8": "T = 8", "T33": "a long mask (T = 33)"})


# ---- scaled dot-product attention ---------------------------------------------------------------------------------

NO_SCALE = "no 1/sqrt(d) scale"
SCALE_BY_D = "scaled by d instead of sqrt(d)"
MASK_AFTER_SOFTMAX = "mask applied after softmax"
INF_AFTER_SOFTMAX = "-inf filled in after softmax"
FILL_ZERO = "mask filled with 0 instead of -inf"
INVERTED_FILL = "inverted mask"
SOFTMAX_AXIS = "softmax over the wrong axis"
UPPER_MASK = "inverted mask (upper triangle)"
STRICT_MASK = "strictly-lower mask (diagonal excluded)"
SPLIT_NO_TRANSPOSE = "heads split without transposing"
MERGE_NO_TRANSPOSE = "heads merged without transposing back"
NO_PROJECTION = "missing output projection"
MASK_WHEN_NONE = "mask applied when none is given"
BIAS_ALWAYS = "Linear layers built with bias=True whatever config.bias"


def _flawed_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None, *,
                      flaw: str) -> torch.Tensor:
    """The reference's ``scaled_dot_product_attention`` with one named flaw; flaws that are not about attention itself
    leave it untouched."""
    d = k.size(-1)
    if mask is None and flaw == MASK_WHEN_NONE:
        mask = causal_mask(k.size(-2))[-q.size(-2):]
    att = (q @ k.transpose(-2, -1)) * {NO_SCALE: 1.0, SCALE_BY_D: 1 / d}.get(flaw, 1 / math.sqrt(d))
    blocked = None if mask is None else (mask if flaw == INVERTED_FILL else ~mask)
    if blocked is not None and flaw not in (MASK_AFTER_SOFTMAX, INF_AFTER_SOFTMAX):
        att = att.masked_fill(blocked, 0.0 if flaw == FILL_ZERO else float("-inf"))
    att = torch.softmax(att, dim=-2 if flaw == SOFTMAX_AXIS else -1)
    if blocked is not None and flaw in (MASK_AFTER_SOFTMAX, INF_AFTER_SOFTMAX):
        att = att.masked_fill(blocked, 0.0 if flaw == MASK_AFTER_SOFTMAX else float("-inf"))
    return att @ v


ATTENTION_HINTS = {
    NO_SCALE: "the scores q·k grow with the head size d (their variance is d), which makes the softmax too peaked: "
              "bring their variance back to 1 before the softmax",
    SCALE_BY_D: "dividing by d shrinks the scores too much: the standard deviation of q·k grows like √d, not d",
    MASK_AFTER_SOFTMAX: "zeroing weights after the softmax leaves rows that no longer sum to 1: block the "
                        "positions before the softmax, so that it normalises over the allowed ones only",
    INF_AFTER_SOFTMAX: "-inf written into the weights after the softmax turns the weighted sum into inf/NaN: "
                       "mask the scores, before the softmax",
    FILL_ZERO: "a score of 0 still gets weight exp(0) = 1 after the softmax, so blocked positions keep "
               "contributing: fill them with a score whose exp is exactly 0",
    INVERTED_FILL: "you blocked the positions the mask allows: True means 'may attend', so fill where the mask "
                   "is False",
    SOFTMAX_AXIS: "the weights must sum to 1 over the keys for each query, i.e. along the last axis of the "
                  "(…, T_query, T_key) score matrix",
    UPPER_MASK: "your module lets each position attend to later ones: query t may attend to key s only when s ≤ t "
                "(lower triangle, diagonal included)",
    STRICT_MASK: "a position must be allowed to attend to itself (position 0 has nothing else to attend to): keep "
                 "the diagonal in the mask",
    SPLIT_NO_TRANSPOSE: "reading (B, T, C) straight into (B, n_head, T, head_size) mixes positions and channels: cut "
                        "each position's channels into heads first, then move the head axis in front of T",
    MERGE_NO_TRANSPOSE: "(B, n_head, T, head_size) cannot be viewed as (B, T, C) directly: bring T next to B "
                        "first (and make the tensor contiguous), then merge the heads",
    NO_PROJECTION: "the heads' outputs go through one more Linear layer, which mixes them, before they are returned",
    MASK_WHEN_NONE: "without a mask every query attends to every key: apply the mask only when one is given "
                    "(`if mask is not None`), and never build a causal mask of your own here",
    BIAS_ALWAYS: "with config.bias False, c_attn and c_proj have no bias: build them with "
                 "nn.Linear(..., bias=config.bias)",
}


def _sdpa_mistake(name: str) -> Mistake:
    return Mistake(name, ATTENTION_HINTS[name], partial(_flawed_attention, flaw=name))


SDPA_MISTAKES = tuple(_sdpa_mistake(name) for name in (
    NO_SCALE, SCALE_BY_D, MASK_AFTER_SOFTMAX, INF_AFTER_SOFTMAX, FILL_ZERO, INVERTED_FILL, SOFTMAX_AXIS,
    MASK_WHEN_NONE))


def _attend(fn, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    args = (q.clone(), k.clone(), v.clone()) + (() if mask is None else (mask.clone(),))
    return as_tensor(fn(*args), "scaled_dot_product_attention(q, k, v" + ("" if mask is None else ", mask") + ")")


def _qkv(B: int, H: int, T: int, D: int, seed: int, T_kv: int | None = None) -> tuple[torch.Tensor, ...]:
    T_kv = T if T_kv is None else T_kv
    return seeded_randn(B, H, T, D, seed=seed), seeded_randn(B, H, T_kv, D, seed=seed + 1), seeded_randn(B, H, T_kv, D, seed=seed + 2)


def _probe_sdpa(fn) -> Outputs:
    q, k, v = _qkv(2, 2, 5, 4, seed=100)
    return {"no_mask": _attend(fn, q, k, v), "causal": _attend(fn, q, k, v, causal_mask(5))}


def _probe_sdpa_hidden(fn) -> Outputs:
    q, k, v = _qkv(1, 2, 6, 16, seed=110)
    long_head = _attend(fn, q, k, v, causal_mask(6))
    long_head_no_mask = _attend(fn, q, k, v)
    # three new queries at positions 2, 3, 4 of a five-token context (what a KV cache produces): the causal mask's
    # last three rows
    q, k, v = _qkv(2, 1, 3, 8, seed=120, T_kv=5)
    fewer_queries = _attend(fn, q, k, v, causal_mask(5)[2:])
    # a padding mask, broadcast over heads and queries: the second sequence's last key is padding
    q, k, v = _qkv(2, 2, 4, 4, seed=130)
    padding = torch.ones(2, 1, 1, 4, dtype=torch.bool)
    padding[1, ..., -1] = False
    return {"long_head": long_head, "long_head_no_mask": long_head_no_mask, "fewer_queries": fewer_queries,
            "padding_mask": _attend(fn, q, k, v, padding)}


_pair("scaled_dot_product_attention", "scaled_dot_product_attention", scaled_dot_product_attention,
      (_probe_sdpa, _probe_sdpa_hidden), (2, 2),
      "softmax(q kᵀ / √d, masked) v on (B, H, T, D), bool mask True = may attend", SDPA_MISTAKES,
      {"no_mask": "already wrong without a mask: check the scale (d is the last dimension of q and k) and that the "
                  "softmax runs over the keys",
       "long_head_no_mask": "with head size 16 and no mask: check the scale",
       "causal": "with the causal mask: blocked scores must get weight exactly 0 and each row must still sum to 1",
       "long_head": "with head size 16: check the scale",
       "fewer_queries": "with 3 queries and 5 keys the scores are (3, 5): transpose only k's last two dimensions",
       "padding_mask": "a (B, 1, 1, T) mask must broadcast over heads and queries: use the mask you are given"},
      inputs={"no_mask": "scaled_dot_product_attention(q, k, v), q, k, v of shape (2, 2, 5, 4) from randn",
              "causal": "scaled_dot_product_attention(q, k, v, causal_mask(5)), the same q, k, v"},
      cases={"long_head": "head size 16, causal mask", "long_head_no_mask": "head size 16, no mask",
             "fewer_queries": "3 queries and 5 keys (the last rows of the causal mask), as with a KV cache",
             "padding_mask": "a (B, 1, 1, T) padding mask"},
      forbidden=("F.scaled_dot_product_attention",))


# ---- CausalSelfAttention, with GPT-2's names -----------------------------------------------------------------------


class _FlawedSelfAttention(ReferenceSelfAttention):
    """The reference module, spelled out step by step with one named flaw (see ``_flawed_module``)."""

    flaw = ""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__(replace(config, bias=True) if self.flaw == BIAS_ALWAYS else config)

    def forward(self, x: torch.Tensor, cache=None) -> torch.Tensor:
        B, T, C = x.size()
        heads = (B, self.n_head, T, C // self.n_head)
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        if self.flaw == SPLIT_NO_TRANSPOSE:
            q, k, v = (t.reshape(heads) for t in (q, k, v))
        else:
            q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        mask = causal_mask(T)
        mask = {UPPER_MASK: mask.T, STRICT_MASK: mask.tril(diagonal=-1)}.get(self.flaw, mask)
        y = _flawed_attention(q, k, v, mask, flaw=self.flaw)
        y = y.reshape(B, T, C) if self.flaw == MERGE_NO_TRANSPOSE else y.transpose(1, 2).reshape(B, T, C)
        return y if self.flaw == NO_PROJECTION else self.c_proj(y)


def _flawed_module(name: str) -> Mistake:
    return Mistake(name, ATTENTION_HINTS[name], type("FlawedSelfAttention", (_FlawedSelfAttention,), {"flaw": name}))


MODULE_MISTAKES = tuple(_flawed_module(name) for name in (
    NO_SCALE, SCALE_BY_D, MASK_AFTER_SOFTMAX, INF_AFTER_SOFTMAX, FILL_ZERO, UPPER_MASK, STRICT_MASK, SOFTMAX_AXIS,
    SPLIT_NO_TRANSPOSE, MERGE_NO_TRANSPOSE, NO_PROJECTION, BIAS_ALWAYS))


def _reference_weights(config: GPTConfig, seed: int) -> dict[str, torch.Tensor]:
    """The state dict of a seeded reference module (GPT-2's names and shapes)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return ReferenceSelfAttention(config).state_dict()


def _build(cls, config: GPTConfig, weights: dict[str, torch.Tensor]) -> nn.Module:
    module = build_module(cls, "CausalSelfAttention(config)", config)
    load_reference_weights(module, weights, "c_attn and c_proj, with bias=config.bias")
    return module.eval()


def _forward(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    y = as_tensor(module(x.clone()), "CausalSelfAttention.forward")
    if y.shape != x.shape:
        raise ProbeError(f"CausalSelfAttention returned shape {tuple(y.shape)} for an input of shape "
                         f"{tuple(x.shape)}; expected the input's shape (B, T, C)")
    return y


def _without_biases(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: torch.zeros_like(w) if k.endswith("bias") else w for k, w in weights.items()}


def _isolation_parts(cls, config: GPTConfig, x: torch.Tensor, seed: int) -> Outputs:
    """one_token, first_query, no_bias, causality and full outputs of the learner's module on x."""
    weights = _reference_weights(config, seed)
    later = x.clone()
    later[:, -1] = seeded_randn(x.size(0), x.size(2), seed=seed + 1)  # a different last token
    with torch.no_grad():
        module = _build(cls, config, weights)
        full = _forward(module, x)
        one_token = _forward(module, x[:, :1])
        changed = _forward(module, later)
        load_reference_weights(module, _without_biases(weights), "c_attn and c_proj, with bias=config.bias")
        no_bias = _forward(module, x)
    return {"one_token": one_token, "first_query": full[:, 0], "no_bias": no_bias,
            "causality": (changed - full)[:, :-1], "full": full}


def _bias_false_parts(cls, config: GPTConfig, x: torch.Tensor, seed: int) -> Outputs:
    """With config.bias False: whether the module has bias parameters anyway, and its output with the reference's
    weights (any bias of its own set to zero, so that this one mistake does not hide the others)."""
    module = build_module(cls, "CausalSelfAttention(config)", config)
    has_biases = [name for name, _ in module.named_parameters() if name.endswith("bias")]
    weights = {**{name: torch.zeros_like(p) for name, p in module.named_parameters() if name in has_biases},
               **_reference_weights(config, seed)}
    load_reference_weights(module, weights, "c_attn and c_proj, with bias=config.bias")
    with torch.no_grad():
        return {"bias_false_config": _forward(module.eval(), x), "bias_false_has_biases": flag(bool(has_biases))}


def _probe_module(cls) -> Outputs:
    config = GPTConfig(block_size=16, n_layer=1, n_head=2, n_embd=8, dropout=0.0, bias=True)
    outputs = _isolation_parts(cls, config, seeded_randn(2, 6, 8, seed=200), seed=201)
    config = GPTConfig(block_size=8, n_layer=1, n_head=2, n_embd=8, dropout=0.0, bias=False)
    return {**outputs, **_bias_false_parts(cls, config, seeded_randn(1, 4, 8, seed=202), seed=203)}


def _probe_module_hidden(cls) -> Outputs:
    # T equal to block_size, four heads
    config = GPTConfig(block_size=7, n_layer=1, n_head=4, n_embd=16, dropout=0.0, bias=True)
    outputs = _isolation_parts(cls, config, seeded_randn(3, 7, 16, seed=210), seed=211)
    # no biases anywhere, three heads
    config = GPTConfig(block_size=8, n_layer=1, n_head=3, n_embd=12, dropout=0.0, bias=False)
    return {**outputs, **_bias_false_parts(cls, config, seeded_randn(2, 5, 12, seed=221), seed=220)}


MODULE_PART_HINTS = {
    "one_token": "with one token every attention weight is 1 and the output is c_proj of the value: check how "
                 "c_attn's output is split into q, k, v, and the output projection",
    "first_query": "position 0 may only attend to itself: check the mask (its diagonal) and the softmax axis",
    "no_bias": "still wrong with all biases zero, so the biases are not (the only) problem",
    "causality": "changing the last token changed earlier outputs: some position sees the future (mask orientation, "
                 "softmax axis, or how heads are split and merged)",
    "full": "the full sequence mixes all positions and heads: check the scale, the mask, and the head reshapes",
    "bias_false_config": "with config.bias False the weights load but the output is wrong: nothing may depend on a "
                         "bias, and the head size is n_embd // n_head of this config",
    "bias_false_has_biases": "with config.bias False: build the Linear layers with bias=config.bias",
}

_pair("causal_self_attention", "CausalSelfAttention", ReferenceSelfAttention, (_probe_module, _probe_module_hidden),
      (3, 2), "GPT-2's CausalSelfAttention (c_attn, c_proj, n_head); reference weights load into it",
      MODULE_MISTAKES, MODULE_PART_HINTS, tolerance=MODULE_TOLERANCE,
      inputs={"one_token": "x[:, :1], one token", "first_query": "x of shape (2, 6, 8), output at position 0",
              "no_bias": "x of shape (2, 6, 8), every bias set to 0",
              "causality": "x with its last token changed: outputs before it", "full": "x of shape (2, 6, 8)",
              "bias_false": "config.bias = False, x of shape (1, 4, 8)"},
      cases={"one_token": "T = block_size, four heads: one token",
             "first_query": "T = block_size, four heads: position 0", "no_bias": "four heads, every bias set to 0",
             "causality": "four heads, the last token changed", "full": "T = block_size, four heads",
             "bias_false": "config.bias = False, three heads"})
